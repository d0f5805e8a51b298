"""The evidence pack a support engineer asks for first, beyond what the probes measure.

Time zone and time window (so "it failed at 9:05" can be matched to the report), and the Zoom
Rooms app version where the OS tells it: Windows from the uninstall keys in the registry
(``reg query``) or the installed ``ZoomRooms.exe``'s file version, macOS from the app bundle's
``Info.plist``. Linux has no Zoom Rooms app, so the version is ``None`` there. The OS lookups are
thin wrappers; the parsers below are pure and tested on recorded outputs.
"""

from __future__ import annotations

import os
import plistlib
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from roomprobe.core import oscmd

# The names Zoom Rooms registers under (DisplayName) on Windows.
_ZR_DISPLAY_NAME = re.compile(r"^zoom\s*rooms\b(?!\s*controller)", re.IGNORECASE)
_UNINSTALL_KEYS = (
    r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall",
    r"HKLM\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall",
    r"HKCU\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall",
)
# Where the Zoom Rooms app bundle lives on macOS (the bundle is named ZoomPresence.app).
MACOS_BUNDLES = ("/Applications/ZoomPresence.app", "/Applications/Zoom Rooms.app")
_REG_VALUE = re.compile(r"^\s{2,}(?P<name>.+?)\s{2,}(?P<type>REG_[A-Z_]+)(?:\s{2,}(?P<data>.*))?$")


def _offset(delta: timedelta | None) -> str:
    minutes = int((delta or timedelta(0)).total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _iana_name() -> str | None:
    """The IANA zone name (Europe/Berlin) where the OS tells it: $TZ, /etc/localtime, tzlocal."""
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz and "/" in tz and not tz.startswith("/"):
        return tz
    if tz.startswith("/usr/share/zoneinfo/"):
        return tz[len("/usr/share/zoneinfo/"):]
    if not tz and sys.platform != "win32":
        try:
            target = os.path.realpath("/etc/localtime")
        except OSError:
            return None
        marker = "/zoneinfo/"
        if marker in target:
            return target.split(marker, 1)[1]
    return None


def local_timezone(now: datetime | None = None) -> dict[str, Any]:
    """``{name, abbreviation, utc_offset}`` of the local time zone at ``now``."""
    local = (now or datetime.now(timezone.utc)).astimezone()
    abbreviation = local.tzname() or ""
    return {"name": _iana_name() or abbreviation or "unknown", "abbreviation": abbreviation,
            "utc_offset": _offset(local.utcoffset())}


def time_window(started: float, ended: float) -> dict[str, str]:
    """When the check ran, in local time (with its offset) and UTC, to the second."""
    def local(ts: float) -> str:
        return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")

    def utc(ts: float) -> str:
        return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds").replace(
            "+00:00", "Z")

    return {"started_local": local(started), "ended_local": local(ended),
            "started_utc": utc(started), "ended_utc": utc(ended)}


# ---- parsers (pure, tested on recorded outputs) -------------------------------------------

def parse_reg_query(text: str) -> list[dict[str, str]]:
    """``reg query KEY /s`` output -> one dict per key: ``{"_key": path, value name: data}``."""
    blocks: list[dict[str, str]] = []
    for line in text.splitlines():
        if line.startswith("HKEY_"):
            blocks.append({"_key": line.strip()})
            continue
        m = _REG_VALUE.match(line.rstrip())
        if m and blocks:
            blocks[-1][m.group("name").strip()] = (m.group("data") or "").strip()
    return blocks


def zoom_rooms_version_from_reg(text: str) -> str | None:
    """The DisplayVersion of the uninstall entry whose DisplayName is Zoom Rooms (not Zoom)."""
    for block in parse_reg_query(text):
        if _ZR_DISPLAY_NAME.match(block.get("DisplayName", "")) and block.get("DisplayVersion"):
            return block["DisplayVersion"]
    return None


def zoom_rooms_version_from_plist(data: bytes) -> str | None:
    """CFBundleShortVersionString (else CFBundleVersion) of the app bundle's Info.plist."""
    try:
        info = plistlib.loads(data)
    except Exception:  # a damaged or foreign file: no version, not a crash
        return None
    if not isinstance(info, dict):
        return None
    version = info.get("CFBundleShortVersionString") or info.get("CFBundleVersion")
    return str(version) if version else None


def parse_file_version(text: str) -> str | None:
    """PowerShell ``(Get-Item X).VersionInfo.ProductVersion`` output: the first non-empty line."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return None


# ---- OS lookups -----------------------------------------------------------------------------

def _run(cmd: list[str], timeout: float) -> str | None:
    """The command's text (OEM code page on Windows, see core.oscmd), or None if it failed."""
    out = oscmd.run(cmd, timeout)
    return out.text if out.ok else None


def _windows_version(timeout: float) -> dict[str, Any] | None:
    for key in _UNINSTALL_KEYS:
        out = _run(["reg", "query", key, "/s"], timeout)
        version = zoom_rooms_version_from_reg(out) if out else None
        if version:
            return {"version": version, "source": f"registry {key}"}
    for base in filter(None, (os.environ.get("PROGRAMFILES(X86)"), os.environ.get("PROGRAMFILES"),
                              os.environ.get("APPDATA"))):
        exe = Path(base) / "ZoomRooms" / "bin" / "ZoomRooms.exe"
        if exe.is_file():
            ps = f"(Get-Item -LiteralPath '{exe}').VersionInfo.ProductVersion"
            out = _run(["powershell", "-NoProfile", "-NonInteractive", "-Command", ps], timeout)
            version = parse_file_version(out) if out else None
            if version:
                return {"version": version, "source": str(exe)}
    return None


def _macos_version() -> dict[str, Any] | None:
    for bundle in MACOS_BUNDLES:
        plist = Path(bundle) / "Contents" / "Info.plist"
        try:
            version = zoom_rooms_version_from_plist(plist.read_bytes())
        except OSError:
            continue
        if version:
            return {"version": version, "source": str(plist)}
    return None


def zoom_rooms_app(timeout: float = 3.0) -> dict[str, Any] | None:
    """``{version, source}`` of the installed Zoom Rooms app, or ``None`` (not found, or Linux)."""
    if sys.platform == "win32":
        return _windows_version(timeout)
    if sys.platform == "darwin":
        return _macos_version()
    return None
