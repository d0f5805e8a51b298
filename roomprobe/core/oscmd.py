"""One way to run an OS command (netsh, reg, ipconfig, scutil, networksetup) and read its text.

Why not ``subprocess.run(text=True)``: Windows console programs write in the console's OEM code
page (cp437 US, cp850 Western Europe, cp866 Russian, cp932 Japanese), while ``text=True``
decodes with the ANSI page (or UTF-8 under UTF-8 mode). The result is garbage, an exception
raised in subprocess's reader thread (stdout silently ``None``), or a UnicodeDecodeError that
kills the whole check. So the bytes are captured as bytes and decoded here, with the page the
child's console really uses (the OEM page: each command gets a new hidden console, see
``_windows_oem_page``), replacing what cannot be decoded. Nothing here raises: a missing program,
a timeout or a non-zero exit becomes ``CmdOutput.error``, which the caller reports as that
source's error (never a lost report).

Tests replace :func:`run_bytes` (the one place that touches the OS) and :func:`console_encoding`
to feed recorded ``.oem`` bytes through the same decoding the live code uses.
"""

from __future__ import annotations

import codecs
import subprocess
import sys
from dataclasses import dataclass

__all__ = ["CmdOutput", "RawOutput", "run", "run_bytes", "console_encoding", "decode"]

MAX_OUTPUT = 4 * 1024 * 1024  # a reg query /s of a big hive stays well below this


@dataclass(frozen=True)
class RawOutput:
    """What the OS gave back: stdout bytes and the exit code, or why there is nothing."""

    stdout: bytes = b""
    returncode: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class CmdOutput:
    """Decoded output; ``error`` says why it cannot be trusted (not found, timeout, exit code)."""

    text: str
    returncode: int | None
    encoding: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def run_bytes(cmd: list[str], timeout: float) -> RawOutput:
    """Run ``cmd`` without a shell and without a console window; capture stdout as bytes."""
    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0) if sys.platform == "win32" else 0
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL, creationflags=flags)
    except FileNotFoundError:
        return RawOutput(error=f"{cmd[0]}: command not found")
    except subprocess.TimeoutExpired:
        return RawOutput(error=f"{cmd[0]}: no answer within {timeout:g} s")
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        return RawOutput(error=f"{cmd[0]}: {type(exc).__name__}: {exc}")
    return RawOutput(proc.stdout[:MAX_OUTPUT], proc.returncode)


def _valid(name: str) -> str | None:
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _is_windows() -> bool:
    return sys.platform == "win32"


def _windows_oem_page() -> int:
    """The code page the children of :func:`run_bytes` write in: the system OEM page; 0 if
    unknown.

    run_bytes starts every command with CREATE_NO_WINDOW, which gives the child a new hidden
    console of its own, and a new console starts on the OEM page (GetOEMCP), whatever page
    the operator's console was switched to (``chcp 65001``, a UTF-8 PowerShell profile): that
    page (GetConsoleOutputCP) is ours, not the child's, and decoding with it garbles the text.
    """
    if sys.platform != "win32":
        return 0
    try:
        import ctypes

        return int(ctypes.windll.kernel32.GetOEMCP() or 0)
    except (AttributeError, OSError, ValueError):
        return 0


def console_encoding() -> str:
    """The encoding the OS commands :func:`run` starts write in (Python codec name).

    Windows: the OEM code page of the hidden console each command gets (see
    ``_windows_oem_page``); cp65001 is UTF-8. Elsewhere the tools write UTF-8.
    """
    if not _is_windows():
        return "utf-8"
    page = _windows_oem_page()
    if page == 65001:
        return "utf-8"
    return (_valid(f"cp{page}") if page else None) or "cp437"


def decode(data: bytes, encoding: str) -> str:
    """Bytes to text with ``encoding`` (replacing what does not decode), CRLF to LF."""
    codec = _valid(encoding) or "utf-8"
    if data.startswith(codecs.BOM_UTF8):
        data, codec = data[len(codecs.BOM_UTF8):], "utf-8"
    return data.decode(codec, errors="replace").replace("\r\n", "\n").replace("\r", "\n")


def run(cmd: list[str], timeout: float = 3.0, *, encoding: str | None = None,
        ok_codes: tuple[int, ...] = (0,)) -> CmdOutput:
    """Run ``cmd`` and decode its output; never raises.

    A non-zero exit (outside ``ok_codes``) keeps the text (it often says why) and sets ``error``.
    """
    enc = encoding or console_encoding()
    try:
        raw = run_bytes(cmd, timeout)
    except Exception as exc:  # a replaced runner, or a platform surprise: still the source's error
        raw = RawOutput(error=f"{cmd[0]}: {type(exc).__name__}: {exc}")
    text = decode(raw.stdout or b"", enc)
    error = raw.error
    if error is None and raw.returncode not in ok_codes:
        first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
        error = f"{' '.join(cmd[:3])} exited with {raw.returncode}" + (f": {first[:160]}" if first else "")
    return CmdOutput(text, raw.returncode, enc, error)
