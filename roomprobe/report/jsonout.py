"""``--format json``: the report as its schema writes it (roomprobe/report/v1), for scripts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from roomprobe.report.build import to_json

if TYPE_CHECKING:
    from roomprobe.core.output import RenderOptions, Terminal
    from roomprobe.report.model import Report


class JsonFormat:
    """The whole report, indented, keys in the order v1 writes them."""

    name = "json"

    def render(self, report: Report, term: Terminal, opts: RenderOptions) -> str:
        return to_json(report)


FORMAT = JsonFormat()
