"""Prometheus textfile export: node_exporter's / windows_exporter's textfile collector reads it.

Why a textfile and not our own HTTP endpoint: every fleet already runs an exporter, so a room
PC needs no new open port. The file is written atomically (temp file + rename in the same
directory) because the collector may read it at any moment and must never see half a file.

Why every series carries ``room`` and ``target``: a monitoring host that checks several rooms
writes one textfile per room, and node_exporter merges all files into one scrape; without a
label that tells them apart two files produce the same series and the scrape fails
("collected before with the same name and label values"), losing every room's status.

Why measurements are read by name, per probe (:data:`EXTRACTORS`), not by a key pattern: a
pattern cannot tell a measured ``ms`` from a configured ``slow_ms`` threshold, and it misses
values nested the way the probe really stores them (bandwidth's ``download.mbps``). Only what a
probe measured is exported; units are in the names (seconds, bits per second, ratio).

Labels are bounded: ``room``/``target`` are one value per file (the room's name or address),
``probe`` comes from the registered probes, ``status``/``severity`` from fixed enums,
``direction``/``path`` from fixed sets, ``port`` from the configured port list. No message, host
name list or other run-time text becomes a label.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from roomprobe.core.errors import UsageError
from roomprobe.report.measures import EXTRACTORS

if TYPE_CHECKING:
    from roomprobe.report.model import Report

PROBE_STATUSES = ("pass", "warn", "fail", "skip", "error")
SEVERITIES = ("info", "warn", "fail")
MAX_LABEL_LEN = 128

def room_labels(report: Report) -> dict[str, str]:
    """``room``: the name given with --room-name, else the room's address, else this host's name
    (a check on the room PC itself); ``target``: the address checked (room or controller)."""
    t = report.targets
    host = report.host or {}
    target = str(t.room or t.controller or "")
    room = str(report.room_name or t.room or host.get("hostname") or "")
    return {"room": room[:MAX_LABEL_LEN], "target": target[:MAX_LABEL_LEN]}


# ---------------------------------------------------------------- rendering


def families(report: Report, exit_code: int) -> dict[str, tuple[str, list[tuple[dict[str, str], float]]]]:
    """name -> (help, [(labels without room/target, value)]) for one report."""
    from roomprobe import __version__

    fam: dict[str, tuple[str, list[tuple[dict[str, str], float]]]] = {}

    def add(name: str, help_: str, labels: dict[str, str], value: float) -> None:
        fam.setdefault(f"roomprobe_{name}", (help_, []))[1].append((labels, float(value)))

    add("info", "roomprobe's version and the check's role (value always 1).",
        {"version": str(report.roomprobe_version or __version__), "role": str(report.targets.role or "")}, 1)
    add("last_run_timestamp_seconds", "Unix time the last check started.", {}, _started(report))
    add("last_run_duration_seconds", "How long the last check took.", {}, float(report.duration_s))
    add("exit_code", "Last check's exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.", {}, exit_code)
    add("complete", "1 if every probe finished within the deadline.", {}, 1 if report.complete else 0)
    for p in report.probes:
        pid = str(p.id)
        for s in PROBE_STATUSES:
            add("probe_status", "1 for the probe's status in the last check, 0 for the others.",
                {"probe": pid, "status": s}, 1 if p.status == s else 0)
        if p.status == "skip":
            continue
        add("success", "1 if the probe passed on measured evidence, 0 if not (blackbox style).",
            {"probe": pid}, 1 if p.status == "pass" else 0)
        add("probe_duration_seconds", "How long each probe took.", {"probe": pid}, float(p.duration_s))
        ev = p.evidence
        extract = EXTRACTORS.get(pid)
        if extract and isinstance(ev, dict):
            for name, help_, labels, value in extract(ev):
                add(name, help_, labels, value)
    top = next(iter(report.diagnosis), None)
    if report.findings and top is not None and top.code is not None:
        # The likely Zoom code (from the catalog: a bounded label set), for "rooms failing by code".
        add("likely_code", "1 for the Zoom error code the findings most likely cause.",
            {"product": str(top.product or ""), "code": str(top.code)}, 1)
    for sev in SEVERITIES:
        add("findings", "Findings in the last check, by severity.", {"severity": sev},
            sum(1 for f in report.findings if f.severity == sev))
    return fam


def render(report: Report, exit_code: int, *, extra_labels: dict[str, str] | None = None) -> str:
    """The report as Prometheus text exposition format (via prometheus_client, which escapes)."""
    return render_many([(report, exit_code)], extra_labels=extra_labels)


def render_many(items: list[tuple[Report, int]], *,
                extra_labels: dict[str, str] | None = None) -> str:
    """Several rooms' reports in one exposition (``sweep``): one family per name, room-labelled."""
    from prometheus_client import CollectorRegistry, generate_latest

    reg = CollectorRegistry(auto_describe=False)
    reg.register(collector(items, extra_labels=extra_labels))  # type: ignore[arg-type]
    return generate_latest(reg).decode("utf-8")


def collector(items: list[tuple[Report, int]], *,
              extra_labels: dict[str, str] | None = None) -> Any:
    """A prometheus_client collector of the reports' families (what ``render_many`` writes), for
    a caller that registers it beside its own metrics (the exporter's ``/probe``)."""
    from prometheus_client.core import GaugeMetricFamily

    merged: dict[str, tuple[str, list[tuple[dict[str, str], float]]]] = {}
    for report, code in items:
        base = {**room_labels(report), **(extra_labels or {})}
        for name, (help_, samples) in families(report, code).items():
            merged.setdefault(name, (help_, []))[1].extend(({**base, **lb}, v) for lb, v in samples)

    class _Collector:
        def collect(self) -> Iterator[GaugeMetricFamily]:
            for name, (help_, samples) in merged.items():
                # One family per name; every sample gets the union of label names ("" if absent).
                keys = list(dict.fromkeys(k for labels, _ in samples for k in labels))
                fam = GaugeMetricFamily(name, help_, labels=keys)
                for labels, value in samples:
                    fam.add_metric([labels.get(k, "") for k in keys], value)
                yield fam

    return _Collector()


def _started(report: Report) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(report.started_at).replace("Z", "+00:00")).timestamp()
    except ValueError:
        import time

        return time.time()


def write(path: str | os.PathLike[str], report: Report, exit_code: int) -> None:
    """Atomically replace ``path`` (the collector only reads files ending in ``.prom``)."""
    write_text(path, render(report, exit_code))


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Atomically write an already rendered exposition to ``path`` (``*.prom``)."""
    from roomprobe.core.fsutil import atomic_write_text

    if not str(path).endswith(".prom"):
        raise UsageError(f"--prometheus-textfile {path}: the textfile collector only reads *.prom "
                         "files; name it e.g. roomprobe.prom")
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}; point --prometheus-textfile "
                         "at the collector's directory") from None
