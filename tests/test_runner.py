"""The runner owns timing: concurrency, per-probe timeouts, the global deadline, crashes."""

from __future__ import annotations

import time

import pytest

from roomprobe.core import runner
from roomprobe.core.probe import Context, Finding, Probe, Result, Severity, Status, Targets


def ctx_for(probe: Probe, deadline: float) -> Context:
    return Context(targets=Targets(), options={}, deadline=deadline, privileged=False)


def sleeper(seconds: float, status: Status = Status.PASS):
    def run(ctx: Context) -> Result:
        time.sleep(seconds)
        return Result(status, "ok", f"slept {seconds}", {"slept": seconds},
                      [Finding("slow-thing", Severity.WARN, "m")] if status == Status.WARN else [])
    return run


def crash(ctx: Context) -> Result:
    raise RuntimeError("boom")


def garbage(ctx: Context) -> Result:
    return "not a result"  # type: ignore[return-value]


def unjsonable(ctx: Context) -> Result:
    loop: dict = {}
    loop["self"] = loop  # (other odd values, like IP objects, are turned into strings)
    return Result(Status.PASS, "ok", "x", loop)


def test_probes_run_concurrently_not_in_sequence():
    probes = [Probe(id=f"p{i}", title="t", run=sleeper(0.5), timeout_s=3) for i in range(4)]
    t0 = time.monotonic()
    runs, complete = runner.run(probes, ctx_for, global_timeout=5)
    elapsed = time.monotonic() - t0
    assert complete and [r.result.status for r in runs] == [Status.PASS] * 4
    assert elapsed < 1.5, elapsed  # sequential would be 2.0 s


def test_crash_and_garbage_become_errors_and_others_still_report():
    probes = [Probe(id="ok", title="t", run=sleeper(0.0)),
              Probe(id="crash", title="t", run=crash),
              Probe(id="garbage", title="t", run=garbage),
              Probe(id="unjsonable", title="t", run=unjsonable)]
    runs, complete = runner.run(probes, ctx_for, global_timeout=5)
    by = {r.probe.id: r.result for r in runs}
    assert not complete  # a crashed probe reached no verdict: the run is incomplete (issue 13)
    assert by["ok"].status == Status.PASS
    assert by["crash"].status == Status.ERROR and by["crash"].reason == "probe-crashed"
    assert "boom" in by["crash"].summary and by["crash"].evidence["exception"] == "RuntimeError"
    assert by["garbage"].reason == "bad-result"
    assert by["unjsonable"].reason == "bad-result"


def test_overrun_is_a_timeout_error_within_its_budget():
    probes = [Probe(id="hang", title="t", run=sleeper(30), timeout_s=0.5),
              Probe(id="fast", title="t", run=sleeper(0.1), timeout_s=3)]
    t0 = time.monotonic()
    runs, complete = runner.run(probes, ctx_for, global_timeout=5)
    assert time.monotonic() - t0 < 0.5 + runner.GRACE_S + 0.5
    by = {r.probe.id: r.result for r in runs}
    assert by["hang"].status == Status.ERROR and by["hang"].reason == "timeout"
    assert by["fast"].status == Status.PASS
    assert not complete  # an overrun is no verdict


def test_global_deadline_caps_every_quick_probe_but_not_long_running_ones():
    seen: dict[str, float] = {}

    def record(probe: Probe, deadline: float) -> Context:
        seen[probe.id] = deadline - time.monotonic()
        return ctx_for(probe, deadline)

    probes = [Probe(id="quick", title="t", run=sleeper(0), timeout_s=60),
              Probe(id="long", title="t", run=sleeper(0), timeout_s=20, long_running=True)]
    runner.run(probes, record, global_timeout=2)
    assert seen["quick"] <= 2.0
    assert 19 < seen["long"] <= 20


def test_findings_are_stamped_with_their_probe():
    probes = [Probe(id="warner", title="t", run=sleeper(0, Status.WARN))]
    runs, _ = runner.run(probes, ctx_for, global_timeout=2)
    assert runs[0].result.findings[0].probe == "warner"


def test_link_loading_probes_start_after_the_quick_ones_with_their_own_budget():
    """bandwidth/quality fill the link: they must not overlap the quick probes' measurements
    (a saturated link turns a healthy DNS answer into a timeout), and their budget starts when
    they do, not when the check began."""
    events: dict[str, float] = {}

    def quick(ctx: Context) -> Result:
        events["quick_start"] = time.monotonic()
        time.sleep(0.6)
        events["quick_end"] = time.monotonic()
        return Result(Status.PASS, "ok", "q", {"x": 1})

    def loader(ctx: Context) -> Result:
        events["long_start"] = time.monotonic()
        events["long_budget"] = ctx.remaining()
        return Result(Status.PASS, "ok", "l", {"x": 1})

    probes = [Probe(id="bw", title="t", run=loader, timeout_s=2.0, long_running=True),
              Probe(id="dns", title="t", run=quick, timeout_s=3)]
    runs, complete = runner.run(probes, ctx_for, global_timeout=5)
    assert complete and [r.probe.id for r in runs] == ["bw", "dns"]
    assert events["long_start"] >= events["quick_end"], events
    assert events["long_budget"] > 1.9, events  # its 2 s budget counted from its own start


def test_waits_are_short_slices_so_ctrl_c_reaches_the_runner_on_windows(monkeypatch):
    """Windows does not interrupt a blocking queue wait for Ctrl-C: no single wait may be long.
    A KeyboardInterrupt raised inside a wait ends the run as interrupted, long before the budget."""
    import queue

    waits: list[float | None] = []
    real_get = queue.Queue.get

    def get(self, block=True, timeout=None):
        waits.append(timeout)
        if len(waits) == 3:
            raise KeyboardInterrupt
        return real_get(self, block, timeout)

    monkeypatch.setattr(queue.Queue, "get", get)
    t0 = time.monotonic()
    runs, complete = runner.run([Probe(id="slow", title="t", run=sleeper(5), timeout_s=10)], ctx_for,
                                global_timeout=20)
    assert time.monotonic() - t0 < 2 and not complete
    assert waits and all(w is not None and w <= runner.WAIT_SLICE_S for w in waits)
    assert runs[0].result.reason == "interrupted"


@pytest.mark.parametrize("at", [1, 2, 3])
def test_ctrl_c_while_probes_are_still_being_started_gives_a_partial_report(at):
    """The CI lab once interrupted a check half a second in, while the runner was still starting
    the quick probes: the interrupt escaped the runner and there was no report at all. Here the
    Ctrl-C lands in the context factory of the ``at``-th probe: every probe still gets a run."""
    calls: list[str] = []

    def make(probe, deadline):
        calls.append(probe.id)
        if len(calls) == at:
            raise KeyboardInterrupt
        return ctx_for(probe, deadline)

    probes = [Probe(id=f"p{i}", title="t", run=sleeper(5), timeout_s=10) for i in range(3)]
    probes.append(Probe(id="bw", title="t", run=sleeper(5), timeout_s=10, long_running=True))
    runs, complete = runner.run(probes, make, global_timeout=20)
    assert not complete and [r.probe.id for r in runs] == ["p0", "p1", "p2", "bw"]
    assert all(r.result.reason == "interrupted" for r in runs), [r.result for r in runs]
    started = [r.probe.id for r in runs if "before it started" not in r.result.summary]
    assert started == [f"p{i}" for i in range(at - 1)], started


def test_the_runner_skips_unmet_needs_and_never_starts_those_probes():
    """Skipping for unmet needs is the runner's: a probe needing a peer or a role, with targets
    that give neither, is a SKIP with the reason, and its run() is never called."""
    started: list[str] = []

    def record(ctx: Context) -> Result:
        started.append("ran")
        return Result(Status.PASS, "ok", "x", {})

    probes = [Probe(id="needs-peer", title="t", run=record, needs=("peer",)),
              Probe(id="needs-role", title="t", run=record, needs=("role",)),
              Probe(id="free", title="t", run=sleeper(0.0))]
    runs, complete = runner.run(probes, ctx_for, global_timeout=5, targets=Targets())
    by = {r.probe.id: r.result for r in runs}
    assert [r.probe.id for r in runs] == ["needs-peer", "needs-role", "free"] and not started
    assert (by["needs-peer"].status, by["needs-peer"].reason) == (Status.SKIP, "no-peer")
    assert (by["needs-role"].status, by["needs-role"].reason) == (Status.SKIP, "no-target")
    assert by["free"].status == Status.PASS and complete
    runs, _ = runner.run(probes[:1], ctx_for, global_timeout=5,
                         targets=Targets(controller="192.0.2.5", role="room"))
    assert runs[0].result.status == Status.PASS and started  # met: it runs


def test_the_runner_applies_each_probes_own_timeout_from_the_settings():
    """``--set p.timeout=0.3`` reaches the runner as timeouts={"p": 0.3}: the probe's deadline
    is that, not its declared timeout_s, and the frozen Probe is left as declared."""
    seen: dict[str, float] = {}

    def make(probe, deadline):
        seen[probe.id] = deadline - time.monotonic()
        return ctx_for(probe, deadline)

    probe = Probe(id="p", title="t", run=sleeper(3), timeout_s=10)
    runs, complete = runner.run([probe], make, global_timeout=20, timeouts={"p": 0.3})
    assert seen["p"] <= 0.3 and not complete
    assert runs[0].result.reason == "timeout" and runs[0].result.evidence["budget_s"] <= 0.3
    assert runs[0].probe is probe and probe.timeout_s == 10
