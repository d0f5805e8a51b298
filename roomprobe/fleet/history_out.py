"""What ``roomprobe history`` prints: past runs newest first, then what changed since healthy.

The subject is the history view (``{"db", "runs", "changes"}``: fleet/history.py's rows, not
reports: a history row keeps the run's summary, its full report stays in the database).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from roomprobe.core.output import RenderOptions, Terminal


def render_text(data: dict[str, Any]) -> str:
    """Plain text: one line per run, then the change summary."""
    lines = [f"History: {data['db']}"]
    if not data["runs"]:
        lines.append("  no runs in that window")
    for r in data["runs"]:
        ids = ", ".join(sorted({f["id"] for f in r["findings"] if f["severity"] != "info"}))
        flag = "" if r["complete"] else " (incomplete)"
        lines.append(f"  #{r['id']:<5} {r['started_at']}  {r['status'].upper():<4}{flag}  "
                     f"{r['duration_s']:.1f}s  {ids}".rstrip())
    ch = data["changes"]
    if ch["latest"] is not None:
        lines.append("")
        base = ch["baseline"]
        if base is None:
            lines.append("Changes since the start of the history (no earlier healthy run):")
        else:
            lines.append(f"Changes since the last healthy run #{base['id']} ({base['started_at']}):")
        if ch["unhealthy_since"]:
            lines.append(f"  unhealthy since {ch['unhealthy_since']}")
        for f in ch["new"]:
            lines.append(f"  + {f['id']} ({f['severity']}, {f['probe']})")
        for f in ch["cleared"]:
            lines.append(f"  - {f['id']} ({f['severity']}, {f['probe']}) cleared")
        if not ch["new"] and not ch["cleared"]:
            lines.append("  no change")
    return "\n".join(lines) + "\n"


class TextFormat:
    """``history --format text``: one line per run, then the change summary."""

    name = "text"

    def render(self, data: dict[str, Any], term: Terminal, opts: RenderOptions) -> str:
        return render_text(data)


class JsonFormat:
    """``history --format json``: the same view for scripts."""

    name = "json"

    def render(self, data: dict[str, Any], term: Terminal, opts: RenderOptions) -> str:
        return json.dumps(data, indent=2) + "\n"


FORMATS = (TextFormat(), JsonFormat())
