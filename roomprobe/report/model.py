"""The report as types: what every renderer, the history, the metrics and the webhook read.

Built once by report/build.py (a check, the path command, each room of a sweep) or read back from
JSON by :meth:`Report.from_dict` (``roomprobe report FILE.json``, an agent's answer); turned into
JSON only at the edge by :meth:`Report.to_dict` (``--json``, ``--format json``, the history row,
the webhook, the sweep's JSON). Schema ``roomprobe/report/v1`` is unchanged: the dict is the
same, key for key and in the same order.

Why the key order is kept (``keys``): v1 reports have been written with two orders (a check's and
a sweep room's, whose probes also order their keys three ways), and people diff saved reports;
an order that changed with the refactor would be a change every byte-level comparison sees. A
report read from a file keeps the file's order and any key v1 added that this version does not
model (the schema allows them); ``has(key)`` tells an absent evidence-pack field ("not recorded",
an older report) from one recorded as null. So ``keys`` also decides which optional fields are
written: the builder that sets one names it there (report/build.build, fleet/sweep.room_report).

``host`` and each probe's ``evidence`` stay plain JSON data: they are the OS's facts and the
probe's measurements, open-ended by design (docs/report.md), read by key where they are shown.
Findings are :class:`roomprobe.core.probe.Finding`, the probes' own type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from roomprobe.core.probe import Finding, Severity

SCHEMA_ID = "roomprobe/report/v1"

# Key orders v1 reports are written in (see the module docstring).
CHECK_KEYS = ("schema", "roomprobe_version", "started_at", "duration_s", "complete", "status", "host",
              "targets", "probes", "findings", "diagnosis")
EVIDENCE_PACK_KEYS = ("room_name", "note", "user_code", "zoom_rooms_app", "timezone", "window")
SWEEP_KEYS = ("schema", "roomprobe_version", "started_at", "duration_s", "complete", "status", "targets",
              "probes", "findings", "diagnosis", "sweep")
PROBE_KEYS = ("id", "status", "reason", "summary", "duration_s", "evidence")

_OPTIONAL = (*EVIDENCE_PACK_KEYS, "sweep", "deep")


def _ordered(values: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """``values`` in the order of ``keys``; keys not in ``values`` are left out."""
    return {k: values[k] for k in keys if k in values}


@dataclass
class ProbeEntry:
    """One probe's line in the report: what it concluded and what it measured."""

    id: str
    status: str  # pass | warn | fail | skip | error
    reason: str
    summary: str
    duration_s: float
    evidence: dict[str, Any] = field(default_factory=dict)
    keys: tuple[str, ...] = field(default=PROBE_KEYS, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return _ordered({"id": self.id, "status": self.status, "reason": self.reason,
                         "summary": self.summary, "duration_s": self.duration_s,
                         "evidence": self.evidence}, self.keys)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProbeEntry:
        return cls(id=d["id"], status=d["status"], reason=d["reason"], summary=d["summary"],
                   duration_s=d["duration_s"], evidence=d["evidence"], keys=tuple(d))


def finding_from_dict(d: dict[str, Any]) -> Finding:
    """A report's finding back as the probes' Finding (``hint`` only when given)."""
    return Finding(id=d["id"], severity=Severity(d["severity"]), message=d["message"],
                   evidence=d["evidence"], hint=d.get("hint"), probe=d["probe"])


_DIAGNOSIS_REQUIRED = ("product", "code", "title", "likelihood", "because", "fix")
_DIAGNOSIS_OPTIONAL = ("cause", "kind", "user_code", "ruled_out")


@dataclass
class DiagnosisEntry:
    """One likely Zoom error code (diagnose/mapping.py): why, and the fix steps.

    ``cause``, ``kind``, ``user_code`` and ``ruled_out`` are present when the mapping set them;
    ``ruled_out`` is whatever a schema-valid report holds (the schema leaves it open), read
    through :func:`roomprobe.report.text.ruled_out`. ``extra`` keeps keys a newer v1 added.
    """

    product: str
    code: int
    title: str
    likelihood: str
    because: list[str]
    fix: list[str]
    cause: str | None = None
    kind: str | None = None
    user_code: bool = False
    ruled_out: Any = None
    keys: tuple[str, ...] = field(default=(), compare=False, repr=False)  # (): the set ones
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        keys = self.keys or (*_DIAGNOSIS_REQUIRED, *(k for k in _DIAGNOSIS_OPTIONAL if getattr(self, k)))
        values = {"product": self.product, "code": self.code, "title": self.title,
                  "likelihood": self.likelihood, "because": self.because, "fix": self.fix,
                  "cause": self.cause, "kind": self.kind, "user_code": self.user_code,
                  "ruled_out": self.ruled_out, **self.extra}
        return _ordered(values, keys)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DiagnosisEntry:
        """A diagnosis entry (diagnose/mapping.py's, or a saved report's) with its key order."""
        known = {*_DIAGNOSIS_REQUIRED, *_DIAGNOSIS_OPTIONAL}
        return cls(product=d["product"], code=d["code"], title=d["title"], likelihood=d["likelihood"],
                   because=d["because"], fix=d["fix"], cause=d.get("cause"), kind=d.get("kind"),
                   user_code=d.get("user_code", False), ruled_out=d.get("ruled_out"), keys=tuple(d),
                   extra={k: v for k, v in d.items() if k not in known})


@dataclass
class ReportTargets:
    """Who was checked: the controller and/or the room, this host's role, the room's port."""

    controller: str | None
    room: str | None
    role: str  # room | controller-side | unknown
    port: int | None = None  # absent in reports written before it was recorded

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"controller": self.controller, "room": self.room, "role": self.role}
        if self.port is not None:
            out["port"] = self.port
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReportTargets:
        return cls(controller=d.get("controller"), room=d.get("room"), role=d["role"], port=d.get("port"))


@dataclass
class SweepFacts:
    """What a sweep adds to a room's report: the port state, the likely code, the inventory row."""

    state: str
    likely_code: str | None
    likely_title: str | None
    controllers: list[str]
    peer: str | None
    measured_from: str
    deep: str | None = None  # the room's own check's status, with --deep

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state, "likely_code": self.likely_code,
                               "likely_title": self.likely_title, "controllers": self.controllers,
                               "peer": self.peer, "measured_from": self.measured_from}
        if self.deep is not None:
            out["deep"] = self.deep
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SweepFacts:
        return cls(state=d["state"], likely_code=d.get("likely_code"), likely_title=d.get("likely_title"),
                   controllers=list(d.get("controllers") or []), peer=d.get("peer"),
                   measured_from=str(d.get("measured_from") or ""), deep=d.get("deep"))


@dataclass
class Report:
    """One run's report (schema roomprobe/report/v1): a check, the path command, or a sweep room.

    The evidence pack (``room_name`` ... ``window``) is what a ticket needs besides the
    measurements; a sweep room has ``room_name`` (from the inventory) and ``sweep``, and ``deep``
    (the agent's outcome, its report as the agent sent it) with --deep.
    """

    roomprobe_version: str
    started_at: str
    duration_s: float
    complete: bool
    status: str  # pass | warn | fail | unknown
    host: dict[str, Any]
    targets: ReportTargets
    probes: list[ProbeEntry]
    findings: list[Finding]
    diagnosis: list[DiagnosisEntry]
    schema: str = SCHEMA_ID
    room_name: str | None = None
    note: str | None = None
    user_code: str | None = None
    zoom_rooms_app: dict[str, Any] | None = None
    timezone: dict[str, Any] | None = None
    window: dict[str, Any] | None = None
    sweep: SweepFacts | None = None
    deep: dict[str, Any] | None = None
    keys: tuple[str, ...] = field(default=CHECK_KEYS, compare=False, repr=False)
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def has(self, key: str) -> bool:
        """Whether the report records ``key`` (an evidence-pack field, ``sweep``, ``deep``), even
        as null: an older report without it shows "not recorded", not "not found"."""
        return key in self.keys

    def probe(self, probe_id: str) -> ProbeEntry | None:
        return next((p for p in self.probes if p.id == probe_id), None)

    def to_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "schema": self.schema, "roomprobe_version": self.roomprobe_version,
            "started_at": self.started_at, "duration_s": self.duration_s, "complete": self.complete,
            "status": self.status, "host": self.host, "targets": self.targets.to_dict(),
            "probes": [p.to_dict() for p in self.probes],
            "findings": [f.to_dict() for f in self.findings],
            "diagnosis": [d.to_dict() for d in self.diagnosis],
            "room_name": self.room_name, "note": self.note, "user_code": self.user_code,
            "zoom_rooms_app": self.zoom_rooms_app, "timezone": self.timezone, "window": self.window,
            "sweep": self.sweep.to_dict() if self.sweep is not None else None, "deep": self.deep,
            **self.extra}
        return _ordered(values, self.keys)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Report:
        """A v1 report dict (validated against the schema by the caller) as a Report."""
        known = {*CHECK_KEYS, *_OPTIONAL}
        return cls(
            schema=d["schema"], roomprobe_version=d["roomprobe_version"], started_at=d["started_at"],
            duration_s=d["duration_s"], complete=d["complete"], status=d["status"], host=d["host"],
            targets=ReportTargets.from_dict(d["targets"]),
            probes=[ProbeEntry.from_dict(p) for p in d["probes"]],
            findings=[finding_from_dict(f) for f in d["findings"]],
            diagnosis=[DiagnosisEntry.from_dict(x) for x in d["diagnosis"]],
            room_name=d.get("room_name"), note=d.get("note"), user_code=d.get("user_code"),
            zoom_rooms_app=d.get("zoom_rooms_app"), timezone=d.get("timezone"), window=d.get("window"),
            sweep=SweepFacts.from_dict(d["sweep"]) if isinstance(d.get("sweep"), dict) else None,
            deep=d.get("deep"), keys=tuple(d), extra={k: v for k, v in d.items() if k not in known})
