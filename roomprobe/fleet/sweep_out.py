"""What a sweep prints and writes: the worst-first table, JSON, CSV and a self-contained html page.

Why these four: a technician reads the table; scripts read JSON (one v1 report per room plus a
summary); a spreadsheet reads CSV; someone without Grafana opens the html page from a ticket or
a share. Every room-supplied value (inventory names come from the field) is escaped in html and
defused in CSV (a name starting with ``=`` would be a formula in a spreadsheet).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import ipaddress
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from html import escape
from typing import IO, TYPE_CHECKING, Any

from roomprobe.fleet.sweep import STATE_RANK, facts_of
from roomprobe.report.build import STATUS_RANK

if TYPE_CHECKING:
    from roomprobe.core.output import RenderOptions, Terminal
    from roomprobe.report.model import Report

CSV_FIELDS = ("status", "room", "address", "port", "state", "ms", "likely_code", "why",
              "controllers", "deep")


def deep_cell(rep: Report) -> str:
    """--deep's part in one word: the room's own status, or ``unknown (reason)``; empty
    when --deep was not asked."""
    deep = rep.deep
    if not deep:
        return ""
    return str(deep["status"]) if deep.get("answered") else f"unknown ({deep['reason']})"


def _why(rep: Report) -> str:
    bad = [p for p in rep.probes if p.status in ("fail", "error", "warn")]
    return "; ".join(p.summary for p in bad) or rep.probes[0].summary


def row(rep: Report) -> dict[str, Any]:
    """The flat view of one room's report (table, CSV and html share it)."""
    port = rep.probes[0].evidence
    facts = facts_of(rep)
    return {"status": rep.status, "room": rep.room_name or rep.targets.room,
            "address": rep.targets.room, "port": rep.targets.port,
            "state": facts.state, "ms": port.get("ms"),
            "likely_code": facts.likely_code or "", "why": _why(rep),
            "controllers": " ".join(facts.controllers), "deep": deep_cell(rep)}


def one_line(text: str, limit: int) -> str:
    """Printable, one line, at most ``limit`` characters (names come from the inventory)."""
    text = "".join(c if c.isprintable() else " " for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def text_table(reports: Sequence[Report], summary: dict[str, Any]) -> str:
    """The table a technician reads, worst first, and a one-line tally."""
    deep = any(rep.has("deep") for rep in reports)
    head = ("STATUS", "ROOM", "ADDRESS", "STATE", *(("DEEP",) if deep else ()), "CODE", "WHY")
    rows = [(r["status"].upper(), one_line(str(r["room"]), 40), f"{r['address']}:{r['port']}",
             r["state"], *((r["deep"],) if deep else ()), r["likely_code"] or "-",
             one_line(r["why"], 100))
            for r in map(row, reports)]
    widths = [max(len(h), *(len(x[i]) for x in rows)) if rows else len(h) for i, h in enumerate(head)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in [head, *rows]]
    tally = ", ".join(f"{n} {s}" for s, n in summary["by_status"].items())
    states = ", ".join(f"{n} {s}" for s, n in summary["by_state"].items())
    lines.append(f"\n{summary['rooms']} rooms in {summary['duration_s']:.1f} s: {tally} "
                 f"(port {states}). Measured from this host; the controller -> room path needs "
                 "'roomprobe check' on the controller.")
    if deep:
        answered = sum(1 for rep in reports if (rep.deep or {}).get("answered"))
        lines.append(f"--deep: {answered} of {len(reports)} rooms' agents answered; the others' "
                     "own check is unknown (DEEP names why).")
    return "\n".join(lines) + "\n"


def iter_json(reports: Sequence[Report], summary: dict[str, Any]) -> Iterator[str]:
    """``{"schema", "summary", "rooms"}`` in pieces, one room per line: the whole document is
    never one string (10,000 rooms are about 50 MB of JSON, and one json.dumps with indent
    held six times that), and each room is encoded by json's C encoder."""
    head = json.dumps({"schema": "roomprobe/sweep/v1", "summary": summary}, indent=2)
    yield head[:-2] + ',\n  "rooms": ['
    for k, rep in enumerate(reports):
        yield ("\n    " if k == 0 else ",\n    ") + json.dumps(rep.to_dict())
    yield ("\n  ]" if reports else "]") + "\n}\n"


def write_json(reports: Sequence[Report], summary: dict[str, Any], out: IO[str]) -> None:
    """iter_json written to ``out`` in blocks of about 64 kB."""
    buf: list[str] = []
    size = 0
    for part in iter_json(reports, summary):
        buf.append(part)
        size += len(part)
        if size >= 65536:
            out.write("".join(buf))
            buf, size = [], 0
    out.write("".join(buf))


def to_json(reports: Sequence[Report], summary: dict[str, Any]) -> str:
    return "".join(iter_json(reports, summary))


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(reports: Sequence[Report]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    for r in map(row, reports):
        w.writerow([_cell(r[k]) for k in CSV_FIELDS])
    return buf.getvalue()


# ------------------------------------------------------------------ html

# Click a header to sort (again to reverse); each room is one <tbody> (its row and its evidence),
# so sorting moves a room's evidence with it. Without scripts the page still reads worst first.
SCRIPT = (
    "document.querySelectorAll('th[data-col]').forEach(function(th){th.addEventListener('click',"
    "function(){var t=th.closest('table'),c=+th.dataset.col,d=th.dataset.dir=th.dataset.dir==='a'?'d':'a';"
    "var b=Array.prototype.slice.call(t.tBodies);b.sort(function(x,y){var p=x.rows[0].cells[c].dataset.k,"
    "q=y.rows[0].cells[c].dataset.k,r=(isNaN(p)||isNaN(q))?p.localeCompare(q):p-q;return d==='a'?r:-r});"
    "b.forEach(function(e){t.appendChild(e)})})})"
)
CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;margin:0;
background:#f6f8fa}main{max-width:1200px;margin:0 auto;padding:20px}
table{border-collapse:collapse;width:100%;background:#fff}th{cursor:pointer;text-align:left;
background:#eaeef2;padding:6px 8px;user-select:none}td{padding:5px 8px;vertical-align:top}
tbody{border-bottom:1px solid #d0d7de}.tag{color:#fff;border-radius:4px;padding:1px 6px;font-size:12px;
font-weight:600}pre{background:#f6f8fa;padding:8px;white-space:pre-wrap;word-break:break-word;
font-size:12px}summary{cursor:pointer;color:#0969da}.muted{color:#57606a}
"""
COLOR = {"pass": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e", "unknown": "#8250df"}


def csp() -> str:
    """Only this page's own script (by hash) and inline styles: nothing is fetched, ever."""
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    return f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'; img-src data:"


def _ip_key(addr: str) -> str:
    ip = ipaddress.ip_address(addr)
    return str(int(ip)) if ip.version == 4 else str(int(ip) + (1 << 32))


def render_html(reports: Sequence[Report], summary: dict[str, Any], started_at: str) -> str:
    """One self-contained page: rooms worst first, sortable, each row opening its evidence."""
    deep = any(rep.has("deep") for rep in reports)
    cols = ("Status", "Room", "Address", "Port state", "ms", *(("Deep",) if deep else ()),
            "Likely code", "Why")
    tally = ", ".join(f"{n} {escape(s)}" for s, n in summary["by_status"].items())
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{escape(csp())}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>roomprobe sweep: {summary['rooms']} rooms ({escape(started_at)})</title>",
        f"<style>{CSS}</style></head><body><main>",
        f"<h1>roomprobe sweep: {summary['rooms']} rooms</h1>",
        f'<p>{tally}; started {escape(started_at)}, {summary["duration_s"]:.1f} s. '
        '<span class="muted">Measured from the sweeping host: the controller &rarr; room path '
        "itself needs <code>roomprobe check</code> on the controller. Click a header to sort, a "
        "row's evidence to open it.</span></p>",
        '<table id="rooms"><thead><tr>'
        + "".join(f'<th data-col="{i}">{c}</th>' for i, c in enumerate(cols)) + "</tr></thead>",
    ]
    for rep in reports:
        r = row(rep)
        ms = r["ms"] if isinstance(r["ms"], (int, float)) else ""
        cells = [
            (str(STATUS_RANK.get(r["status"], 1)),
             f'<span class="tag" style="background:{COLOR.get(r["status"], "#6e7781")}">'
             f'{escape(r["status"].upper())}</span>'),
            (escape(str(r["room"]).lower()), escape(str(r["room"]))),
            (_ip_key(r["address"]), escape(f"{r['address']}:{r['port']}")),
            (str(STATE_RANK.get(r["state"], 3)), escape(r["state"])),
            (str(ms if ms != "" else -1), escape(str(ms))),
            *([(str(STATUS_RANK.get(str((rep.deep or {}).get("status")), 1)), escape(r["deep"]))]
              if deep else []),
            (escape(r["likely_code"] or "~"), escape(r["likely_code"] or "-")),
            (escape(r["why"].lower()), escape(r["why"])),
        ]
        evidence = {"probes": [p.to_dict() for p in rep.probes],
                    "findings": [f.to_dict() for f in rep.findings],
                    "diagnosis": [d.to_dict() for d in rep.diagnosis[:3]], "sweep": facts_of(rep).to_dict(),
                    **({"deep": rep.deep} if rep.has("deep") else {})}
        parts.append(
            f'<tbody data-room="{escape(r["address"])}" data-status="{escape(r["status"])}"><tr>'
            + "".join(f'<td data-k="{k}">{v}</td>' for k, v in cells) + "</tr>"
            f'<tr class="ev"><td colspan="{len(cols)}"><details><summary>evidence</summary>'
            f"<pre>{escape(json.dumps(evidence, indent=2))}</pre></details></td></tr></tbody>")
    parts += ["</table>", f"<script>{SCRIPT}</script>", "</main></body></html>"]
    return "\n".join(parts) + "\n"


# ------------------------------------------------------------------ the sweep's formats


@dataclass(frozen=True)
class SweepView:
    """What every sweep format renders: the rooms' reports (worst first), the tally, the start."""

    reports: Sequence[Report]
    summary: dict[str, Any]
    started_at: str = ""


class TableFormat:
    """``sweep --format text``: the worst-first table."""

    name = "text"

    def render(self, view: SweepView, term: Terminal, opts: RenderOptions) -> str:
        return text_table(view.reports, view.summary)


class JsonFormat:
    """``sweep --format json`` (schema roomprobe/sweep/v1): streamed by :meth:`write`, since
    10,000 rooms must not be one string in memory."""

    name = "json"

    def render(self, view: SweepView, term: Terminal, opts: RenderOptions) -> str:
        return to_json(view.reports, view.summary)

    def write(self, view: SweepView, term: Terminal, opts: RenderOptions) -> None:
        write_json(view.reports, view.summary, term.stdout)


class CsvFormat:
    """``sweep --format csv``: one row per room for a spreadsheet."""

    name = "csv"

    def render(self, view: SweepView, term: Terminal, opts: RenderOptions) -> str:
        return to_csv(view.reports)


class HtmlFormat:
    """``sweep --html FILE``: the sortable self-contained page."""

    name = "html"

    def render(self, view: SweepView, term: Terminal, opts: RenderOptions) -> str:
        return render_html(view.reports, view.summary, view.started_at)


FORMATS = (TableFormat(), JsonFormat(), CsvFormat(), HtmlFormat())
