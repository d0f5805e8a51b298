"""One self-contained HTML page per report, readable at a glance and safe to open from a ticket.

Inline CSS only, no scripts, no external resources (a Content-Security-Policy forbids them, so
the page never phones home from the support engineer's browser), and every value escaped:
SSIDs, notes and messages come from the field. Layout: a coloured verdict banner, then what to
do (fix steps), findings, the evidence pack, the probes, and the raw measurements folded away.
"""

from __future__ import annotations

import html as _html
import json
import math
from typing import TYPE_CHECKING, Any

from roomprobe.report.text import ruled_out, verdict
from roomprobe.report.ticket import evidence_rows

if TYPE_CHECKING:
    from roomprobe.core.output import RenderOptions, Terminal
    from roomprobe.report.model import DiagnosisEntry, Report


def escape(value: Any) -> str:
    """HTML-escape any value: a schema-valid report may hold an object where text is usual
    (``diagnosis[].ruled_out[].cause``), and text and markdown render it, so html must too."""
    return _html.escape(value if isinstance(value, str) else str(value))


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


MAX_POINTS = 200  # the probe writes at most this many; a report edited by hand may hold more
PLOT_W, PLOT_H, PAD_L, PAD_R, PAD_T, PAD_B = 440, 150, 44, 40, 22, 26
AXIS_FONT = 10  # px, the axis labels' font-size
# Advance widths (em) of the characters axis labels use, rounded up from the widest common
# sans-serif faces (DejaVu Sans, Arial, Segoe UI, Helvetica); anything else counts as wide.
_EM = {**dict.fromkeys("0123456789", 0.64), ".": 0.32, " ": 0.32, "m": 0.98, "s": 0.53,
       "%": 0.96, "-": 0.37}


def text_width(text: str, size: float = AXIS_FONT) -> float:
    """An upper bound of ``text``'s rendered width in px: the plot's margins are sized from it,
    so no axis label is cut by the SVG's edge whatever its number of digits."""
    return size * sum(_EM.get(c, 1.0) for c in text)


def _axis_ms(v: float) -> str:
    """A round-trip axis label: 3 significant digits, never an exponent ("1234 ms", "0.127 ms")."""
    return f"{v:.0f} ms" if v >= 100 else f"{v:.3g} ms"


def _numbers(value: Any) -> list[float | None] | None:
    """A list of finite numbers or None; anything else (a hand-edited report) is no series."""
    if not isinstance(value, list):
        return None
    out: list[float | None] = []
    for v in value[:5000]:
        if v is None:
            out.append(None)
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out.append(float(v))
        else:
            return None
    return out


def _plot(direction: str, t: list[float], rtt: list[float | None], loss: list[float | None]) -> str:
    """One direction as an inline SVG: RTT as a line (left axis), loss % as bars (right axis)."""
    step = max(1, math.ceil(len(t) / MAX_POINTS))
    t, rtt, loss = t[::step], rtt[::step], loss[::step]
    t_max = max(t[-1], 0.001)
    r_max = max([v for v in rtt if v is not None] or [1.0]) * 1.15 or 1.0
    l_max = max(5.0, max([v for v in loss if v is not None] or [0.0]))
    r_label, l_label = _axis_ms(r_max), f"{l_max:.3g}%"
    # The margins hold the axis labels (right-aligned left of the plot, left-aligned right of it)
    pad_l = max(PAD_L, math.ceil(text_width(r_label)) + 8)
    pad_r = max(PAD_R, math.ceil(text_width(l_label)) + 8)
    w, h = PLOT_W - pad_l - pad_r, PLOT_H - PAD_T - PAD_B
    bar = max(1.0, w / len(t) - 1)

    def x(v: float) -> float:
        return pad_l + w * v / t_max if len(t) > 1 else pad_l + w / 2

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{PLOT_W}" '
             f'height="{PLOT_H}" viewBox="0 0 {PLOT_W} {PLOT_H}" class="plot">',
             f"<title>{direction}: round trip (line) and loss (bars) over the quality test</title>",
             f'<rect x="{pad_l}" y="{PAD_T}" width="{w}" height="{h}" fill="#f6f8fa" '
             'stroke="#d0d7de"/>']
    for ti, lv in zip(t, loss, strict=True):
        if lv:
            bh = h * min(lv, l_max) / l_max
            parts.append(f'<rect class="loss" x="{x(ti):.1f}" y="{PAD_T + h - bh:.1f}" '
                         f'width="{bar:.1f}" height="{bh:.1f}" fill="#cf222e" fill-opacity="0.7">'
                         f"<title>{ti:g} s: {lv:g}% lost</title></rect>")
    runs: list[list[str]] = [[]]
    for ti, rv in zip(t, rtt, strict=True):
        if rv is None:
            runs.append([])
            continue
        runs[-1].append(f"{x(ti):.1f},{PAD_T + h - h * rv / r_max:.1f}")
    for pts in runs:
        if len(pts) > 1:
            parts.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="#0969da" '
                         'stroke-width="1.5"/>')
        elif pts:
            cx, cy = pts[0].split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="#0969da"/>')
    font = f'font-size="{AXIS_FONT}" font-family="sans-serif"'
    parts += [f'<text x="{pad_l - 4}" y="{PAD_T + 8}" text-anchor="end" fill="#0969da" {font}>'
              f"{r_label}</text>",
              f'<text x="{pad_l - 4}" y="{PAD_T + h}" text-anchor="end" fill="#57606a" {font}>0</text>',
              f'<text x="{pad_l + w + 4}" y="{PAD_T + 8}" fill="#cf222e" {font}>{l_label}</text>',
              f'<text x="{pad_l}" y="{PLOT_H - 8}" fill="#57606a" {font}>0 s</text>',
              f'<text x="{pad_l + w}" y="{PLOT_H - 8}" text-anchor="end" fill="#57606a" {font}>'
              f"{t_max:.3g} s</text>",
              f'<text x="{pad_l}" y="14" fill="#1f2328" font-size="12" font-weight="600" '
              f'font-family="sans-serif">{direction.capitalize()}: RTT (blue) and loss (red)</text>',
              "</svg>"]
    return "".join(parts)


def quality_plots(report: Report) -> list[str]:
    """The quality probe's timeline as one SVG per direction (upstream, downstream), or none.

    Pure SVG (the page's CSP forbids scripts); every number is checked to be a finite number
    first, so a hand-edited report draws nothing rather than injecting markup.
    """
    probe = report.probe("quality")
    tl = probe.evidence.get("timeline") if probe is not None else None
    if not isinstance(tl, dict):
        return []
    t = _numbers(tl.get("t_s"))
    rtt = _numbers(tl.get("rtt_p50_ms"))
    if not t or rtt is None or len(rtt) != len(t) or any(v is None for v in t):
        return []
    out = []
    for key, word in (("up_loss_pct", "upstream"), ("down_loss_pct", "downstream")):
        loss = _numbers(tl.get(key))
        if loss is None or len(loss) != len(t):
            continue
        out.append(_plot(word, [float(v or 0.0) for v in t], rtt, loss))
    return out


def _tag(word: str) -> str:
    return f'<span class="tag" style="background:{COLOR.get(word, "#6e7781")}">{escape(word.upper())}</span>'


def _diagnosis(d: DiagnosisEntry) -> list[str]:
    seen = " &middot; the code the user saw" if d.user_code else ""
    because = ", ".join(f"<code>{escape(b)}</code>" for b in d.because)
    parts = [f'<div class="fix"><b>{escape(d.product)} {int(d.code)}: '
             f'{escape(d.title)}</b> <span class="muted">likelihood '
             f'{escape(d.likelihood)}{seen}{" &middot; because " + because if because else ""}'
             "</span>"]
    if d.cause:
        parts.append(f"<div>Cause: {escape(d.cause)}</div>")
    parts.append("<ol>" + "".join(f"<li>{escape(s)}</li>" for s in d.fix) + "</ol>")
    if d.ruled_out:
        parts.append(f'<details class="muted"><summary>{len(d.ruled_out)} other cause(s) '
                     "ruled out</summary><ul>"
                     + "".join(f"<li>{escape(cause)}</li>" for cause, _ in ruled_out(d))
                     + "</ul></details>")
    parts.append("</div>")
    return parts


def _probes(report: Report) -> list[str]:
    parts = ["<section><h2>Probes</h2><table>"]
    for p in report.probes:
        parts.append(f"<tr><td style=\"width:70px\">{_tag(p.status)}</td>"
                     f"<td style=\"width:150px\"><code>{escape(p.id)}</code></td>"
                     f"<td>{escape(p.summary)}</td>"
                     f"<td class=\"muted\" style=\"width:70px\">{p.duration_s:.2f} s</td></tr>")
    parts.append("</table>")
    for p in report.probes:
        if p.evidence:
            parts.append(f"<details><summary>Measurements: <code>{escape(p.id)}</code></summary>"
                         f"<pre>{escape(json.dumps(p.evidence, indent=2))}</pre></details>")
    parts.append("</section>")
    return parts


def render_html(report: Report) -> str:
    """The whole report as one HTML document."""
    status = report.status
    room = report.room_name
    heading = f"{status.upper()}" + (f": {room}" if room else "")
    parts: list[str] = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>roomprobe {escape(heading)} ({escape(report.started_at)})</title>",
        f"<style>{CSS}</style></head><body><main>",
        f'<div class="banner" style="background:{COLOR[status]}"><h1>roomprobe {escape(heading)}</h1>'
        f"<p>{escape(verdict(report))}</p></div>",
    ]

    if report.diagnosis:
        parts.append("<section><h2>What to do</h2>")
        for d in report.diagnosis:
            parts += _diagnosis(d)
        parts.append("</section>")

    if report.findings:
        parts.append("<section><h2>Findings</h2>")
        for f in report.findings:
            parts.append(f"<div>{_tag(f.severity.value)}<code>{escape(f.id)}</code> {escape(f.message)}</div>")
            if f.hint:
                parts.append(f'<div class="hint">&rarr; {escape(f.hint)}</div>')
        parts.append("</section>")

    plots = quality_plots(report)
    if plots:
        parts.append("<section><h2>Quality test over time</h2>" + "".join(plots)
                     + '<p class="muted">Round trip (median per interval) and the share of '
                       "packets lost in each interval, per direction.</p></section>")

    from roomprobe.report import pathview  # the path probe's hop table and chart

    parts += [f"<section><h2>The path, hop by hop</h2>{pathview.html_section(x)}</section>"
              for x in pathview.paths(report)]
    parts.append("<section><h2>Evidence pack</h2><table>")
    parts += [f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in evidence_rows(report)]
    parts.append("</table></section>")

    parts += _probes(report)
    parts.append(f'<p class="muted">roomprobe {escape(report.roomprobe_version)} &middot; '
                 f'report schema {escape(report.schema)}</p></main></body></html>')
    return "\n".join(parts) + "\n"


class HtmlFormat:
    """``--format html``: one self-contained page to attach to a ticket."""

    name = "html"

    def render(self, report: Report, term: Terminal, opts: RenderOptions) -> str:
        return render_html(report)


FORMAT = HtmlFormat()
