"""Prometheus textfile export: node_exporter's / windows_exporter's textfile collector reads it.

Why a textfile and not our own HTTP endpoint: every fleet already runs an exporter, so a room
PC needs no new open port. The file is written atomically (temp file + rename in the same
directory) because the collector may read it at any moment and must never see half a file.

Labels are bounded by construction: ``probe`` comes from the registered probes, ``status`` and
``severity`` from fixed enums, ``field`` from evidence key names written in the probes' code.
No address, host name, message or other run-time value ever becomes a label.
"""

from __future__ import annotations

import os
import re
from typing import Any

from roomprobe.core.errors import UsageError

PROBE_STATUSES = ("pass", "warn", "fail", "skip", "error")
SEVERITIES = ("info", "warn", "fail")
MAX_FIELDS_PER_PROBE = 16
_LATENCY = re.compile(r"^(?:[a-z0-9_]+_)?ms$")  # rtt_ms, connect_ms, ms
_BANDWIDTH = re.compile(r"^[a-z0-9_]+_(mbps|kbps|bps)$")
_BPS = {"mbps": 1e6, "kbps": 1e3, "bps": 1.0}


def _numbers(evidence: Any) -> list[tuple[str, float]]:
    if not isinstance(evidence, dict):
        return []
    return [(k, float(v)) for k, v in evidence.items()
            if isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)]


def render(report: dict[str, Any], exit_code: int) -> str:
    """The report as Prometheus text exposition format (via prometheus_client)."""
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    reg = CollectorRegistry()
    ns = "roomprobe"
    Gauge("last_run_timestamp_seconds", "Unix time the last check started.", namespace=ns,
          registry=reg).set(_started(report))
    Gauge("last_run_duration_seconds", "How long the last check took.", namespace=ns,
          registry=reg).set(float(report.get("duration_s", 0.0)))
    Gauge("exit_code", "Last check's exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
          namespace=ns, registry=reg).set(exit_code)
    Gauge("complete", "1 if every probe finished within the deadline.", namespace=ns,
          registry=reg).set(1 if report.get("complete") else 0)
    status = Gauge("probe_status", "1 for the probe's status in the last check, 0 for the others.",
                   ["probe", "status"], namespace=ns, registry=reg)
    dur = Gauge("probe_duration_seconds", "How long each probe took.", ["probe"], namespace=ns,
                registry=reg)
    lat = Gauge("probe_latency_seconds", "Latencies a probe measured (evidence *_ms fields).",
                ["probe", "field"], namespace=ns, registry=reg)
    bw = Gauge("probe_bandwidth_bits_per_second", "Bandwidth a probe measured (evidence *_mbps).",
               ["probe", "field"], namespace=ns, registry=reg)
    for p in report.get("probes", []):
        pid = str(p["id"])
        for s in PROBE_STATUSES:
            status.labels(pid, s).set(1 if p.get("status") == s else 0)
        dur.labels(pid).set(float(p.get("duration_s", 0.0)))
        n = 0
        for key, value in _numbers(p.get("evidence")):
            if n >= MAX_FIELDS_PER_PROBE:
                break
            if _LATENCY.match(key):
                lat.labels(pid, key).set(value / 1000.0)
                n += 1
            elif m := _BANDWIDTH.match(key):
                bw.labels(pid, key).set(value * _BPS[m.group(1)])
                n += 1
    findings = Gauge("findings", "Findings in the last check, by severity.", ["severity"],
                     namespace=ns, registry=reg)
    for sev in SEVERITIES:
        findings.labels(sev).set(sum(1 for f in report.get("findings", []) if f.get("severity") == sev))
    return generate_latest(reg).decode("utf-8")


def _started(report: dict[str, Any]) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(report["started_at"]).replace("Z", "+00:00")).timestamp()
    except (KeyError, ValueError):
        import time

        return time.time()


def write(path: str | os.PathLike[str], report: dict[str, Any], exit_code: int) -> None:
    """Atomically replace ``path`` (the collector only reads files ending in ``.prom``)."""
    from roomprobe.core.fsutil import atomic_write_text

    if not str(path).endswith(".prom"):
        raise UsageError(f"--prometheus-textfile {path}: the textfile collector only reads *.prom "
                         "files; name it e.g. roomprobe.prom")
    try:
        atomic_write_text(path, render(report, exit_code))
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}; point --prometheus-textfile "
                         "at the collector's directory") from None
