"""``sweep --format csv``: one row per room for a spreadsheet; a cell that a spreadsheet would
read as a formula (``=``, ``+``, ``-``, ``@``) is defused."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from roomprobe.fleet.sweep_out import row

if TYPE_CHECKING:
    from roomprobe.core.output import RenderOptions, Terminal
    from roomprobe.fleet.sweep_out import SweepView
    from roomprobe.report.model import Report


CSV_FIELDS = ("status", "room", "address", "port", "state", "ms", "likely_code", "why",
              "controllers", "deep")


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


class CsvFormat:
    """``sweep --format csv``: one row per room for a spreadsheet."""

    name = "csv"

    def render(self, view: SweepView, term: Terminal, opts: RenderOptions) -> str:
        return to_csv(view.reports)


FORMAT = CsvFormat()
