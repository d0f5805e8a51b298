"""``sweep --format json`` (schema roomprobe/sweep/v1): one v1 report per room plus a summary."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from roomprobe.core.output import RenderOptions, Terminal
    from roomprobe.fleet.sweep_out import SweepView
    from roomprobe.report.model import Report


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


class JsonFormat:
    """``sweep --format json`` (schema roomprobe/sweep/v1): streamed by :meth:`write`, since
    10,000 rooms must not be one string in memory."""

    name = "json"

    def render(self, view: SweepView, term: Terminal, opts: RenderOptions) -> str:
        return to_json(view.reports, view.summary)

    def write(self, view: SweepView, term: Terminal, opts: RenderOptions) -> None:
        write_json(view.reports, view.summary, term.stdout)


FORMAT = JsonFormat()
