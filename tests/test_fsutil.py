"""Atomic writes survive Windows' transient sharing violations (antivirus holding the target)."""

from __future__ import annotations

import os

import pytest

from roomprobe.core import fsutil


def _sharing_violation() -> PermissionError:
    exc = PermissionError(13, "The process cannot access the file")
    exc.winerror = 32  # type: ignore[attr-defined]  # what Windows sets; absent on POSIX
    return exc


def test_replace_retries_transient_windows_errors(tmp_path, monkeypatch):
    real = os.replace
    calls = []

    def flaky(src, dst):
        calls.append(1)
        if len(calls) < 3:
            raise _sharing_violation()
        real(src, dst)

    monkeypatch.setattr(fsutil.os, "replace", flaky)
    monkeypatch.setattr(fsutil, "REPLACE_DELAY_S", 0.001)
    fsutil.atomic_write_text(tmp_path / "report.json", "{}")
    assert (tmp_path / "report.json").read_text() == "{}" and len(calls) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temp file left


def test_replace_gives_up_and_cleans_up(tmp_path, monkeypatch):
    def always(src, dst):
        raise _sharing_violation()

    monkeypatch.setattr(fsutil.os, "replace", always)
    monkeypatch.setattr(fsutil, "REPLACE_DELAY_S", 0.001)
    with pytest.raises(PermissionError):
        fsutil.atomic_write_text(tmp_path / "r.json", "x")
    assert list(tmp_path.iterdir()) == []


def test_posix_permission_error_is_not_retried(tmp_path, monkeypatch):
    calls = []

    def denied(src, dst):
        calls.append(1)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(fsutil.os, "replace", denied)
    with pytest.raises(PermissionError):
        fsutil.atomic_write_text(tmp_path / "r.json", "x")
    assert calls == [1]


def _dead_pid() -> int:
    """A pid that was a process a moment ago and is not now (reaped)."""
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_temp_file_left_by_a_killed_writer_is_swept_on_the_next_write(tmp_path):
    """kill -9 between mkstemp and the rename left ``.tmp`` files that nothing removed (19 of 200
    kills). The next write into the directory removes ours whose writer is dead or that are old;
    a foreign file, even one named like a temp file, stays."""
    import time

    target = tmp_path / "roomprobe.prom"
    dead = tmp_path / f".roomprobe.prom.roomprobe-{_dead_pid()}-abc12345.tmp"
    dead.write_text("half a write")
    old = tmp_path / f".webhook-outbox.json.roomprobe-{os.getpid()}-zz_99xyz.tmp"
    old.write_text("{}")
    ancient = time.time() - fsutil.STALE_TEMP_S - 60
    os.utime(old, (ancient, ancient))
    live = tmp_path / f".roomprobe.prom.roomprobe-{os.getpid()}-live0001.tmp"  # a write under way
    live.write_text("")
    foreign = [tmp_path / n for n in (".roomprobe.prom.x1y2z3a4.tmp", "notes.tmp",
                                      ".other.someone-12-abcdef12.tmp")]
    for f in foreign:
        f.write_text("not ours")
        os.utime(f, (ancient, ancient))
    fsutil.atomic_write_text(target, "x 1\n")
    assert target.read_text() == "x 1\n"
    assert not dead.exists() and not old.exists()
    assert live.exists() and all(f.exists() for f in foreign)
    # and the temp files we make are of that recognizable pattern
    assert fsutil._OUR_TEMP.match(f".roomprobe.prom.{fsutil.TEMP_TAG}-{os.getpid()}-a_b1c2d3.tmp")
