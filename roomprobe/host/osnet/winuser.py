"""Windows: whose registry to read when roomprobe runs as SYSTEM (a scheduled task).

A task running as SYSTEM sees SYSTEM's HKCU, not the Zoom Rooms user's: WinINet proxy settings
(what the app uses) live in that user's hive, loaded at ``HKU\\<SID>`` while the user is logged
on. Room PCs run Zoom Rooms in an auto-logon session, so the user is found, in this order, from:

1. the owner of a running ``ZoomRooms.exe`` (the strongest evidence: the app's own account);
2. Winlogon's ``AutoLogonSID`` (written by Windows 10+ and Sysinternals Autologon);
3. Winlogon's ``AutoAdminLogon`` = 1 with ``DefaultUserName``, mapped to a SID through
   ``ProfileList\\<SID>\\ProfileImagePath`` (the profile folder is named after the account).

Everything here is a pure function over :class:`Registry` (values and subkeys of a key), so it
is tested off Windows with a fake registry built from real ``reg query /s`` output. Only the
named Winlogon values are ever read: ``DefaultPassword`` sits in the same key and is never
requested, stored or shown.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Protocol

from roomprobe.core import oscmd

SYSTEM_SID = "S-1-5-18"
WINLOGON = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon"
PROFILE_LIST = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList"
WINLOGON_VALUES = ("AutoAdminLogon", "AutoLogonSID", "DefaultUserName", "DefaultDomainName")
ZOOM_ROOMS_PROCESS = "ZoomRooms.exe"
MAX_PROFILES = 500  # a shared PC with thousands of profiles is not a room PC: stop looking

_SID = re.compile(r"S-1-\d+(?:-\d+)+")
_HIVES = {"HKEY_LOCAL_MACHINE": "HKLM", "HKEY_CURRENT_USER": "HKCU", "HKEY_USERS": "HKU"}


class Registry(Protocol):
    """Read access to the registry by full key path (``HKLM\\...``, ``HKU\\<SID>\\...``).

    Both raise OSError when the key does not exist or cannot be read. Values come as
    ``reg query`` shows them: DWORDs as decimal text, binaries as hex, strings as they are.
    """

    def values(self, key: str, names: tuple[str, ...] | None = None) -> dict[str, str]: ...

    def subkeys(self, key: str) -> list[str]: ...


@dataclass(frozen=True)
class RoomUser:
    """The account whose settings were read, and how it was found (for the report)."""

    sid: str | None
    name: str | None
    how: str
    error: str | None = None

    def label(self) -> str:
        """``ROOM\\zoom (S-1-5-21-...; owner of the running ZoomRooms.exe)``."""
        who = self.name or "unknown user"
        return f"{who} ({self.sid}; {self.how})" if self.sid else f"{who} ({self.how})"


def norm_key(key: str) -> str:
    """``HKEY_LOCAL_MACHINE\\X`` -> ``HKLM\\X``; the registry ignores case, so do lookups."""
    hive, sep, rest = key.strip().partition("\\")
    return _HIVES.get(hive.upper(), hive.upper()) + sep + rest


_VALUE_LINE = re.compile(r"^\s{2,}(?P<name>\S(?:.*?\S)?)\s{2,}(?P<type>REG_\w+)(?:\s{2,}(?P<value>.*))?$")


def parse_reg_tree(text: str) -> dict[str, dict[str, str]]:
    """``reg query KEY /s`` output -> {key: {value name: value}}, keys normalised (HKLM, HKU).

    A key line starts at column 0 with a hive name; its values follow, indented. A key listed
    with no values still appears (with {}), so subkeys can be derived from the keys.
    """
    out: dict[str, dict[str, str]] = {}
    cur: dict[str, str] | None = None
    for line in text.splitlines():
        if line[:1] == "H" and line.split("\\", 1)[0].upper() in (*_HIVES, *_HIVES.values()):
            cur = out.setdefault(norm_key(line.rstrip()), {})
            continue
        m = _VALUE_LINE.match(line)
        if m and cur is not None:
            value = (m.group("value") or "").strip()
            if m.group("type") in ("REG_DWORD", "REG_QWORD"):
                try:
                    value = str(int(value, 16))
                except ValueError:
                    continue
            cur[m.group("name")] = value
    return out


def current_sid(whoami_csv: str) -> str | None:
    """The SID from ``whoami /user /fo csv /nh`` (``"nt authority\\system","S-1-5-18"``).

    The account name is localized ("NT-AUTORITÄT\\SYSTEM"); the SID is not, so only it is used.
    """
    sids = _SID.findall(whoami_csv)
    return sids[-1] if sids else None


def running_as_system() -> bool:
    """Is this process LocalSystem (a task scheduled with no --run-as)? False when unknown."""
    out = oscmd.run(["whoami", "/user", "/fo", "csv", "/nh"], timeout=5.0)
    return current_sid(out.text) == SYSTEM_SID


def _bare(name: str) -> str:
    """``ROOM\\zoom`` / ``zoom@room.local`` -> ``zoom`` (profile folders carry the bare name)."""
    return name.rsplit("\\", 1)[-1].split("@", 1)[0].strip()


def sid_for_user(reg: Registry, name: str) -> str | None:
    """The SID of the local profile whose folder is named after ``name``.

    ``C:\\Users\\zoom`` matches exactly; ``C:\\Users\\zoom.ROOM`` or ``zoom.000`` (a second
    profile of the same name) only when no exact folder exists. Only real accounts (S-1-5-21-*)
    are considered, and ``.bak`` keys (a broken profile's leftovers) are skipped.
    """
    bare = _bare(name).lower()
    if not bare:
        return None
    exact, prefixed = [], []
    for sid in reg.subkeys(PROFILE_LIST)[:MAX_PROFILES]:
        if not sid.upper().startswith("S-1-5-21-") or not _SID.fullmatch(sid):
            continue
        try:
            path = reg.values(PROFILE_LIST + "\\" + sid, ("ProfileImagePath",)).get("ProfileImagePath", "")
        except OSError:
            continue
        folder = path.rstrip("\\").rsplit("\\", 1)[-1].lower()
        if folder == bare:
            exact.append(sid)
        elif folder.startswith(bare + "."):
            prefixed.append(sid)
    found = exact or prefixed
    return found[0] if found else None


def is_loaded(reg: Registry, sid: str) -> bool:
    """Is ``HKU\\<SID>`` there (the user is logged on, or the hive is loaded for another reason)?"""
    try:
        return any(k.upper() == sid.upper() for k in reg.subkeys("HKU"))
    except OSError:
        return False


def find_room_user(reg: Registry, zoom_owners: list[str]) -> RoomUser:
    """The Zoom Rooms account (see the module docstring for the order), its hive loaded or not.

    ``zoom_owners`` are the account names owning a running ZoomRooms.exe (``DOMAIN\\user``).
    A found user whose hive is not loaded comes back with ``error`` set: its settings cannot be
    read without loading its NTUSER.DAT, which roomprobe does not do.
    """
    candidates: list[tuple[str | None, str, str]] = []  # (sid, name, how)
    for owner in zoom_owners:
        candidates.append((None, owner, f"owner of the running {ZOOM_ROOMS_PROCESS}"))
    try:
        wl = reg.values(WINLOGON, WINLOGON_VALUES)
    except OSError:
        wl = {}
    if wl.get("AutoAdminLogon", "").strip() == "1":
        user = wl.get("DefaultUserName", "").strip()
        domain = wl.get("DefaultDomainName", "").strip()
        name = f"{domain}\\{user}" if domain and user else user or None
        auto_sid = wl.get("AutoLogonSID", "").strip()
        if _SID.fullmatch(auto_sid) and auto_sid.upper().startswith("S-1-5-21-"):
            candidates.append((auto_sid, name or auto_sid, "Winlogon AutoLogonSID"))
        if user:
            candidates.append((None, name or user, "Winlogon AutoAdminLogon DefaultUserName"))
    if not candidates:
        return RoomUser(None, None, "no ZoomRooms.exe running and no Winlogon auto-logon user",
                        error="the Zoom Rooms user was not found (no running ZoomRooms.exe, "
                              "AutoAdminLogon is not 1)")
    unloaded: RoomUser | None = None
    for sid, name, how in candidates:
        try:
            sid = sid or sid_for_user(reg, name)
        except OSError:
            sid = None
        if sid is None:
            unloaded = unloaded or RoomUser(None, name, how, error=f"no local profile found for {name}")
            continue
        if is_loaded(reg, sid):
            return RoomUser(sid, name, how)
        unloaded = unloaded or RoomUser(
            sid, name, how, error=f"{name} is not logged on: its settings (HKU\\{sid}) are not loaded")
    assert unloaded is not None
    return unloaded


def zoom_rooms_owners() -> list[str]:
    """Accounts owning a running ZoomRooms.exe (``DOMAIN\\user``); [] when none or unreadable."""
    from roomprobe.host import appconns

    owners: list[str] = []
    for proc in appconns.find_processes([ZOOM_ROOMS_PROCESS]):
        try:
            name = proc.username()
        except Exception:  # AccessDenied, the process ended: another candidate answers
            continue
        if name and name not in owners:
            owners.append(name)
    return owners


class WinReg:
    """:class:`Registry` over ``winreg`` (ImportError off Windows)."""

    def __init__(self) -> None:
        if sys.platform != "win32":
            raise ImportError("winreg exists on Windows only")
        import winreg

        self._w = winreg
        self._hives = {"HKLM": winreg.HKEY_LOCAL_MACHINE, "HKCU": winreg.HKEY_CURRENT_USER,
                       "HKU": winreg.HKEY_USERS}

    def _open(self, key: str):  # type: ignore[no-untyped-def]
        if sys.platform != "win32":  # unreachable (__init__ refused): tells mypy the hives are winreg's
            raise ImportError("winreg exists on Windows only")
        hive, _, sub = norm_key(key).partition("\\")
        if hive not in self._hives:
            raise OSError(f"unknown registry hive {hive}")
        return self._w.OpenKey(self._hives[hive], sub)

    def values(self, key: str, names: tuple[str, ...] | None = None) -> dict[str, str]:
        w, out = self._w, {}
        with self._open(key) as k:
            for i in range(512):
                try:
                    name, data, kind = w.EnumValue(k, i)
                except OSError:
                    break
                if names is not None and name not in names:
                    continue
                if kind in (w.REG_DWORD, w.REG_QWORD):
                    out[name] = str(int(data))
                elif kind == w.REG_BINARY:
                    out[name] = bytes(data).hex()
                elif isinstance(data, str):
                    out[name] = data
        return out

    def subkeys(self, key: str) -> list[str]:
        if sys.platform != "win32":  # unreachable (__init__ refused), as in _open
            raise ImportError("winreg exists on Windows only")
        out = []
        with self._open(key) as k:
            for i in range(MAX_PROFILES * 2):
                try:
                    out.append(self._w.EnumKey(k, i))
                except OSError:
                    break
        return out
