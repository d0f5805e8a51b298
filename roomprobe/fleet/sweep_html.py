"""``sweep --html FILE``: one self-contained page, rooms worst first, sortable, each row opening
its evidence; every room-supplied value escaped."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING, Any

from roomprobe.fleet.sweep import STATE_RANK, facts_of
from roomprobe.fleet.sweep_out import row
from roomprobe.report.build import STATUS_RANK

if TYPE_CHECKING:
    from roomprobe.core.output import RenderOptions, Terminal
    from roomprobe.fleet.sweep_out import SweepView
    from roomprobe.report.model import Report


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


class HtmlFormat:
    """``sweep --html FILE``: the sortable self-contained page."""

    name = "html"

    def render(self, view: SweepView, term: Terminal, opts: RenderOptions) -> str:
        return render_html(view.reports, view.summary, view.started_at)


FORMAT = HtmlFormat()
