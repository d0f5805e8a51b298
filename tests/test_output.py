"""One output interface: the terminal decides, one registry lists the formats, no copies.

The golden test (test_report_golden.py) proves every byte is what it was; these prove the shape
that keeps it so: isatty is asked in one module, the commands keep no format switch of their own,
and the controller-port wording and the status order live in one place each.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from reportkit import as_report

from roomprobe.commands import formats
from roomprobe.core.output import RenderOptions, Terminal

REPO = Path(__file__).resolve().parent.parent
SOURCES = sorted([*(REPO / "roomprobe").rglob("*.py"), *(REPO / "probes").rglob("*.py")])


def _term(tty: bool, no_color: bool = False) -> Terminal:
    return Terminal(stdout=io.StringIO(), stderr=io.StringIO(), stdout_tty=tty, stderr_tty=tty,
                    no_color=no_color)


def _where(pattern: str) -> list[str]:
    return [str(p.relative_to(REPO)) for p in SOURCES if re.search(pattern, p.read_text("utf-8"))]


def test_isatty_is_asked_in_one_module_only():
    assert _where(r"\.isatty\(") == ["roomprobe/core/output.py"]


@pytest.mark.parametrize(("tty", "no_color", "flag", "coloured"), [
    (True, False, True, True),     # a terminal, colour welcome
    (True, True, True, False),     # NO_COLOR wins over a terminal
    (True, False, False, False),   # --no-color
    (False, False, True, False),   # a pipe or a file
])
def test_the_terminal_decides_colour(tty, no_color, flag, coloured):
    rep = as_report({"status": "fail", "probes": [{"id": "dns", "status": "fail", "summary": "no"}],
                     "findings": [{"id": "dns-down", "severity": "fail", "message": "down"}]})
    out = formats.render("report", "text", rep, RenderOptions(color=flag), _term(tty, no_color))
    assert ("\x1b[" in out) is coloured


def test_every_command_prints_through_the_registry():
    """No command keeps its own if/elif of format names: each offers registry names."""
    for name in ("check", "report", "sweep", "history", "path"):
        text = (REPO / "roomprobe" / "commands" / f"{name}.py").read_text("utf-8")
        assert not re.search(r"""(fmt|c\.format) == ["'](json|nagios|csv|markdown|html)["']""", text), name
    for subject, names in (("report", ("text", "json", "nagios", "markdown", "html")),
                           ("sweep", ("text", "json", "csv", "html")), ("history", ("text", "json"))):
        for n in names:
            assert formats.get(subject, n).name == n


def test_emit_streams_where_a_format_can():
    """The sweep's JSON is written in pieces (write), the others as one string (render)."""
    from roomprobe.fleet.sweep_out import SweepView

    term = _term(False)
    view = SweepView([], {"rooms": 0})
    formats.emit("sweep", "json", view, term=term)
    assert term.stdout.getvalue() == formats.render("sweep", "json", view, term=term)


def test_controller_port_wording_and_status_order_live_in_one_place():
    """The sweep words the probe's findings through net/portfindings and judges with
    report/build's order: the sentences and the order table are not copied."""
    assert _where(r"is up but nothing accepts TCP") == ["roomprobe/net/portfindings.py"]
    assert _where(r"cannot be reached \{") == ["roomprobe/net/portfindings.py"]
    assert _where(r"""\{["']fail["']: 0""") == []  # a hand-made rank table
    assert len(_where(r"STATUS_ORDER = ")) == 1


def test_check_offers_registered_formats_only():
    """check's --format is declared with the settings (core may not import commands): every
    name it offers must be a registered report format, or --format X would fail after the run."""
    from dataclasses import fields

    from roomprobe.core.settings import CheckSettings

    flag = next(f for f in fields(CheckSettings) if f.name == "format").metadata["flag"]
    assert set(flag.choices) <= set(formats.names("report"))
