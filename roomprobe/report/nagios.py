"""``--format nagios``: the monitoring-plugin output Nagios, Icinga, NRPE and Zabbix read.

Plugin guidelines (monitoring-plugins.org/doc/guidelines.html): the first line is the status,
"OK|WARNING|CRITICAL|UNKNOWN - text", short enough for a pager and the service overview (we keep
it under 80 characters); more lines follow as long output; performance data goes after a ``|``,
``'label'=value[UOM];warn;crit;min;max``, here in the long-output part (``TEXT | PERF`` on the
first long line, one more datum per line after it) so the first line stays short. The exit code
is the report's (0/1/2/3). UNKNOWN always says why on stdout, since that is all the operator sees.

Text we did not write (room names from an inventory, messages quoting a server, a proxy or an
SSID) must not change how Nagios splits the output: a ``|`` anywhere in the text starts the
perfdata, a newline starts a new long-output line, a control character (NUL) cuts it. So every
text goes through ``_fit`` (``|`` becomes ``/``, control characters and newlines a space), and
every perfdata label through ``_label`` (the guidelines' rules: quoted in single quotes, a
``'`` written ``''``, no ``=``; we also drop ``|`` and whitespace so every reader splits it alike).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from roomprobe.report.measures import EXTRACTORS

if TYPE_CHECKING:
    from roomprobe.core.output import RenderOptions, Terminal
    from roomprobe.report.model import Report

WORDS = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}
MAX_FIRST_LINE = 79
MAX_LONG_LINES = 12
_LABEL_BAD = re.compile(r"[=\s]")


def _clean(text: str) -> str:
    """One line of plugin text: no ``|`` (Nagios' perfdata separator), no control characters."""
    return "".join(c if c.isprintable() else " " for c in text.replace("|", "/"))


def _fit(text: str, limit: int) -> str:
    text = " ".join(_clean(text).split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _room(report: Report) -> str:
    t = report.targets
    return str(report.room_name or t.room or t.controller or "")


def status_line(report: Report, exit_code: int) -> str:
    """The first line: "WORD - what" (< 80 characters)."""
    word = WORDS.get(exit_code, "UNKNOWN")
    probes = report.probes
    room = _room(report)
    where = f"{room}: " if room else ""
    if exit_code == 3:
        late = [p.id for p in probes if p.status == "error"] or ["some probes"]
        what = f"{where}check incomplete, {', '.join(late)} did not finish in time"
    else:
        worst = next((f for sev in ("fail", "warn") for f in report.findings if f.severity == sev), None)
        if worst is None:
            ran = [p for p in probes if p.status != "skip"]
            what = f"{where}{len(ran)} probes passed"
        else:
            more = sum(1 for f in report.findings if f.severity in ("fail", "warn")) - 1
            what = f"{where}{worst.message}" + (f" (+{more})" if more > 0 else "")
    head = f"{word} - "
    return head + _fit(what, MAX_FIRST_LINE - len(head))


def _label(text: str) -> str:
    """A perfdata label to put between single quotes: ``=``, whitespace and control characters
    become ``_``, ``|`` a ``/``; a ``'`` is doubled (after the cut, so no pair is split)."""
    return _LABEL_BAD.sub("_", _clean(text))[:40].replace("'", "''")


def perfdata(report: Report) -> list[str]:
    """Durations (s), bandwidth (Mbit/s: no standard UOM, so the unit is in the label), round
    trips (s), loss (%), from the measured evidence only."""
    out = [f"'duration'={float(report.duration_s):.3f}s;;;0"]
    for p in report.probes:
        if p.status == "skip":
            continue
        pid = str(p.id)
        out.append(f"'{_label(pid)}_time'={float(p.duration_s):.3f}s;;;0")
        ev = p.evidence
        extract = EXTRACTORS.get(pid)
        if not extract or not isinstance(ev, dict):
            continue
        for name, _help, labels, value in extract(ev):
            suffix = "_".join(v for k, v in sorted(labels.items()) if k != "path")
            label = _label(name + (f"_{suffix}" if suffix else ""))
            if name.endswith("_ratio"):
                out.append(f"'{label.removesuffix('_ratio')}'={value * 100:.1f}%;;;0;100")
            elif name.endswith("bytes_per_second"):  # Mbit/s is how people read a link
                out.append(f"'{label.replace('_bytes_per_second', '')}_mbps'={value * 8 / 1e6:.2f};;;0")
            elif "seconds" in name:
                out.append(f"'{label.replace('_seconds', '')}'={value:.4f}s;;;0")
            else:
                out.append(f"'{label}'={value:g};;;0")
    return out


def render_nagios(report: Report, exit_code: int) -> str:
    """Status line, long output (one line per finding), then perfdata after ``|``."""
    lines = [status_line(report, exit_code)]
    long = [f"{f.severity.value.upper()}: {_fit(f.message, 200)}" for f in report.findings
            if f.severity in ("fail", "warn")][:MAX_LONG_LINES]
    if exit_code == 3:
        long.insert(0, "The check did not finish before its deadline (--timeout); rerun with a "
                       "larger --timeout, or see 'roomprobe check -v' for the probes that hung.")
    long += [_fit(f"{p.id}: {p.status} - {_fit(str(p.summary or ''), 120)}", 240) for p in report.probes]
    perf = perfdata(report)
    last = long.pop() if long else ""
    lines += long
    lines.append(f"{last} | {perf[0]}".lstrip())
    lines += perf[1:]
    return "\n".join(lines) + "\n"


def usage_line(message: str) -> str:
    """A usage error as the plugin's UNKNOWN output on stdout (e.g. a bad flag in an NRPE command):
    a short first line, then the whole message as long output when it did not fit."""
    message = " ".join(_clean(message).split())
    first = "UNKNOWN - usage: " + _fit(message, MAX_FIRST_LINE - len("UNKNOWN - usage: "))
    return first if first.endswith(message) else f"{first}\n{message}"


class NagiosFormat:
    """``--format nagios``: the monitoring-plugin output, for the report's own exit code."""

    name = "nagios"

    def render(self, report: Report, term: Terminal, opts: RenderOptions) -> str:
        from roomprobe.report.build import exit_code

        return render_nagios(report, int(exit_code(report)))


FORMAT = NagiosFormat()
