"""Runs probes concurrently, each under its own timeout and all under one global deadline.

Probes block on sockets, subprocesses and scapy, so each gets a daemon thread: a probe that
hangs past its deadline is reported as ``error``/``timeout`` and simply abandoned, and the others
still report. The total wall time is the slowest probe's budget, never the sum of timeouts.
Ctrl-C (or SIGTERM: a scheduler's time limit, a service stop; see :class:`Terminated`) returns
what finished so far and marks the rest ``interrupted``.

The run is *complete* only when every probe reached a verdict: a crash, an overrun of the
deadline, Ctrl-C, or a probe's own ``error`` (it could not measure) makes it incomplete, and
the report then says ``unknown`` (exit 3) unless a measured failure says ``fail``
(roomprobe.report.build.verdict, docs/report.md).
"""

from __future__ import annotations

import json
import queue
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from roomprobe.core import threads
from roomprobe.core.probe import Context, Probe, Result, Status, Targets

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


def unmet_need(probe: Probe, targets: Targets) -> Result | None:
    """The SKIP a probe gets when the targets lack what it declared it needs, else None."""
    if "peer" in probe.needs and targets.peer is None:
        return Result(Status.SKIP, "no-peer", "needs --controller (on the room) or --room "
                      "(next to the controller)", {})
    if "role" in probe.needs and targets.role == "unknown":
        return Result(Status.SKIP, "no-target", "needs --controller or --room", {})
    return None


def is_complete(runs: Iterable[ProbeRun], interrupted: bool = False) -> bool:
    """The one rule for a complete run: not interrupted, and every probe reached a verdict (none
    ended in ``error``). The report's ``complete`` field and its status both follow it."""
    return not interrupted and all(r.result.status != Status.ERROR for r in runs)


def run(probes: Iterable[Probe], make_context: Callable[[Probe, float], Context],
        global_timeout: float, on_result: Callable[[ProbeRun], None] | None = None, *,
        targets: Targets | None = None, timeouts: Mapping[str, float] | None = None,
        ) -> tuple[list[ProbeRun], bool]:
    """Run ``probes``; returns their runs in the given order and whether the run completed
    (:func:`is_complete`).

    ``make_context(probe, deadline)`` builds each probe's context; ``deadline`` is a
    ``time.monotonic()`` value. With ``targets``, a probe whose ``needs`` they do not meet is
    skipped here (:func:`unmet_need`), never started. ``timeouts`` maps a probe id to its own
    budget (``--set dns.timeout=3``); a probe not in it keeps its declared ``timeout_s``.

    The quick probes run concurrently under the one global deadline. Long-running probes
    (bandwidth, call quality) fill the link on purpose, so they start only once every quick
    probe has finished (or run out of time), each with its own budget from then: a saturated
    link would otherwise turn a healthy room's DNS, 9090 connect or TLS handshake into false
    timeouts.
    """
    order = list(probes)
    state = _Run(make_context, time.monotonic() + global_timeout, dict(timeouts or {}), on_result)
    todo = []
    for probe in order:
        unmet = unmet_need(probe, targets) if targets is not None else None
        if unmet is not None:
            state.finish(ProbeRun(probe, unmet, 0.0))
        else:
            todo.append(probe)
    quick = [p for p in todo if not p.long_running]
    later = [p for p in todo if p.long_running]
    interrupted = False
    try:
        # Launching is inside the try: a Ctrl-C that lands while the quick probes are still being
        # started (the first half second of a run) still gives the partial report.
        while quick:
            state.launch(quick[0])
            quick.pop(0)
        while state.pending or later:
            if not state.pending:  # the quick probes are done: now the ones that load the link
                for probe in later:
                    state.launch(probe)
                later = []
            state.wait_once()
    except KeyboardInterrupt as exc:
        interrupted = True
        state.interrupt("SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C", quick + later)
    ordered = [state.runs[p.id] for p in order]
    return ordered, is_complete(ordered, interrupted)


class _Run:
    """One run's bookkeeping: which probes are out, until when, and what came back."""

    def __init__(self, make_context: Callable[[Probe, float], Context], global_deadline: float,
                 timeouts: dict[str, float], on_result: Callable[[ProbeRun], None] | None) -> None:
        self.make_context, self.global_deadline = make_context, global_deadline
        self.timeouts, self.on_result = timeouts, on_result
        self.done: queue.Queue = queue.Queue()
        self.pending: dict[str, tuple[Probe, float, float]] = {}
        self.runs: dict[str, ProbeRun] = {}

    def launch(self, probe: Probe) -> None:
        now = time.monotonic()
        own = now + float(self.timeouts.get(probe.id, probe.timeout_s))
        deadline = own if probe.long_running else min(own, self.global_deadline)
        ctx = self.make_context(probe, deadline)
        self.pending[probe.id] = (probe, deadline, now)
        threads.start_guarded(_worker, f"probe-{probe.id}", probe, ctx, self.done)

    def finish(self, run_: ProbeRun) -> None:
        self.runs[run_.probe.id] = run_
        self.pending.pop(run_.probe.id, None)
        if self.on_result:
            self.on_result(run_)

    def wait_once(self) -> None:
        """Take one result, or time out the probes past their deadline (and its grace)."""
        wait = min(d for _, d, _ in self.pending.values()) + GRACE_S - time.monotonic()
        try:
            # Short slices: on Windows a blocking wait is not interrupted by Ctrl-C, so
            # KeyboardInterrupt would arrive only when the longest probe budget ran out.
            probe_id, result, duration = self.done.get(timeout=min(max(0.0, wait), WAIT_SLICE_S))
        except queue.Empty:
            now = time.monotonic()
            for probe, deadline, t0 in list(self.pending.values()):
                if now >= deadline + GRACE_S:
                    budget = round(deadline - t0, 2)
                    self.finish(ProbeRun(probe, _error(
                        "timeout", f"no result within its {budget} s budget", budget_s=budget), now - t0))
            return
        if probe_id in self.pending:
            self.finish(ProbeRun(self.pending[probe_id][0], result, duration))

    def interrupt(self, by: str, not_started: list[Probe]) -> None:
        now = time.monotonic()
        for probe, _, t0 in list(self.pending.values()):
            self.finish(ProbeRun(probe, _error("interrupted", f"stopped by {by} before it finished"),
                                 now - t0))
        for probe in not_started:
            if probe.id not in self.runs:  # (one interrupted inside launch() is pending, so done above)
                self.finish(ProbeRun(probe, _error("interrupted", f"stopped by {by} before it started"),
                                     0.0))
