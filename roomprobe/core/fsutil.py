"""Atomic file writes: a report or an export is either the old file or the whole new one."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path

# Windows: ERROR_ACCESS_DENIED (5) and ERROR_SHARING_VIOLATION (32) while an antivirus or the
# search indexer holds the target open for a moment after the last write.
_TRANSIENT_WINERRORS = (5, 32)
REPLACE_ATTEMPTS = 10
REPLACE_DELAY_S = 0.05


def atomic_write_text(path: str | os.PathLike[str], text: str, mode: int = 0o644) -> None:
    """Write to a temp file in the same directory, fsync, then rename over ``path``."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """``os.replace``, retried briefly (about half a second) on Windows' transient sharing errors.

    Only WinError 5/32 is retried: anything else (a read-only directory on any OS) is real and
    raised at once.
    """
    for attempt in range(REPLACE_ATTEMPTS):
        try:
            os.replace(src, dst)
            return
        except PermissionError as exc:
            if getattr(exc, "winerror", None) not in _TRANSIENT_WINERRORS or attempt + 1 == REPLACE_ATTEMPTS:
                raise
            time.sleep(REPLACE_DELAY_S * (attempt + 1) / 2)
