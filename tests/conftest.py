"""Shared fixtures: the network lab (real namespaces, torn down even when a test fails)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lab import Lab, lab_unavailable_reason, sweep_stale  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _sweep_stale_labs() -> None:
    if lab_unavailable_reason() is None:
        sweep_stale()


@pytest.fixture(scope="session", autouse=True)
def _private_history_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every CLI run in the tests records its history in a temp file, never the real state dir."""
    import os

    old = os.environ.get("ROOMPROBE_HISTORY_DB")
    os.environ["ROOMPROBE_HISTORY_DB"] = str(tmp_path_factory.mktemp("history") / "history.sqlite3")
    yield
    if old is None:
        os.environ.pop("ROOMPROBE_HISTORY_DB", None)
    else:
        os.environ["ROOMPROBE_HISTORY_DB"] = old


@pytest.fixture
def lab() -> Iterator[Lab]:
    """An empty lab (switch, router, cloud interface); tests add hosts and faults."""
    reason = lab_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with Lab() as the_lab:
        yield the_lab
