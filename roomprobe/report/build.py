"""The report builder: the one place a report (report/model.py) is made and judged.

Schema ``roomprobe/report/v1`` (published as ``roomprobe/report/schema/report-v1.json``, documented in
docs/report.md). Fields are only ever added, never renamed or removed, within v1.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from typing import Any

from roomprobe import __version__
from roomprobe.core.errors import ExitCode
from roomprobe.core.probe import Finding, Status, Targets
from roomprobe.core.redact import redact
from roomprobe.core.runner import ProbeRun
from roomprobe.report.model import (
    CHECK_KEYS,
    EVIDENCE_PACK_KEYS,
    SCHEMA_ID,
    DiagnosisEntry,
    ProbeEntry,
    Report,
    ReportTargets,
)

__all__ = ["SCHEMA_ID", "Report", "assemble", "build", "diagnose", "exit_code", "to_json", "verdict"]

# The run's verdicts, worst first: the order every report, the sweep's table and its exit code use.
STATUS_ORDER = ("fail", "unknown", "warn", "pass")
STATUS_RANK = {s: k for k, s in enumerate(STATUS_ORDER)}
STATUS_EXIT = {"pass": ExitCode.OK, "warn": ExitCode.WARNING, "fail": ExitCode.CRITICAL,
               "unknown": ExitCode.UNKNOWN}


def worst(*statuses: str) -> str:
    """The worse of report statuses (an unknown word counts as ``unknown``)."""
    return min(statuses, key=lambda s: STATUS_RANK.get(s, STATUS_RANK["unknown"]))


def verdict(statuses: Iterable[str], complete: bool = True) -> tuple[bool, str]:
    """(complete, status) of a run from its probes' statuses; precedence fail > unknown > warn >
    pass (docs/report.md).

    ``fail``: some probe measured a failure. Nothing left unmeasured could make it better, so a
    measured failure wins even over an incomplete run. ``unknown``: the run is incomplete (a
    probe ended in ``error``, or Ctrl-C) or nothing was measured at all (every probe skipped):
    what was not measured might be a failure, so neither ``warn`` nor ``pass`` would be true.
    ``warn``: everything finished and some probe warned. ``pass``: everything finished, at least
    one probe passed on its proof, and nothing warned or failed.
    """
    seen = set(statuses)
    complete = complete and "error" not in seen  # core.runner.is_complete's rule, for any entries
    if "fail" in seen:
        return complete, "fail"
    if not complete or not seen & {"pass", "warn"}:
        return complete, "unknown"
    return complete, "warn" if "warn" in seen else "pass"


def exit_code(report: Report) -> ExitCode:
    """Monitoring-plugin exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.

    Follows ``status``; a report written before ``unknown`` existed (status ``warn`` or
    ``pass`` with ``complete: false``) still gives UNKNOWN.
    """
    if report.status != "fail" and not report.complete:
        return ExitCode.UNKNOWN
    return STATUS_EXIT.get(str(report.status), ExitCode.UNKNOWN)


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


@dataclass(frozen=True)
class EvidencePack:
    """What a ticket needs besides the measurements (docs/report.md): who saw what, where, when."""

    room_name: str | None
    note: str | None
    user_code: str | None
    zoom_rooms_app: dict[str, Any] | None
    timezone: dict[str, Any] | None
    window: dict[str, Any] | None


def assemble(*, probes: list[ProbeEntry], findings: list[Finding], targets: ReportTargets,
             host: dict[str, Any], started_at: str, duration_s: float,
             diagnosis: list[DiagnosisEntry], complete: bool = True,
             keys: tuple[str, ...] = CHECK_KEYS) -> Report:
    """A report from its parts, its status and completeness judged here (:func:`verdict`).

    The one constructor of every report: a check's (:func:`build`) and each room of a sweep.
    Redaction is the caller's: a check redacts everything it measured; a sweep builds its rooms
    from validated addresses and redacts its free text at the source (fleet/sweep.py).
    """
    done, status = verdict((p.status for p in probes), complete)
    return Report(roomprobe_version=__version__, started_at=started_at, duration_s=duration_s,
                  complete=done, status=status, host=host, targets=targets, probes=probes,
                  findings=findings, diagnosis=diagnosis, keys=keys)


def build(*, runs: Sequence[ProbeRun], complete: bool, targets: Targets, started_at: float,
          duration_s: float, host: dict[str, Any], pack: EvidencePack | None = None) -> Report:
    """A check's report from the runner's probe runs; everything in it passes credential redaction.

    Evidence is whatever a probe stored (tuples, enums, IP objects): it goes through JSON once
    here, so the report holds plain data and redaction sees every string, exactly as it is
    written out. The diagnosis is added by :func:`diagnose` once the findings are known.
    """
    rep = assemble(
        probes=[ProbeEntry(id=r.probe.id, status=Status(r.result.status).value, reason=r.result.reason,
                           summary=r.result.summary, duration_s=round(r.duration_s, 3),
                           evidence=r.result.evidence) for r in runs],
        findings=[f for r in runs for f in r.result.findings],
        targets=ReportTargets(controller=targets.controller, room=targets.room, role=targets.role,
                              port=targets.port),
        host=host, started_at=rfc3339(started_at), duration_s=round(duration_s, 3), diagnosis=[],
        complete=complete)
    if pack is not None:
        rep = replace(rep, **asdict(pack), keys=(*CHECK_KEYS, *EVIDENCE_PACK_KEYS))
    return Report.from_dict(redact(json.loads(json.dumps(rep.to_dict(), default=str))))


def diagnose(findings: Sequence[Finding], user_code: str | None, probes_run: set[str]) -> list[DiagnosisEntry]:
    """Findings -> likely Zoom error codes (diagnose/mapping.py), the user's code first."""
    from roomprobe.diagnose import mapping

    items = mapping.diagnose([f.to_dict() for f in findings], user_code, probes_run=probes_run)
    return [DiagnosisEntry.from_dict(d) for d in items]


def to_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=False) + "\n"


def load_schema(name: str = "report-v1") -> dict[str, Any]:
    """A published schema (roomprobe/report/schema/NAME.json): ``report-v1`` (check) or
    ``sweep-v1`` (sweep --format json, whose rooms refer to report-v1.json)."""
    from importlib.resources import files

    return json.loads(files("roomprobe.report").joinpath(f"schema/{name}.json").read_text("utf-8"))


def schema_validator(name: str = "report-v1") -> Any:
    """A jsonschema validator for a published schema, its references to the other published
    schemas resolved locally (nothing is fetched; their ``$id`` URLs are not real)."""
    import jsonschema  # type: ignore[import-untyped,unused-ignore]

    schema = load_schema(name)
    others = [load_schema(n) for n in ("report-v1", "sweep-v1") if n != name]
    try:
        from referencing import Registry, Resource
    except ImportError:  # jsonschema < 4.18
        store = {s["$id"]: s for s in [schema, *others]}
        resolver = jsonschema.RefResolver.from_schema(schema, store=store)
        return jsonschema.Draft202012Validator(schema, resolver=resolver)
    registry = Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in others)
    return jsonschema.Draft202012Validator(schema, registry=registry)
