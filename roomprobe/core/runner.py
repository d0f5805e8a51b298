"""Runs probes concurrently, each under its own timeout and all under one global deadline.

Probes block on sockets, subprocesses and scapy, so each gets a daemon thread: a probe that
hangs past its deadline is reported as ``error``/``timeout`` and simply abandoned, and the others
still report. The total wall time is the slowest probe's budget, never the sum of timeouts.
Ctrl-C (or SIGTERM: a scheduler's time limit, a service stop; see :class:`Terminated`) returns
what finished so far and marks the rest ``interrupted``.

The run is *complete* only when every probe reached a verdict: a crash, an overrun of the
deadline, Ctrl-C, or a probe's own ``error`` (it could not measure) makes it incomplete, and
the report then says ``unknown`` (exit 3) unless a measured failure says ``fail``
(roomprobe.report.build.overall_status, docs/report.md).
"""

from __future__ import annotations

import json
import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from roomprobe.core.probe import Context, Probe, Result, Status

# How long past its deadline a probe may take to hand in the result it built from its own
# timeouts before the runner stops waiting for it.
GRACE_S = 0.3
WAIT_SLICE_S = 0.25  # longest single wait, so Ctrl-C is seen promptly on Windows


class Terminated(KeyboardInterrupt):
    """SIGTERM during a run, raised by the check command's handler: it ends the run like Ctrl-C,
    so a scheduled check that hits its time limit (systemd's TimeoutStartSec sends SIGTERM)
    still leaves a partial report and an UNKNOWN history row instead of nothing."""


@dataclass
class ProbeRun:
    probe: Probe
    result: Result
    duration_s: float


def _error(reason: str, summary: str, **evidence: object) -> Result:
    return Result(Status.ERROR, reason, summary, dict(evidence))


def _checked(probe: Probe, result: object) -> Result:
    """A probe that returns garbage is an error of that probe, not of the whole run."""
    if not isinstance(result, Result) or not isinstance(result.status, Status):
        return _error("bad-result", f"probe returned {type(result).__name__}, not a Result")
    if not result.reason or not isinstance(result.evidence, dict):
        return _error("bad-result", "probe result lacks a reason or evidence dict")
    try:
        json.dumps(result.evidence, default=str)
    except (TypeError, ValueError) as exc:
        return _error("bad-result", f"probe evidence is not JSON-able: {exc}")
    for finding in result.findings:
        finding.probe = probe.id
    return result


def _worker(probe: Probe, ctx: Context, out: queue.Queue) -> None:
    t0 = time.monotonic()
    try:
        result = _checked(probe, probe.run(ctx))
    except Exception as exc:
        tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
        result = _error("probe-crashed", f"{type(exc).__name__}: {exc}",
                        exception=type(exc).__name__, message=str(exc),
                        traceback=[line.rstrip() for line in tb[-4:]])
    out.put((probe.id, result, time.monotonic() - t0))


def run(probes: Iterable[Probe], make_context: Callable[[Probe, float], Context],
        global_timeout: float, on_result: Callable[[ProbeRun], None] | None = None,
        ) -> tuple[list[ProbeRun], bool]:
    """Run ``probes``; returns their runs in the given order and whether the run completed
    (no Ctrl-C, and every probe reached a verdict: none ended in ``error``).

    ``make_context(probe, deadline)`` builds each probe's context; ``deadline`` is a
    ``time.monotonic()`` value. The quick probes run concurrently under the one global deadline.
    Long-running probes (bandwidth, call quality) fill the link on purpose, so they start only
    once every quick probe has finished (or run out of time), each with its own budget from
    then: a saturated link would otherwise turn a healthy room's DNS, 9090 connect or TLS
    handshake into false timeouts.
    """
    order = list(probes)
    start = time.monotonic()
    global_deadline = start + global_timeout
    done: queue.Queue = queue.Queue()
    pending: dict[str, tuple[Probe, float, float]] = {}
    runs: dict[str, ProbeRun] = {}
    later = [p for p in order if p.long_running]

    def launch(probe: Probe) -> None:
        now = time.monotonic()
        own = now + probe.timeout_s
        deadline = own if probe.long_running else min(own, global_deadline)
        ctx = make_context(probe, deadline)
        thread = threading.Thread(target=_worker, args=(probe, ctx, done), daemon=True,
                                  name=f"probe-{probe.id}")
        pending[probe.id] = (probe, deadline, now)
        thread.start()

    def finish(run_: ProbeRun) -> None:
        runs[run_.probe.id] = run_
        pending.pop(run_.probe.id, None)
        if on_result:
            on_result(run_)

    complete = True
    quick = [p for p in order if not p.long_running]
    try:
        # Launching is inside the try: a Ctrl-C that lands while the quick probes are still being
        # started (the first half second of a run) still gives the partial report.
        while quick:
            launch(quick[0])
            quick.pop(0)
        while pending or later:
            if not pending:  # the quick probes are done: now the ones that load the link
                for probe in later:
                    launch(probe)
                later = []
            wait = min(d for _, d, _ in pending.values()) + GRACE_S - time.monotonic()
            try:
                # Short slices: on Windows a blocking wait is not interrupted by Ctrl-C, so
                # KeyboardInterrupt would arrive only when the longest probe budget ran out.
                probe_id, result, duration = done.get(timeout=min(max(0.0, wait), WAIT_SLICE_S))
            except queue.Empty:
                now = time.monotonic()
                for probe, deadline, t0 in list(pending.values()):
                    if now >= deadline + GRACE_S:
                        budget = round(deadline - t0, 2)
                        finish(ProbeRun(probe, _error(
                            "timeout", f"no result within its {budget} s budget",
                            budget_s=budget), now - t0))
                continue
            if probe_id in pending:
                finish(ProbeRun(pending[probe_id][0], result, duration))
    except KeyboardInterrupt as exc:
        complete = False
        now = time.monotonic()
        by = "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C"
        for probe, _, t0 in list(pending.values()):
            finish(ProbeRun(probe, _error("interrupted", f"stopped by {by} before it finished"),
                            now - t0))
        for probe in quick + later:
            if probe.id not in runs:  # (one interrupted inside launch() is pending, so done above)
                finish(ProbeRun(probe, _error("interrupted", f"stopped by {by} before it started"),
                                0.0))
    ordered = [runs[p.id] for p in order]
    complete = complete and all(r.result.status != Status.ERROR for r in ordered)
    return ordered, complete
