"""What every sweep format shares: the view they render and the flat row of one room.

The formats are one module each: sweep_text.py (the worst-first table a technician reads),
sweep_json.py (one v1 report per room plus a summary, streamed), sweep_csv.py (for a
spreadsheet), sweep_html.py (a self-contained page to open from a ticket or a share). Every
room-supplied value (inventory names come from the field) is escaped in html and defused in CSV.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from roomprobe.fleet.sweep import facts_of

if TYPE_CHECKING:
    from roomprobe.report.model import Report


@dataclass(frozen=True)
class SweepView:
    """What every sweep format renders: the rooms' reports (worst first), the tally, the start."""

    reports: Sequence[Report]
    summary: dict[str, Any]
    started_at: str = ""


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
