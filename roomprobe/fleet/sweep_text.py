"""``sweep --format text``: the table a technician reads, worst first, and a one-line tally."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from roomprobe.fleet.sweep_out import one_line, row

if TYPE_CHECKING:
    from roomprobe.core.output import RenderOptions, Terminal
    from roomprobe.fleet.sweep_out import SweepView
    from roomprobe.report.model import Report


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


class TableFormat:
    """``sweep --format text``: the worst-first table."""

    name = "text"

    def render(self, view: SweepView, term: Terminal, opts: RenderOptions) -> str:
        return text_table(view.reports, view.summary)


FORMAT = TableFormat()
