"""How many displays this PC drives, read from the OS: the room profile's display count.

Why: Zoom Rooms needs more bandwidth per display it drives (1-3), so the bandwidth verdict
depends on the count. A technician often does not know it; the room PC does. Every reader here
is guarded: a missing tool, an odd output or a headless session gives ``count=None`` with the
reason, never an exception (the probe then falls back to the configured or default count).

Per OS:
- Windows: ``EnumDisplayMonitors`` via ctypes (one callback per monitor of the desktop; mirrored
  displays are one monitor, as they are one screen to Zoom Rooms). A task running as SYSTEM in
  session 0 sees no real desktop: there (ProcessIdToSessionId says 0) the count is unknown,
  with the reason, and the configured or default count is used.
- macOS: CoreGraphics ``CGGetActiveDisplayList`` via ctypes, else
  ``system_profiler SPDisplaysDataType -json`` (online displays; virtual ones such as Sidecar
  are left out, a mirror set counts once).
- Linux: ``xrandr --listmonitors`` when an X display is reachable, else DRM connectors whose
  ``/sys/class/drm/card*-*/status`` reads ``connected``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_OUTPUT = 1 << 20  # bytes of command output we parse; a display list is a few KB
MAX_CONNECTORS = 64  # DRM connectors read at most (a PC has a handful)


@dataclass(frozen=True)
class Displays:
    """What the OS said: ``count`` (None when unknown), the method that said it, or why not."""

    count: int | None
    method: str
    error: str | None = None

    def to_evidence(self) -> dict[str, Any]:
        return {"count": self.count, "method": self.method, "error": self.error}


# ---------------------------------------------------------------- parsers (tested on real output)


def parse_system_profiler(text: str) -> int | None:
    """Displays in ``system_profiler SPDisplaysDataType -json``: online, not virtual, mirrors once."""
    try:
        data = json.loads(text[:MAX_OUTPUT])
    except (ValueError, RecursionError):
        return None
    gpus = data.get("SPDisplaysDataType") if isinstance(data, dict) else None
    if not isinstance(gpus, list):
        return None
    count, mirrored = 0, False
    for gpu in gpus:
        screens = gpu.get("spdisplays_ndrvs") if isinstance(gpu, dict) else None
        for d in screens if isinstance(screens, list) else []:
            if not isinstance(d, dict):
                continue
            if d.get("spdisplays_online") == "spdisplays_no":
                continue
            if d.get("spdisplays_virtualdevice") == "spdisplays_yes":
                continue  # Sidecar, a DisplayLink/AirPlay virtual screen: not a room display
            if d.get("spdisplays_mirror") == "spdisplays_on":
                mirrored = True  # every member of a mirror set shows the same picture
                continue
            count += 1
    return count + (1 if mirrored else 0)


def parse_xrandr_monitors(text: str) -> int | None:
    """Active monitors in ``xrandr --listmonitors``: the ``N:`` lines (header ``Monitors: N``)."""
    lines = text[:MAX_OUTPUT].splitlines()
    if not lines or not lines[0].startswith("Monitors:"):
        return None
    listed = sum(1 for ln in lines[1:] if ln.strip()[:1].isdigit() and ":" in ln)
    head = lines[0].split(":", 1)[1].strip()
    if listed == 0 and head.isdigit():
        return int(head)  # header only (output cut short): the header's count
    return listed


def read_drm(root: Path = Path("/sys/class/drm")) -> int | None:
    """Connected DRM connectors (``card0-HDMI-A-1/status`` == ``connected``); None without DRM."""
    try:
        entries = sorted(p for p in root.iterdir() if p.name.startswith("card") and "-" in p.name)
    except OSError:
        return None
    if not entries:
        return None
    count = 0
    for entry in entries[:MAX_CONNECTORS]:
        if "Writeback" in entry.name:
            continue  # a GPU's memory-to-memory output, never a screen
        try:
            with open(entry / "status", "rb") as fh:
                status = fh.read(64).decode("ascii", "replace").strip()
        except OSError:
            continue
        if status == "connected":
            count += 1
    return count


# ---------------------------------------------------------------- OS readers


def _run(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False, env=env,
                         stdin=subprocess.DEVNULL)
    if out.returncode != 0:
        raise OSError(f"{cmd[0]} exited {out.returncode}")
    return out.stdout[:MAX_OUTPUT].decode("utf-8", "replace")


SESSION_0 = ("running in session 0 (a SYSTEM task or a service), which has no interactive "
             "desktop: its display count is not the room's and is not used; set "
             "bandwidth.displays (or --displays), or schedule roomprobe as the room's user")


def windows_session_id() -> int | None:
    """This process's Terminal Services session (ProcessIdToSessionId); None when unknown."""
    if sys.platform != "win32":
        return None
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.windll.kernel32
    session = wintypes.DWORD(0)
    if not kernel32.ProcessIdToSessionId(kernel32.GetCurrentProcessId(), ctypes.byref(session)):
        return None
    return int(session.value)


def _windows() -> Displays:
    if sys.platform != "win32":
        return Displays(None, "EnumDisplayMonitors", "not Windows")
    import ctypes
    from ctypes import wintypes

    session = windows_session_id()
    if session == 0:
        # Session 0 has its own (invisible) desktop: EnumDisplayMonitors counts that, not the
        # screens in the room, so the count is unknown here, never a detected figure.
        return Displays(None, "EnumDisplayMonitors", SESSION_0)
    user32 = ctypes.windll.user32
    found: list[int] = []
    proc_type = ctypes.WINFUNCTYPE(wintypes.BOOL, wintypes.HMONITOR, wintypes.HDC,
                                   ctypes.POINTER(wintypes.RECT), wintypes.LPARAM)

    def one(_monitor: Any, _dc: Any, _rect: Any, _data: Any) -> bool:
        found.append(1)
        return len(found) < MAX_CONNECTORS

    if not user32.EnumDisplayMonitors(None, None, proc_type(one), 0):
        return Displays(None, "EnumDisplayMonitors", "the call failed (no interactive desktop?)")
    return Displays(len(found), "EnumDisplayMonitors")


def _macos(timeout: float) -> Displays:
    try:
        import ctypes

        cg = ctypes.CDLL("/System/Library/Frameworks/CoreGraphics.framework/CoreGraphics")
        ids = (ctypes.c_uint32 * 16)()
        n = ctypes.c_uint32(0)
        if cg.CGGetActiveDisplayList(16, ids, ctypes.byref(n)) == 0 and n.value > 0:
            return Displays(int(n.value), "CGGetActiveDisplayList")
    except (OSError, AttributeError):
        pass
    count = parse_system_profiler(_run(["system_profiler", "SPDisplaysDataType", "-json"], timeout))
    if count is None:
        return Displays(None, "system_profiler", "no display list in its output")
    return Displays(count, "system_profiler")


def _linux(timeout: float, drm_root: Path) -> Displays:
    why = "no X display (DISPLAY unset)"
    if os.environ.get("DISPLAY"):
        try:
            count = parse_xrandr_monitors(_run(["xrandr", "--listmonitors"], timeout))
            if count is not None:
                return Displays(count, "xrandr")
            why = "xrandr printed no monitor list"
        except (OSError, subprocess.SubprocessError) as exc:
            why = f"xrandr: {exc}"
    count = read_drm(drm_root)
    if count is not None:
        return Displays(count, "drm")
    return Displays(None, "xrandr/drm", f"{why}; no DRM connectors under {drm_root}")


def detect(timeout: float = 4.0, *, platform: str | None = None,
           drm_root: Path = Path("/sys/class/drm")) -> Displays:
    """The number of displays this PC drives, or ``count=None`` and why. Never raises."""
    platform = platform or sys.platform
    try:
        if platform == "win32":
            return _windows()
        if platform == "darwin":
            return _macos(timeout)
        if platform.startswith("linux"):
            return _linux(timeout, drm_root)
        return Displays(None, "none", f"no display reader for {platform}")
    except Exception as exc:  # any OS surprise: unknown, with the reason
        return Displays(None, "error", f"{type(exc).__name__}: {exc}")
