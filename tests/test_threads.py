"""core/threads: the one guard and the one "run these at once, up to a deadline" helper the
probes share (dns, cloud, proxy). A stuck task is abandoned, never waited for past the deadline;
a crashed one is its own outcome, printed nowhere, and never costs the others their result."""

from __future__ import annotations

import threading
import time

import pytest

from roomprobe.core import threads


def _boom() -> None:
    raise ValueError("bad label")


def test_run_all_gives_every_key_an_outcome(capfd):
    release = threading.Event()
    try:
        got = threads.run_all({"ok": lambda: 42, "crash": _boom, "stuck": release.wait},
                              time.monotonic() + 0.3, "t")
    finally:
        release.set()
    assert got["ok"] == threads.Outcome(True, 42)
    assert got["crash"].done and isinstance(got["crash"].error, ValueError)
    assert got["stuck"] == threads.Outcome(False)  # past the deadline: no value, no error
    assert capfd.readouterr().err == ""  # no traceback on stderr


def test_run_all_abandons_stuck_work_in_daemon_threads():
    release = threading.Event()
    try:
        threads.run_all({"stuck": release.wait}, time.monotonic() + 0.05, "stuck-task")
        stuck = [t for t in threading.enumerate() if t.name == "stuck-task"]
        assert stuck and all(t.daemon for t in stuck)  # never keeps the process alive
    finally:
        release.set()


def test_run_all_with_nothing_to_do():
    assert threads.run_all({}, time.monotonic()) == {}


def test_daemons_hand_the_error_to_whoever_waits(capfd):
    fut = threads.Daemons("d").submit(_boom)
    with pytest.raises(ValueError, match="bad label"):
        fut.result(timeout=5)
    assert threads.Daemons("d").submit(lambda a, b: a + b, 2, 3).result(timeout=5) == 5
    assert capfd.readouterr().err == ""
