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


@pytest.fixture
def lab() -> Iterator[Lab]:
    """An empty lab (switch, router, cloud interface); tests add hosts and faults."""
    reason = lab_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with Lab() as the_lab:
        yield the_lab
