"""The path probe's hop table in text, markdown and html (with an SVG chart, PingPlotter style).

Why its own module: the table is shared by the live ``roomprobe path`` view and every renderer
of a saved report; the renderers only ask :func:`paths` whether a report has one, so each of
them grows by a line or two. Reads the report only (the evidence the probe stored).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from roomprobe.report.model import Report

COLUMNS = ("Hop", "Address", "Zone", "Loss%", "Sent", "Min", "Med", "P95", "Max", "Jit", "Note")


def paths(report: Report) -> list[dict[str, Any]]:
    """Every traced path in a report (the path probe's evidence), possibly none."""
    for p in report.probes:
        if p.id == "path" and isinstance(p.evidence, dict):
            return [x for x in p.evidence.get("paths") or [] if isinstance(x, dict)]
    return []


def _f(v: Any) -> str:
    return "" if v is None else f"{float(v):.1f}"


def rows(path: dict[str, Any]) -> list[list[str]]:
    out = []
    for h in path.get("hops") or []:
        r = h.get("rtt_ms") or {}
        addrs = h.get("addresses") or []
        addr = addrs[0] if addrs else "???"
        if len(addrs) > 1:
            addr += f" (+{len(addrs) - 1})"
        loss = _f(h.get("loss_pct")) if h.get("received") else "-"
        out.append([str(h.get("ttl")), addr, str(h.get("zone") or ""), loss,
                    str(h.get("sent", "")), _f(r.get("min")), _f(r.get("median")), _f(r.get("p95")),
                    _f(r.get("max")), _f(r.get("jitter")), str(h.get("note") or "")])
    return out


def headline(path: dict[str, Any]) -> str:
    dest = path.get("destination")
    how = f"{path.get('method')}, {path.get('rounds')} rounds"
    if path.get("role") == "back":
        if path.get("answered") is False:
            return f"Path back from the peer: not traced ({path.get('traced_by')})"
        how += f", traced back by the peer at {path.get('traced_by')}"
    if dest:
        return (f"Path to {path.get('host') or path.get('target')} ({path.get('address')}): "
                f"{dest.get('ttl')} hops, {how}")
    return f"Path to {path.get('host') or path.get('target')} ({path.get('address')}): no answer, {how}"


def text_lines(path: dict[str, Any]) -> list[str]:
    table = [list(COLUMNS), *rows(path)]
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS) - 1)]
    lines = [headline(path), f"  method: {path.get('method_why')}"]
    for r in table:
        cells = [r[i].rjust(widths[i]) if i not in (1, 2) else r[i].ljust(widths[i])
                 for i in range(len(COLUMNS) - 1)]
        lines.append("  " + "  ".join(cells) + ("  " + r[-1] if r[-1] else ""))
    return lines


def live_lines(trace: dict[str, Any], count: int) -> list[str]:
    """The table while the rounds run (no zones yet: those come with the verdict)."""
    of = f"/{count}" if count else ""
    lines = [f"roomprobe path {trace.get('target')} ({trace.get('address')}): round "
             f"{trace.get('rounds')}{of}, {trace.get('method')}  (Ctrl-C ends with the report)"]
    for h in trace.get("hops") or []:
        h.setdefault("zone", "")
    lines += text_lines(trace)[2:]
    return lines


def markdown(path: dict[str, Any]) -> str:
    def cell(s: str) -> str:
        return s.replace("|", "\\|")

    out = [f"**{cell(headline(path))}** ({cell(str(path.get('method_why') or ''))})", "",
           "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    out += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows(path)]
    return "\n".join(out) + "\n"


def svg_chart(path: dict[str, Any], width: int = 760, height: int = 220) -> str:
    """Loss (red bars) and median RTT with its min-max range (blue) per hop, one column each."""
    hops = path.get("hops") or []
    if not hops:
        return ""
    left, right, top, bottom = 46, 46, 14, 52
    w, h = width - left - right, height - top - bottom
    col = w / len(hops)
    rmax = max([float((x.get("rtt_ms") or {}).get("max") or 0) for x in hops] + [1.0])
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="loss and latency per hop" '
             'style="font:11px sans-serif">',
             f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="#fafafa" stroke="#ccc"/>']
    for frac in (0.5, 1.0):
        y = top + h - frac * h
        parts.append(f'<line x1="{left}" x2="{left + w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e4e4"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" fill="#1f5fa8">'
                     f'{rmax * frac:.{0 if rmax >= 20 else 1}f} ms</text>')
        parts.append(f'<text x="{left + w + 4}" y="{y + 4:.1f}" fill="#b3261e">{100 * frac:.0f}%</text>')
    pts = []
    for i, x in enumerate(hops):
        cx = left + col * (i + 0.5)
        loss = float(x.get("loss_pct") or 0) if x.get("received") else None
        if loss:
            bh = h * loss / 100
            limited = "rate-limits" in str(x.get("note"))  # not loss: grey, so nobody reads it as loss
            fill, why = ("#9e9e9e", "rate limit of its ICMP answers, not loss") if limited else ("#b3261e", "")
            parts.append(f'<rect x="{cx - col * 0.3:.1f}" y="{top + h - bh:.1f}" width="{col * 0.6:.1f}" '
                         f'height="{bh:.1f}" fill="{fill}" opacity="0.6"><title>hop {x.get("ttl")}: '
                         f'{loss:g}% unanswered{": " + why if why else ""}</title></rect>')
        if loss is None:
            parts.append(f'<text x="{cx:.1f}" y="{top + h - 4}" text-anchor="middle" fill="#888">'
                         'no reply</text>')
        r = x.get("rtt_ms") or {}
        if r.get("median") is not None:
            y_lo = top + h - h * float(r["min"]) / rmax
            y_hi = top + h - h * float(r["max"]) / rmax
            y_md = top + h - h * float(r["median"]) / rmax
            parts.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y_lo:.1f}" y2="{y_hi:.1f}" '
                         'stroke="#1f5fa8" stroke-width="2" opacity="0.5"/>')
            pts.append(f"{cx:.1f},{y_md:.1f}")
            parts.append(f'<circle cx="{cx:.1f}" cy="{y_md:.1f}" r="3.5" fill="#1f5fa8"><title>hop '
                         f'{x.get("ttl")}: median {float(r["median"]):.1f} ms</title></circle>')
        label = html.escape(((x.get("addresses") or ["???"])[0])[:18])
        parts.append(f'<text x="{cx:.1f}" y="{top + h + 14}" text-anchor="middle">{x.get("ttl")}</text>')
        parts.append(f'<text x="{cx:.1f}" y="{top + h + 27}" text-anchor="middle" fill="#555" '
                     f'font-size="9">{label}</text>')
    ly = height - 6
    parts.append(f'<rect x="{left}" y="{ly - 8}" width="10" height="8" fill="#b3261e" opacity="0.6"/>'
                 f'<text x="{left + 14}" y="{ly}">loss</text>'
                 f'<rect x="{left + 50}" y="{ly - 8}" width="10" height="8" fill="#9e9e9e" opacity="0.6"/>'
                 f'<text x="{left + 64}" y="{ly}">unanswered: the router rate-limits its replies (not loss)</text>'
                 f'<circle cx="{left + 400}" cy="{ly - 4}" r="3.5" fill="#1f5fa8"/>'
                 f'<text x="{left + 408}" y="{ly}">median RTT (bar: min-max)</text>')
    if len(pts) > 1:
        parts.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="#1f5fa8" stroke-width="1.5"/>')
    parts.append("</svg>")
    return "".join(parts)


def html_section(path: dict[str, Any]) -> str:
    """The headline, the chart and the table for one path (escaped, self-contained)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = []
    for r, hop in zip(rows(path), path.get("hops") or [], strict=True):
        cls = ' class="lossy"' if "persists" in str(hop.get("note")) else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>")
    return (f'<section class="path"><h3>{html.escape(headline(path))}</h3>'
            f'<p class="why">{html.escape(str(path.get("method_why") or ""))}</p>'
            f"{svg_chart(path)}<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            "</section>")
