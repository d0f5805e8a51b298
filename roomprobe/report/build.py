"""The report: the stable JSON contract that tickets, scripts and monitoring read.

Schema ``roomprobe/report/v1`` (published as ``roomprobe/report/schema/report-v1.json``, documented in
docs/report.md). Fields are only ever added, never renamed or removed, within v1.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from roomprobe import __version__
from roomprobe.core.errors import ExitCode
from roomprobe.core.probe import Status, Targets
from roomprobe.core.redact import redact
from roomprobe.core.runner import ProbeRun

SCHEMA_ID = "roomprobe/report/v1"


STATUS_EXIT = {"pass": ExitCode.OK, "warn": ExitCode.WARNING, "fail": ExitCode.CRITICAL,
               "unknown": ExitCode.UNKNOWN}


def overall_status(runs: Sequence[ProbeRun], complete: bool = True) -> str:
    """The run's verdict; precedence fail > unknown > warn > pass (docs/report.md).

    ``fail``: some probe measured a failure. Nothing left unmeasured could make it better, so a
    measured failure wins even over an incomplete run. ``unknown``: the run is incomplete (a
    probe ended in ``error``, or Ctrl-C) or nothing was measured at all (every probe skipped):
    what was not measured might be a failure, so neither ``warn`` nor ``pass`` would be true.
    ``warn``: everything finished and some probe warned. ``pass``: everything finished, at least
    one probe passed on its proof, and nothing warned or failed.
    """
    statuses = {r.result.status for r in runs}
    if Status.FAIL in statuses:
        return "fail"
    if not complete or Status.ERROR in statuses or not statuses & {Status.PASS, Status.WARN}:
        return "unknown"
    if Status.WARN in statuses:
        return "warn"
    return "pass"


def exit_code(report: dict[str, Any]) -> ExitCode:
    """Monitoring-plugin exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.

    Follows ``status``; a report written before ``unknown`` existed (status ``warn`` or
    ``pass`` with ``complete: false``) still gives UNKNOWN.
    """
    status = report.get("status")
    if status != "fail" and not report.get("complete", False):
        return ExitCode.UNKNOWN
    return STATUS_EXIT.get(str(status), ExitCode.UNKNOWN)


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


def build(*, runs: Sequence[ProbeRun], complete: bool, targets: Targets, started_at: float,
          duration_s: float, host: dict[str, Any], diagnosis: list[dict[str, Any]] | None = None,
          extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Assemble the report dict; everything in it passes through credential redaction."""
    findings = [f.to_dict() for r in runs for f in r.result.findings]
    report: dict[str, Any] = {
        "schema": SCHEMA_ID,
        "roomprobe_version": __version__,
        "started_at": rfc3339(started_at),
        "duration_s": round(duration_s, 3),
        "complete": complete,  # the runner's (core.runner.is_complete), not re-derived here
        "status": overall_status(runs, complete),
        "host": host,
        "targets": {"controller": targets.controller, "room": targets.room, "role": targets.role,
                    "port": targets.port},
        "probes": [{
            "id": r.probe.id,
            "status": r.result.status.value,
            "reason": r.result.reason,
            "summary": r.result.summary,
            "duration_s": round(r.duration_s, 3),
            "evidence": r.result.evidence,
        } for r in runs],
        "findings": findings,
        "diagnosis": diagnosis or [],
    }
    if extra:
        report.update(extra)
    # Round-trip through JSON so the report is plain data (no tuples, enums, IP objects).
    return redact(json.loads(json.dumps(report, default=str)))


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=False) + "\n"


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
