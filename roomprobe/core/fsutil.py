"""Atomic file writes: a report or an export is either the old file or the whole new one."""

from __future__ import annotations

import contextlib
import os
import re
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

# Windows: ERROR_ACCESS_DENIED (5) and ERROR_SHARING_VIOLATION (32) while an antivirus or the
# search indexer holds the target open for a moment after the last write.
_TRANSIENT_WINERRORS = (5, 32)
REPLACE_ATTEMPTS = 10
REPLACE_DELAY_S = 0.05


def atomic_write_text(path: str | os.PathLike[str], text: str, mode: int = 0o644) -> None:
    """Write to a temp file in the same directory, fsync, then rename over ``path``."""
    atomic_write_bytes(path, text.encode("utf-8"), mode)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` whole or not at all: a temp file in the same directory (mkstemp creates it
    0600, so a secret is never readable by others, not even for a moment), fsync, ``mode``,
    then rename over ``path``."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    sweep_stale_temps(directory)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{TEMP_TAG}-{os.getpid()}-", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# A temp file of ours: ``.<target>.roomprobe-<pid>-<random>.tmp``. A kill -9 (or a power cut)
# between mkstemp and the rename leaves one behind, and nothing else would ever remove it; the
# next write into the same directory does, if the writer is gone (its pid is dead) or the file is
# older than any write could take. Only this exact pattern is touched: never a file of someone
# else's, even one that ends in ``.tmp``.
TEMP_TAG = "roomprobe"
STALE_TEMP_S = 10 * 60
_OUR_TEMP = re.compile(r"^\..+\." + TEMP_TAG + r"-(?P<pid>\d{1,10})-[A-Za-z0-9_]{6,}\.tmp$")


def _pid_alive(pid: int) -> bool:
    """Is ``pid`` a running process? Unsure (Windows, no permission) counts as alive."""
    if pid == os.getpid():
        return True
    if sys.platform == "win32":  # os.kill(pid, 0) would send CTRL_C_EVENT there: rely on age
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def sweep_stale_temps(directory: str | os.PathLike[str], now: float | None = None) -> list[str]:
    """Remove our own temp files in ``directory`` whose writer died or that are older than
    :data:`STALE_TEMP_S`; the names removed. Never raises (a write must not fail over this)."""
    removed: list[str] = []
    now = time.time() if now is None else now
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        m = _OUR_TEMP.match(name)
        if m is None:
            continue
        full = os.path.join(directory, name)
        try:
            st = os.lstat(full)
            if not stat.S_ISREG(st.st_mode):
                continue
            if _pid_alive(int(m.group("pid"))) and now - st.st_mtime < STALE_TEMP_S:
                continue
            os.unlink(full)
            removed.append(name)
        except OSError:
            continue
    return removed


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


# ---------------------------------------------------------------- bounded reads of user files
#
# Every file a user hands us (a saved report, a PAC file, a config file) is read through here:
# a size cap (so /dev/zero or a 40 GB log given by mistake costs a few MB, not all memory) and,
# for JSON and TOML, a nesting cap (so ``[[[[...]]]]`` is a clear "too deeply nested", not a
# RecursionError halfway through a parser or a schema validator).

MAX_DEPTH = 64


def read_bounded(path: str | os.PathLike[str], max_bytes: int, what: str) -> bytes:
    """The bytes of ``path``, at most ``max_bytes``; anything wrong is one UsageError line.

    ``what`` names the file for the user ("report file", "PAC file"): the message says which
    file, what was wrong and what to do.
    """
    from roomprobe.core.errors import UsageError

    try:
        with open_regular(path) as fh:
            data = fh.read(max_bytes + 1)
    except NotRegularFile as exc:
        raise UsageError(f"cannot read {what} {os.fspath(path)}: it is {exc.kind}, not a regular "
                         "file; give the path of a file") from None
    except OSError as exc:
        raise UsageError(f"cannot read {what} {os.fspath(path)}: {exc.strerror or exc}; "
                         "check the path") from None
    except ValueError as exc:  # e.g. an embedded NUL in the path
        raise UsageError(f"cannot read {what} {os.fspath(path)!r}: {exc}") from None
    if len(data) > max_bytes:
        raise UsageError(f"{what} {os.fspath(path)} is larger than {_size(max_bytes)}; "
                         f"is it the right file?")
    return data


class NotRegularFile(OSError):
    """The path names a FIFO, a socket, a device or a directory: not something we read."""

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(f"{path} is not a regular file ({kind})")
        self.kind = kind


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a file"


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open ``path`` for reading only if it is a regular file; else :class:`NotRegularFile`.

    Why: opening a FIFO blocks until someone writes to it (forever, for a file given by mistake
    or by an attacker who can create one where we look), and a device never ends. The open is
    non-blocking where the OS has O_NONBLOCK, so even a FIFO returns at once, and the check is
    ``fstat`` on what was opened (no window between a check and the open). The null device
    (``ROOMPROBE_CONFIG=/dev/null`` means "no config") reads as empty.
    """
    name = os.fspath(path)
    if name == os.devnull:
        import io

        return io.BytesIO(b"")
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
    if not hasattr(os, "O_NONBLOCK"):  # Windows: no FIFOs in the file system; look first
        st = os.stat(name)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(name, _kind(st.st_mode))
    fd = os.open(name, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(name, _kind(st.st_mode))
        if sys.platform != "win32":  # back to ordinary reads (a no-op for a regular file)
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_text_bounded(path: str | os.PathLike[str], max_bytes: int, what: str) -> str:
    """``read_bounded`` decoded as UTF-8 (a BOM is allowed); not UTF-8 is a UsageError."""
    from roomprobe.core.errors import UsageError

    data = read_bounded(path, max_bytes, what)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{what} {os.fspath(path)} is not UTF-8 text; is it the right file?") from None


def json_depth(text: str) -> int:
    """The deepest nesting of ``[`` / ``{`` in JSON text, counted without recursion.

    Strings are skipped, so a bracket inside a string does not count.
    """
    import re

    depth = deepest = 0
    for m in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', text):
        tok = m.group()
        if tok in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif tok in "]}":
            depth -= 1
    return deepest


def data_depth(value: object) -> int:
    """The nesting depth of parsed JSON/TOML data (lists and dicts), counted without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            deepest = max(deepest, d + 1)
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            deepest = max(deepest, d + 1)
            stack.extend((x, d + 1) for x in v)
    return deepest


def load_json_bounded(path: str | os.PathLike[str], max_bytes: int, what: str,
                      max_depth: int = MAX_DEPTH) -> object:
    """JSON from a user file, size- and depth-capped; every problem is one UsageError line."""
    import json

    from roomprobe.core.errors import UsageError

    text = read_text_bounded(path, max_bytes, what)
    if json_depth(text) > max_depth:
        raise UsageError(f"{what} {os.fspath(path)} is nested more than {max_depth} levels deep; "
                         "is it the right file?")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{what} {os.fspath(path)} is not JSON ({exc.msg} at line {exc.lineno})") from None
    except (RecursionError, ValueError) as exc:  # a huge integer literal, or depth we missed
        raise UsageError(f"{what} {os.fspath(path)} is not usable JSON ({type(exc).__name__}: "
                         f"{str(exc)[:100]})") from None


def loads_toml_bounded(data: bytes, where: str, max_depth: int = MAX_DEPTH) -> dict[str, object]:
    """TOML from bytes already read with ``read_bounded``; depth-capped, one UsageError line."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10
        import tomli as tomllib
    from roomprobe.core.errors import UsageError

    try:
        raw = tomllib.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise UsageError(f"{where} is not UTF-8 text; is it the right file?") from None
    except (tomllib.TOMLDecodeError, RecursionError, ValueError) as exc:
        raise UsageError(f"{where} is not valid TOML: {str(exc)[:160]}") from None
    if data_depth(raw) > max_depth:
        raise UsageError(f"{where} is nested more than {max_depth} levels deep; is it the right file?")
    return raw


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n >= 1024 * 1024 else f"{n // 1024} KiB"
