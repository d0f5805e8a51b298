"""A Report from the few fields a test cares about (the rest: a plain, valid v1 report).

Tests used to hand renderers, the history and the metrics writer partial report dicts; the
report is typed now (roomprobe/report/model.py), and a real report always has every field.
"""

from __future__ import annotations

from typing import Any

from roomprobe.report.model import Report

HOST = {"hostname": "room", "os": "Linux", "os_version": "", "interfaces": [], "default_gateway": [],
        "raw_sockets": False}


def as_report(partial: dict[str, Any] | Report) -> Report:
    """``partial`` completed with defaults (probes, findings and diagnosis entries too)."""
    if isinstance(partial, Report):
        return partial
    d: dict[str, Any] = {"schema": "roomprobe/report/v1", "roomprobe_version": "0.0.0",
                         "started_at": "2026-01-01T00:00:00Z", "duration_s": 0.0, "complete": True,
                         "status": "pass", "host": HOST,
                         "targets": {"controller": None, "room": None, "role": "unknown"},
                         "probes": [], "findings": [], "diagnosis": [], **partial}
    d["targets"] = {"controller": None, "room": None, "role": "unknown", **d["targets"]}
    d["probes"] = [{"id": "p", "status": "pass", "reason": "r", "summary": "", "duration_s": 0.0,
                    "evidence": {}, **p} for p in d["probes"]]
    d["findings"] = [{"id": "f", "severity": "warn", "probe": "", "message": "", "evidence": {}, **f}
                     for f in d["findings"]]
    d["diagnosis"] = [{"product": "zoom-rooms", "code": 0, "title": "", "likelihood": "low",
                       "because": [], "fix": [], **x} for x in d["diagnosis"]]
    return Report.from_dict(d)
