"""Count the sockets code under test opens: how many are open at once, at most and at the end.

A sweep of thousands of rooms must hold at most ``--concurrency`` descriptors (two per room while
a retransmission is out), so the tests replace ``socket.socket`` with a counting subclass.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest


@dataclass
class Counts:
    live: int = 0
    peak: int = 0


@contextlib.contextmanager
def counting_sockets(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counts]:
    """While inside, every new ``socket.socket`` is counted; the real class is back afterwards."""
    counts = Counts()
    real = socket.socket

    class Counting(real):  # type: ignore[misc, valid-type]
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            counts.live += 1
            counts.peak = max(counts.peak, counts.live)

        def close(self):
            if self.fileno() != -1:
                counts.live -= 1
            super().close()

    monkeypatch.setattr(socket, "socket", Counting)
    try:
        yield counts
    finally:
        monkeypatch.undo()
