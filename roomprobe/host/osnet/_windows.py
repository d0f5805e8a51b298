"""Windows: interface kinds from GetAdaptersAddresses, SSID from netsh, neighbours, admin, Npcap.

Structured sources first: GetAdaptersAddresses (iphlpapi, via ctypes) gives each adapter's
IfType (71 = Wi-Fi, 6 = Ethernet), description and connection DNS suffix in every language.
When it cannot be read, ``ipconfig /all`` (parsed by structure) and then the friendly name
decide. netsh output is decoded with the OEM code page it was written in (roomprobe.core.oscmd) and
parsed by structure, so a German, French or Japanese room PC gives the same answers.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from roomprobe.core import oscmd
from roomprobe.host.osnet import parsers


@functools.lru_cache(maxsize=1)
def adapters() -> dict[str, dict[str, Any]]:
    """Friendly name -> {"if_type", "description", "dns_suffix", "up", "dns_servers", "guid"};
    {} when unavailable."""
    try:
        return _get_adapters_addresses()
    except Exception:  # ctypes on an odd build, a changed API: fall back to the commands
        return {}


def _get_adapters_addresses() -> dict[str, dict[str, Any]]:
    """GetAdaptersAddresses, reading only the leading fields of IP_ADAPTER_ADDRESSES (stable
    since Windows XP); the list is walked through the Next pointers the OS filled in."""
    import ctypes
    from ctypes import wintypes

    class _Adapter(ctypes.Structure):
        pass

    _Adapter._fields_ = [
        ("Length", wintypes.ULONG), ("IfIndex", wintypes.DWORD),
        ("Next", ctypes.POINTER(_Adapter)), ("AdapterName", ctypes.c_char_p),
        ("FirstUnicastAddress", ctypes.c_void_p), ("FirstAnycastAddress", ctypes.c_void_p),
        ("FirstMulticastAddress", ctypes.c_void_p), ("FirstDnsServerAddress", ctypes.c_void_p),
        ("DnsSuffix", ctypes.c_wchar_p), ("Description", ctypes.c_wchar_p),
        ("FriendlyName", ctypes.c_wchar_p), ("PhysicalAddress", ctypes.c_ubyte * 8),
        ("PhysicalAddressLength", wintypes.ULONG), ("Flags", wintypes.ULONG),
        ("Mtu", wintypes.ULONG), ("IfType", wintypes.DWORD), ("OperStatus", ctypes.c_int),
    ]
    iphlpapi = ctypes.windll.iphlpapi  # type: ignore[attr-defined]
    size = wintypes.ULONG(64 * 1024)
    for _ in range(3):
        buf = ctypes.create_string_buffer(size.value)
        # AF_UNSPEC, GAA_FLAG_SKIP_ANYCAST | SKIP_MULTICAST
        rc = iphlpapi.GetAdaptersAddresses(0, 0x2 | 0x4, None, buf, ctypes.byref(size))
        if rc == 0:
            break
        if rc != 111:  # ERROR_BUFFER_OVERFLOW: size now holds what is needed
            return {}
    else:
        return {}
    out: dict[str, dict[str, Any]] = {}
    node = ctypes.cast(buf, ctypes.POINTER(_Adapter))
    while node:
        a = node.contents
        out[a.FriendlyName or ""] = {"if_type": int(a.IfType), "description": a.Description or "",
                                     # AdapterName is the interface GUID ("{...}"), the key the
                                     # WLAN API knows the adapter by
                                     "guid": (a.AdapterName or b"").decode("ascii", "replace") or None,
                                     "dns_suffix": a.DnsSuffix or None,
                                     "up": int(a.OperStatus) == 1,
                                     "dns_servers": _dns_servers(a.FirstDnsServerAddress)}
        node = a.Next
    return out


def _dns_servers(first: int | None) -> list[str]:
    """Walk IP_ADAPTER_DNS_SERVER_ADDRESS: {Length, Reserved, Next, SOCKET_ADDRESS{ptr, len}}."""
    import ctypes

    class _Dns(ctypes.Structure):
        pass

    _Dns._fields_ = [("Length", ctypes.c_ulong), ("Reserved", ctypes.c_ulong),
                     ("Next", ctypes.POINTER(_Dns)), ("lpSockaddr", ctypes.c_void_p),
                     ("iSockaddrLength", ctypes.c_int)]
    out: list[str] = []
    node = ctypes.cast(first, ctypes.POINTER(_Dns)) if first else None
    while node and len(out) < 32:
        d = node.contents
        if d.lpSockaddr and 0 < d.iSockaddrLength <= 128:
            addr = parsers.sockaddr_inet(ctypes.string_at(d.lpSockaddr, d.iSockaddrLength))
            if addr:
                out.append(addr)
        node = d.Next
    return out


def adapter_records() -> tuple[list[dict[str, Any]], str]:
    """Every adapter as {"name", "up", "dns_servers"} and where that came from; ([], "") when
    neither GetAdaptersAddresses nor ``ipconfig /all`` could be read (unknown)."""
    found = adapters()
    if found:
        return ([{"name": n, "up": bool(i.get("up")), "dns_servers": list(i.get("dns_servers") or [])}
                 for n, i in found.items()], "GetAdaptersAddresses")
    parsed = _ipconfig()
    if parsed:
        return ([{"name": str(a["header"]), "up": not a.get("disconnected"),
                  "dns_servers": list(a.get("dns_servers") or [])}  # type: ignore[call-overload]
                 for a in parsed], "ipconfig /all")
    return [], ""


@functools.lru_cache(maxsize=1)
def _ipconfig() -> list[dict[str, object]]:
    out = oscmd.run(["ipconfig", "/all"], timeout=5.0)
    return parsers.ipconfig_all(out.text) if out.text else []


def interface_kind(name: str) -> str:
    info = adapters().get(name)
    if info:
        return parsers.windows_kind_from_iftype(info["if_type"], info["description"])
    found = parsers.ipconfig_adapter(_ipconfig(), name)
    return parsers.windows_interface_kind(name, str(found.get("description") or "") if found else "")


def dns_suffix() -> str | None:
    """The connection-specific DNS suffix of the first up adapter that has one (WPAD's domain)."""
    for info in adapters().values():
        if info.get("up") and info.get("dns_suffix"):
            return str(info["dns_suffix"])
    for a in _ipconfig():
        if not a.get("disconnected") and a.get("dns_suffix") and a.get("addresses"):
            return str(a["dns_suffix"])
    return None


@functools.lru_cache(maxsize=1)
def _netsh_wlan() -> oscmd.CmdOutput:
    return oscmd.run(["netsh", "wlan", "show", "interfaces"], timeout=5.0)


def wifi_ssid(name: str) -> str | None:
    return parsers.netsh_wlan_ssid(_netsh_wlan().text, name)


def wifi_note(name: str) -> str | None:
    """Why there is no SSID, when netsh says (location permission) or failed."""
    out = _netsh_wlan()
    note = parsers.netsh_wlan_note(out.text)
    if note:
        return note
    if out.error and not parsers.netsh_wlan_interfaces(out.text):
        return f"netsh wlan unreadable: {out.error}"
    return None


def is_admin() -> bool:
    try:
        import ctypes

        return bool(ctypes.windll.shell32.IsUserAnAdmin())  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return False


def raw_sockets() -> bool:
    """scapy sends raw frames on Windows through Npcap, as an administrator."""
    system_root = os.environ.get("SYSTEMROOT", r"C:\Windows")
    return is_admin() and os.path.isdir(os.path.join(system_root, "System32", "Npcap"))


def route_to(peer: str) -> dict[str, Any] | None:
    return None  # the portable fallback (source address + gateways) is exact enough here


def neighbor(peer: str) -> dict[str, Any] | None:
    """The neighbour entry for ``peer``: GetIpNetTable2 first (states in any language), else
    ``arp -a`` parsed by layout; None when neither can be read (unknown, not "no entry")."""
    try:
        rows = _ipnet_table2()
    except Exception:  # ctypes on an odd build, a changed API: the command still answers
        rows = None
    if rows is not None:
        found = [r for r in rows if r["address"] == peer]
        pick = next((r for r in found if r["mac"]), found[0] if found else None)
        if pick is None:
            return {"mac": None, "state": "none"}
        return {"mac": pick["mac"], "state": pick["state"], "if_index": pick["if_index"],
                "source": "GetIpNetTable2"}
    if ":" in peer:
        return None  # arp -a lists IPv4 only: the IPv6 neighbour is unknown, not absent
    out = oscmd.run(["arp", "-a"], timeout=5.0)
    rows_a = parsers.windows_arp(out.text) if out.text else []
    if out.error and not rows_a:
        # An empty table prints one localized sentence ("No ARP Entries Found.") and exits
        # non-zero: the peer has no entry. No output at all (not found, timeout): unknown.
        return {"mac": None, "state": "none"} if out.returncode not in (None, 0) and out.text.strip() else None
    from roomprobe.host.osnet import source_address

    found_nb = parsers.windows_neighbor(rows_a, peer, source_address(peer))
    return {**found_nb, "source": "arp -a"}


def neighbor_table() -> dict[str, dict[str, Any]] | None:
    """Every neighbour entry at once from one GetIpNetTable2, in ``neighbor``'s shape (an entry
    with a MAC preferred); None when the table cannot be read (then ``neighbor`` per address)."""
    try:
        rows = _ipnet_table2()
    except Exception:  # ctypes on an odd build, a changed API
        rows = None
    return None if rows is None else parsers.neighbor_rows(rows)


def _ipnet_table2() -> list[dict[str, Any]] | None:  # pragma: no cover - Windows only
    """GetIpNetTable2(AF_UNSPEC) copied out as bytes (decoded by parsers.ipnet_table2)."""
    import ctypes

    iphlpapi = ctypes.windll.iphlpapi  # type: ignore[attr-defined]
    table = ctypes.c_void_p()
    if iphlpapi.GetIpNetTable2(0, ctypes.byref(table)) != 0 or not table.value:
        return None
    try:
        count = ctypes.c_ulong.from_address(table.value).value
        size = 8 + min(count, 65536) * parsers.IPNET_ROW2_SIZE
        return parsers.ipnet_table2(ctypes.string_at(table.value, size))
    finally:
        iphlpapi.FreeMibTable(table)
