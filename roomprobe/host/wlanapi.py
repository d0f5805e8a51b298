"""Windows: Wi-Fi link facts from the WLAN API (wlanapi.dll), the logic apart from the ctypes.

Why a module of its own: the decisions around the API calls are where the mistakes were, and
they are tested off Windows through a fake of the calls (:class:`WlanApi`), while the only
Windows-bound part, :func:`open_api`, stays a thin ctypes shell.

- **Which interface:** the room's interface is named by its friendly name ("Wi-Fi", "WLAN");
  the WLAN API names interfaces by GUID and adapter description. The GUID is matched to
  GetAdaptersAddresses' ``AdapterName`` (``{GUID}``) for that friendly name; a lone WLAN
  interface is taken as it is. A description containing the name is no evidence ("Wi-Fi" is
  in "Intel(R) Wi-Fi 6 AX201" of another adapter; "WLAN" is in no description).
- **Which band:** 6 GHz reuses channel numbers 1-233, so a channel says nothing about the band.
  The band comes from the centre frequency of the connected BSS (``WlanGetNetworkBssList``,
  ``WLAN_BSS_ENTRY.ulChCenterFrequency`` in kHz). Without it, the channel decides the band only
  when the PHY cannot be on 6 GHz (before 802.11ax); otherwise the band is unknown, said so.
- **A refused query is not the end:** Windows 11 refuses the current-connection query to a
  process without location permission (ERROR_ACCESS_DENIED); the signal (RSSI) and channel
  queries are still asked, and what they tell is reported with the reason for the rest.
"""

from __future__ import annotations

import ctypes
import struct
import sys
from typing import Any, Protocol

from roomprobe.host import wifi

__all__ = ["WlanApi", "WlanBssEntry", "BSS_ENTRY_SIZE", "guid_text", "parse_bss_list",
           "pick_interface", "wlan_facts", "open_api"]

OPCODE_CURRENT_CONNECTION, OPCODE_CHANNEL_NUMBER, OPCODE_RSSI = 7, 8, 0x10000102
ERROR_ACCESS_DENIED = 5
MAX_BSS = 512  # entries read from one BSS list (a dense office shows a few dozen)
# PHY types (DOT11_PHY_TYPE names as wifi.DOT11_PHY gives them) that cannot run on 6 GHz
NOT_6GHZ = ("FHSS", "DSSS", "IR", "802.11a", "802.11b", "802.11g", "802.11n", "802.11ac", "802.11ad")


class WlanBssEntry(ctypes.Structure):
    """WLAN_BSS_ENTRY (wlanapi.h). Natural alignment gives the SDK's layout, the same on x86
    and x64 (no pointers): 360 bytes, ``ulChCenterFrequency`` at offset 92."""

    _fields_ = [
        ("ssid_length", ctypes.c_uint32), ("ssid", ctypes.c_ubyte * 32),  # DOT11_SSID
        ("uPhyId", ctypes.c_uint32),
        ("dot11Bssid", ctypes.c_ubyte * 6),  # DOT11_MAC_ADDRESS
        ("dot11BssType", ctypes.c_int32),
        ("dot11BssPhyType", ctypes.c_int32),
        ("lRssi", ctypes.c_int32),
        ("uLinkQuality", ctypes.c_uint32),
        ("bInRegDomain", ctypes.c_ubyte),  # BOOLEAN
        ("usBeaconPeriod", ctypes.c_uint16),
        ("ullTimestamp", ctypes.c_uint64),
        ("ullHostTimestamp", ctypes.c_uint64),
        ("usCapabilityInformation", ctypes.c_uint16),
        ("ulChCenterFrequency", ctypes.c_uint32),  # kHz
        ("uRateSetLength", ctypes.c_uint32), ("usRateSet", ctypes.c_uint16 * 126),  # WLAN_RATE_SET
        ("ulIeOffset", ctypes.c_uint32),
        ("ulIeSize", ctypes.c_uint32),
    ]


BSS_ENTRY_SIZE = ctypes.sizeof(WlanBssEntry)
BSS_LIST_HEADER = struct.Struct("<II")  # WLAN_BSS_LIST: dwTotalSize, dwNumberOfItems


def guid_text(raw: bytes) -> str:
    """A GUID's 16 bytes (Data1-3 little-endian) as ``{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}``."""
    d1, d2, d3 = struct.unpack_from("<IHH", raw)
    tail = raw[8:16].hex().upper()
    return f"{{{d1:08X}-{d2:04X}-{d3:04X}-{tail[:4]}-{tail[4:]}}}"


def parse_bss_list(buf: bytes) -> list[dict[str, Any]]:
    """WLAN_BSS_LIST bytes -> [{"bssid", "freq_mhz", "rssi_dbm", "phy", "link_quality"}]."""
    if len(buf) < BSS_LIST_HEADER.size:
        return []
    _total, count = BSS_LIST_HEADER.unpack_from(buf)
    out: list[dict[str, Any]] = []
    for i in range(min(count, MAX_BSS)):
        at = BSS_LIST_HEADER.size + i * BSS_ENTRY_SIZE
        if at + BSS_ENTRY_SIZE > len(buf):
            break
        e = WlanBssEntry.from_buffer_copy(buf, at)
        out.append({"bssid": ":".join(f"{b:02x}" for b in e.dot11Bssid),
                    "freq_mhz": e.ulChCenterFrequency / 1000.0 if e.ulChCenterFrequency else None,
                    "rssi_dbm": int(e.lRssi), "phy": wifi.DOT11_PHY.get(int(e.dot11BssPhyType)),
                    "link_quality": int(e.uLinkQuality)})
    return out


class WlanApi(Protocol):
    """The WLAN API calls wlan_facts makes (the ctypes shell, or a fake in tests)."""

    def interfaces(self) -> list[tuple[str, str]]:
        """WlanEnumInterfaces: (GUID text, description) per WLAN interface."""
        ...

    def query(self, guid: str, opcode: int) -> tuple[bytes | None, int]:
        """WlanQueryInterface: (the data, 0) or (None, the error code)."""
        ...

    def bss_list(self, guid: str) -> tuple[bytes | None, int]:
        """WlanGetNetworkBssList (every BSS the interface knows): (bytes, 0) or (None, code)."""
        ...


def pick_interface(items: list[tuple[str, str]], adapter_guid: str | None) -> str | None:
    """The WLAN interface whose GUID is the adapter's (GetAdaptersAddresses' AdapterName);
    without that GUID, the only WLAN interface there is; else None (not guessed)."""
    want = (adapter_guid or "").strip().strip("{}").upper()
    if want:
        found = next((g for g, _ in items if g.strip("{}").upper() == want), None)
        if found is not None:
            return found
        return None
    return items[0][0] if len(items) == 1 else None


def _refused(what: str, code: int) -> str:
    if code == ERROR_ACCESS_DENIED:
        return (f"{what}: access denied (Windows 11 gives Wi-Fi details only to apps with location "
                "permission: Settings > Privacy & security > Location, 'Let desktop apps access "
                "your location')")
    return f"{what}: error {code}"


def wlan_facts(api: WlanApi, interface: str, adapter_guid: str | None) -> dict[str, Any] | None:
    """The Wi-Fi facts of ``interface`` through ``api``; None when the interface is not found.

    ``note`` says what could not be read and why; ``error`` is set as well when even the signal
    is unknown (then nothing can be judged).
    """
    guid = pick_interface(api.interfaces(), adapter_guid)
    if guid is None:
        return None
    notes: list[str] = []
    conn, code = api.query(guid, OPCODE_CURRENT_CONNECTION)
    if conn is not None:
        out = wifi.parse_wlan_connection(conn, interface)
        if out["connected"] is False or out["error"]:
            return out
    else:
        out = wifi.empty(interface, "wlanapi")
        notes.append(_refused("current connection (SSID, BSSID, PHY, rates) not read", code))
    rssi, code = api.query(guid, OPCODE_RSSI)
    if rssi is not None and len(rssi) >= 4:
        out["signal_dbm"], out["signal_estimated"] = struct.unpack("<i", rssi[:4])[0], False
    elif out["signal_dbm"] is None:
        notes.append(_refused("signal (RSSI) not read", code))
    chan, code = api.query(guid, OPCODE_CHANNEL_NUMBER)
    if chan is not None and len(chan) >= 4:
        out["channel"] = struct.unpack("<I", chan[:4])[0]
    else:
        notes.append(_refused("channel not read", code))
    if out["connected"] is None and (out["signal_dbm"] is not None or out["channel"]):
        out["connected"] = True  # the driver reports a live link's RSSI/channel only
    _band(api, guid, out, notes)
    out["note"] = "; ".join(notes) or None
    if out["signal_dbm"] is None and notes:
        out["error"] = out["note"]
    return out


def _band(api: WlanApi, guid: str, out: dict[str, Any], notes: list[str]) -> None:
    """Band (and channel) from the connected BSS's centre frequency; see the module doc."""
    if out["bssid"]:
        buf, code = api.bss_list(guid)
        entry = next((e for e in parse_bss_list(buf) if e["bssid"] == out["bssid"]), None) if buf else None
        if entry and entry["freq_mhz"]:
            out["freq_mhz"] = entry["freq_mhz"]
            out["band"], channel = wifi.band_channel(entry["freq_mhz"])
            out["channel"] = out["channel"] or channel
            return
        notes.append(_refused("BSS list not read", code) if buf is None
                     else f"the connected BSS {out['bssid']} is not in the BSS list")
    if out["channel"] and out["phy"] in NOT_6GHZ:
        out["band"] = wifi.band_from_text(None, out["channel"])
    elif out["channel"]:
        notes.append(f"band unknown: channel {out['channel']} exists on 2.4/5 GHz and on 6 GHz, "
                     "and the centre frequency could not be read")


class _CtypesWlan:  # pragma: no cover - Windows only (the calls are faked in tests)
    """The four WLAN API calls through ctypes; ``api`` is wlanapi.dll, ``handle`` open."""

    def __init__(self, api: Any, handle: Any) -> None:
        self.api, self.handle = api, handle
        self.guids: dict[str, Any] = {}

    def interfaces(self) -> list[tuple[str, str]]:
        class Guid(ctypes.Structure):
            _fields_ = [("data", ctypes.c_ubyte * 16)]

        class IfInfo(ctypes.Structure):
            _fields_ = [("guid", Guid), ("description", ctypes.c_wchar * 256), ("state", ctypes.c_uint)]

        class IfList(ctypes.Structure):
            _fields_ = [("count", ctypes.c_uint32), ("index", ctypes.c_uint32), ("items", IfInfo * 64)]

        plist = ctypes.POINTER(IfList)()
        if self.api.WlanEnumInterfaces(self.handle, None, ctypes.byref(plist)) != 0:
            return []
        try:
            out = []
            for item in plist.contents.items[:min(64, plist.contents.count)]:
                text = guid_text(bytes(item.guid.data))
                self.guids[text] = Guid.from_buffer_copy(bytes(item.guid.data))
                out.append((text, str(item.description)))
            return out
        finally:
            self.api.WlanFreeMemory(plist)

    def query(self, guid: str, opcode: int) -> tuple[bytes | None, int]:
        size, data = ctypes.c_uint32(), ctypes.c_void_p()
        code = self.api.WlanQueryInterface(self.handle, ctypes.byref(self.guids[guid]), opcode, None,
                                           ctypes.byref(size), ctypes.byref(data), None)
        if code != 0:
            return None, int(code)
        try:
            return ctypes.string_at(data, min(size.value, 4096)), 0
        finally:
            self.api.WlanFreeMemory(data)

    def bss_list(self, guid: str) -> tuple[bytes | None, int]:
        plist = ctypes.c_void_p()
        # pDot11Ssid NULL: every BSS (then the BSS type, 3 = any, and security flag are ignored)
        code = self.api.WlanGetNetworkBssList(self.handle, ctypes.byref(self.guids[guid]), None, 3,
                                              False, None, ctypes.byref(plist))
        if code != 0 or not plist.value:
            return None, int(code)
        try:
            total = ctypes.c_uint32.from_address(plist.value).value
            cap = BSS_LIST_HEADER.size + MAX_BSS * BSS_ENTRY_SIZE
            return ctypes.string_at(plist, min(total, cap)), 0
        finally:
            self.api.WlanFreeMemory(plist)


def open_api(interface: str, adapter_guid: str | None) -> dict[str, Any] | None:
    """The facts through the live WLAN API; None when it is not there (then netsh answers)."""
    if sys.platform != "win32":
        return None
    from ctypes import wintypes

    try:
        api = ctypes.WinDLL("wlanapi.dll")
    except OSError:
        return None
    handle, version = wintypes.HANDLE(), wintypes.DWORD()
    if api.WlanOpenHandle(2, None, ctypes.byref(version), ctypes.byref(handle)) != 0:
        return None
    try:
        return wlan_facts(_CtypesWlan(api, handle), interface, adapter_guid)
    finally:
        api.WlanCloseHandle(handle, None)
