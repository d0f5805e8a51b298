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
