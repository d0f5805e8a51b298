"""One self-contained HTML page per report, readable at a glance and safe to open from a ticket.

Inline CSS only, no scripts, no external resources (a Content-Security-Policy forbids them, so
the page never phones home from the support engineer's browser), and every value escaped:
SSIDs, notes and messages come from the field. Layout: a coloured verdict banner, then what to
do (fix steps), findings, the evidence pack, the probes, and the raw measurements folded away.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from roomprobe.report.text import verdict
from roomprobe.report.ticket import evidence_rows

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
COLOR = {"pass": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e", "skip": "#6e7781",
         "error": "#8250df", "info": "#0969da", "unknown": "#8250df"}

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;margin:0;
background:#f6f8fa}
main{max-width:1000px;margin:0 auto;padding:24px}
.banner{color:#fff;padding:18px 22px;border-radius:8px}
.banner h1{margin:0 0 6px;font-size:26px}.banner p{margin:0;font-size:17px}
section{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:14px 20px;margin-top:16px}
h2{font-size:18px;margin:4px 0 10px}
.tag{display:inline-block;min-width:46px;text-align:center;color:#fff;border-radius:4px;
padding:1px 6px;font-size:12px;font-weight:600;margin-right:6px}
table{border-collapse:collapse;width:100%}td,th{text-align:left;vertical-align:top;padding:5px 8px;
border-bottom:1px solid #eaeef2}th{width:190px;color:#57606a;font-weight:600}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}
pre{background:#f6f8fa;padding:10px;overflow:auto;white-space:pre-wrap;word-break:break-word}
ol{margin:6px 0 10px}.fix{border-left:4px solid #0969da;padding-left:12px;margin-bottom:14px}
.muted{color:#57606a}.hint{margin:2px 0 10px 58px}
"""


def _tag(word: str) -> str:
    return f'<span class="tag" style="background:{COLOR.get(word, "#6e7781")}">{escape(word.upper())}</span>'


def render_html(report: dict[str, Any]) -> str:
    """The whole report as one HTML document."""
    status = report["status"]
    room = report.get("room_name")
    heading = f"{status.upper()}" + (f": {room}" if room else "")
    parts: list[str] = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>roomprobe {escape(heading)} ({escape(report['started_at'])})</title>",
        f"<style>{CSS}</style></head><body><main>",
        f'<div class="banner" style="background:{COLOR[status]}"><h1>roomprobe {escape(heading)}</h1>'
        f"<p>{escape(verdict(report))}</p></div>",
    ]

    if report["diagnosis"]:
        parts.append("<section><h2>What to do</h2>")
        for d in report["diagnosis"]:
            seen = " &middot; the code the user saw" if d.get("user_code") else ""
            because = ", ".join(f"<code>{escape(b)}</code>" for b in d["because"])
            parts.append(f'<div class="fix"><b>{escape(d["product"])} {int(d["code"])}: '
                         f'{escape(d["title"])}</b> <span class="muted">likelihood '
                         f'{escape(d["likelihood"])}{seen}{" &middot; because " + because if because else ""}'
                         "</span>")
            if d.get("cause"):
                parts.append(f"<div>Cause: {escape(d['cause'])}</div>")
            parts.append("<ol>" + "".join(f"<li>{escape(s)}</li>" for s in d["fix"]) + "</ol>")
            if d.get("ruled_out"):
                parts.append(f'<details class="muted"><summary>{len(d["ruled_out"])} other cause(s) '
                             "ruled out</summary><ul>"
                             + "".join(f"<li>{escape(r['cause'])}</li>" for r in d["ruled_out"])
                             + "</ul></details>")
            parts.append("</div>")
        parts.append("</section>")

    if report["findings"]:
        parts.append("<section><h2>Findings</h2>")
        for f in report["findings"]:
            parts.append(f"<div>{_tag(f['severity'])}<code>{escape(f['id'])}</code> "
                         f"{escape(f['message'])}</div>")
            if f.get("hint"):
                parts.append(f'<div class="hint">&rarr; {escape(f["hint"])}</div>')
        parts.append("</section>")

    parts.append("<section><h2>Evidence pack</h2><table>")
    parts += [f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in evidence_rows(report)]
    parts.append("</table></section>")

    parts.append("<section><h2>Probes</h2><table>")
    for p in report["probes"]:
        parts.append(f"<tr><td style=\"width:70px\">{_tag(p['status'])}</td>"
                     f"<td style=\"width:150px\"><code>{escape(p['id'])}</code></td>"
                     f"<td>{escape(p['summary'])}</td>"
                     f"<td class=\"muted\" style=\"width:70px\">{p['duration_s']:.2f} s</td></tr>")
    parts.append("</table>")
    for p in report["probes"]:
        if p["evidence"]:
            parts.append(f"<details><summary>Measurements: <code>{escape(p['id'])}</code></summary>"
                         f"<pre>{escape(json.dumps(p['evidence'], indent=2))}</pre></details>")
    parts.append("</section>")
    parts.append(f'<p class="muted">roomprobe {escape(report["roomprobe_version"])} &middot; '
                 f'report schema {escape(report["schema"])}</p></main></body></html>')
    return "\n".join(parts) + "\n"
