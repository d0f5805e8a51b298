"""A scheduled run as SYSTEM reads the Zoom Rooms user's WinINet settings, and says whose.

The reader is a pure function over a small registry interface; here that registry is built from
real ``reg query`` listings (tests/data/winreg, provenance in its SOURCES.md) plus the user's
Internet Settings hive. Each test would fail if SYSTEM's own settings were read instead: the two
hives carry different proxies.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from roomprobe.host.osnet import winuser
from roomprobe.proxy.sources import windows

DATA = Path(__file__).parent / "data" / "winreg"
SUB = windows.USER_SUB
SYSTEM_SETTINGS = {"ProxyEnable": "0", "ProxyOverride": "local"}  # as the real en-win10 sample
USER_SETTINGS = {"ProxyEnable": "1", "ProxyServer": "proxy.room.example:3128", "ProxyOverride": "<local>"}


class FakeRegistry:
    """:class:`winuser.Registry` over {normalised key: values}; subkeys derive from the keys."""

    def __init__(self, *listings: str, extra: dict[str, dict[str, str]] | None = None) -> None:
        self.keys: dict[str, dict[str, str]] = {}
        for text in listings:
            self.keys.update(winuser.parse_reg_tree(text))
        for key, values in (extra or {}).items():
            self.keys[winuser.norm_key(key)] = dict(values)
        self.requested: list[tuple[str, tuple[str, ...] | None]] = []

    def _find(self, key: str) -> str:
        want = winuser.norm_key(key).lower()
        for k in self.keys:
            if k.lower() == want:
                return k
        if any(k.lower().startswith(want + "\\") for k in self.keys):
            return key  # an intermediate key that has subkeys only
        raise FileNotFoundError(2, "The system cannot find the file specified", key)

    def values(self, key: str, names: tuple[str, ...] | None = None) -> dict[str, str]:
        self.requested.append((key, names))
        vals = self.keys.get(self._find(key), {})
        return {k: v for k, v in vals.items() if names is None or k in names}

    def subkeys(self, key: str) -> list[str]:
        want = winuser.norm_key(key).lower() + "\\"
        self._find(key)
        out: list[str] = []
        for k in self.keys:
            if k.lower().startswith(want):
                child = k[len(want):].split("\\", 1)[0]
                if child not in out:
                    out.append(child)
        return out


def load(name: str) -> str:
    return (DATA / name).read_text("utf-8")


AUTOLOGON_SID = "S-1-5-21-3623938633-4064111800-2925858365-1180"
T2_SID = "S-1-5-21-1304824241-3403877634-2989090281-1003"


def registry(winlogon: str, loaded: list[str]) -> FakeRegistry:
    extra = {"HKCU\\" + SUB: SYSTEM_SETTINGS, "HKU\\.DEFAULT\\Software": {}, "HKU\\S-1-5-18\\Software": {}}
    for sid in loaded:
        extra[f"HKU\\{sid}\\{SUB}"] = USER_SETTINGS
    return FakeRegistry(load(winlogon), load("profilelist-en-getsidinfo.txt"), extra=extra)


def test_parse_reg_tree_reads_the_real_listings():
    tree = winuser.parse_reg_tree(load("winlogon-en-win2019-autologonsid.txt"))
    wl = tree[winuser.WINLOGON]
    assert wl["AutoAdminLogon"] == "1" and wl["AutoLogonSID"] == AUTOLOGON_SID
    assert wl["DefaultDomainName"] == "xiaorang.lab" and wl["LegalNoticeCaption"] == ""
    assert wl["ShutdownFlags"] == str(0x80000027) and wl["LastLogOffEndTimePerfCounter"] == str(0xedd7ccd15)
    assert winuser.WINLOGON + "\\AutoLogonChecked" in tree
    w7 = winuser.parse_reg_tree(load("winlogon-en-win7-defaultusername.txt"))[winuser.WINLOGON]
    assert w7["DefaultUserName"] == "Alfred" and w7["DefaultDomainName"] == ""
    pl = winuser.parse_reg_tree(load("profilelist-en-getsidinfo.txt"))
    assert pl[f"{winuser.PROFILE_LIST}\\{T2_SID}"]["ProfileImagePath"] == "C:\\Users\\T2"


def test_current_sid_from_whoami_in_any_language():
    assert winuser.current_sid('"nt authority\\system","S-1-5-18"\r\n') == "S-1-5-18"
    assert winuser.current_sid('"nt-autorität\\system","S-1-5-18"\r\n') == "S-1-5-18"
    assert winuser.current_sid(f'"room\\zoom","{T2_SID}"') == T2_SID
    assert winuser.current_sid("ERROR: Access is denied.") is None


def test_as_system_reads_the_autologon_sid_hive_and_says_whose():
    reg = registry("winlogon-en-win2019-autologonsid.txt", loaded=[AUTOLOGON_SID])
    src = windows.wininet_from_registry(reg, "SYSTEM", as_system=True, zoom_owners=[])
    assert src.error is None and src.proxies == {"all": "http://proxy.room.example:3128"}
    assert src.origin == f"registry HKU\\{AUTOLOGON_SID}\\{SUB}"
    assert src.user == f"xiaorang.lab\\yuxuan ({AUTOLOGON_SID}; Winlogon AutoLogonSID)"
    ev = src.to_evidence()
    assert ev["user"] == src.user
    # The auto-logon password sits in the same key: never requested, never in the evidence.
    assert all(names is not None for key, names in reg.requested if key == winuser.WINLOGON)
    assert "PASSWORD-REMOVED" not in json.dumps(ev)


def test_as_system_maps_default_user_name_through_the_profile_list():
    text = load("winlogon-en-win7-defaultusername.txt").replace("Alfred", "T2")
    reg = FakeRegistry(text, load("profilelist-en-getsidinfo.txt"),
                       extra={"HKCU\\" + SUB: SYSTEM_SETTINGS, f"HKU\\{T2_SID}\\{SUB}": USER_SETTINGS})
    src = windows.wininet_from_registry(reg, "SYSTEM", as_system=True, zoom_owners=[])
    assert src.proxies and src.user == f"T2 ({T2_SID}; Winlogon AutoAdminLogon DefaultUserName)"


def test_the_running_zoom_rooms_owner_wins_over_winlogon():
    reg = registry("winlogon-en-win2019-autologonsid.txt", loaded=[AUTOLOGON_SID, T2_SID])
    src = windows.wininet_from_registry(reg, "SYSTEM", as_system=True, zoom_owners=["ROOMPC\\T2"])
    assert src.origin == f"registry HKU\\{T2_SID}\\{SUB}"
    assert src.user == f"ROOMPC\\T2 ({T2_SID}; owner of the running ZoomRooms.exe)"


def test_a_known_user_who_is_not_logged_on_is_an_error_not_systems_settings():
    reg = registry("winlogon-en-win7-defaultusername.txt", loaded=[])  # Alfred: no profile here
    src = windows.wininet_from_registry(reg, "SYSTEM", as_system=True, zoom_owners=[])
    assert src.error and "no local profile found for Alfred" in src.error and "--run-as Alfred" in src.error
    assert not src.proxies and not src.active
    reg = registry("winlogon-en-win2019-autologonsid.txt", loaded=[])
    src = windows.wininet_from_registry(reg, "SYSTEM", as_system=True, zoom_owners=[])
    assert src.error and f"HKU\\{AUTOLOGON_SID}" in src.error and "is not logged on" in src.error


def test_no_zoom_rooms_user_at_all_reads_system_and_says_so():
    text = load("winlogon-en-win7-defaultusername.txt").replace("AutoAdminLogon    REG_SZ    1",
                                                                 "AutoAdminLogon    REG_SZ    0")
    reg = FakeRegistry(text, extra={"HKCU\\" + SUB: SYSTEM_SETTINGS})
    src = windows.wininet_from_registry(reg, "SYSTEM", as_system=True, zoom_owners=[])
    assert src.error is None and src.bypass == ["local"] and not src.proxies
    assert src.user.startswith("SYSTEM (the Zoom Rooms user was not found")


def test_a_normal_account_reads_its_own_hkcu():
    reg = registry("winlogon-en-win2019-autologonsid.txt", loaded=[AUTOLOGON_SID])
    src = windows.wininet_from_registry(reg, "zoomroom", as_system=False, zoom_owners=["X\\other"])
    assert src.origin == "registry " + windows.INTERNET_SETTINGS and src.user == "zoomroom"
    assert not src.proxies and src.bypass == ["local"]


@pytest.mark.parametrize("folder, name, expect", [
    ("C:\\Users\\zoom", "ROOM\\zoom", True), ("C:\\Users\\zoom.ROOM", "zoom@room.local", True),
    ("C:\\Users\\zoomer", "zoom", False), ("C:\\Users\\ZOOM", "zoom", True)])
def test_profile_folder_matching(folder, name, expect):
    sid = "S-1-5-21-1-2-3-1001"
    reg = FakeRegistry(extra={f"{winuser.PROFILE_LIST}\\{sid}": {"ProfileImagePath": folder},
                              f"{winuser.PROFILE_LIST}\\{sid}.bak": {"ProfileImagePath": folder}})
    assert (winuser.sid_for_user(reg, name) == sid) is expect
