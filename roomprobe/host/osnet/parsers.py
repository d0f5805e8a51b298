"""Parsers for OS command outputs, kept pure so they are tested on recorded real outputs."""

from __future__ import annotations

import re
from typing import Any


def _kv_lines(text: str, sep: str = ":") -> list[tuple[str, str]]:
    out = []
    for line in text.splitlines():
        if sep not in line:
            continue
        key, _, value = line.partition(sep)
        out.append((key.strip(), value.strip()))
    return out


def iw_link_ssid(text: str) -> str | None:
    """``iw dev wlan0 link``: "SSID: name" when connected, "Not connected." otherwise."""
    for key, value in _kv_lines(text):
        if key == "SSID":
            return value or None
    return None


_GUID = re.compile(r"^[0-9a-fx]{8}-[0-9a-fx]{4}-[0-9a-fx]{4}-[0-9a-fx]{4}-[0-9a-fx]{12}$", re.I)
_MAC = re.compile(r"^(?:[0-9a-fx]{2}[:-]){5}[0-9a-fx]{2}$", re.I)
# Windows 11 24H2 without location permission prints a sentence instead of interfaces; the
# settings URI it names is the same in every language.
WLAN_LOCATION_URI = "ms-settings:privacy-location"


def netsh_wlan_interfaces(text: str) -> list[dict[str, str | None]]:
    """``netsh wlan show interfaces`` (Windows, any language): one dict per interface.

    Matched by structure, not by English words: every interface block is "Name", "Description",
    "GUID" in that order, so a block starts two lines above the line whose value is GUID-shaped;
    the SSID line is keyed "SSID" in every language (it is a standard's name); the AP BSSID is
    the MAC-shaped value after it; a disconnected interface has no SSID line. Keys: ``name``,
    ``description``, ``guid``, ``mac``, ``state`` (the localized word as printed, when
    connected), ``ssid`` (None when not connected), ``bssid``, ``signal`` (the value in %).
    """
    kv = [(k, v) for k, v in _kv_lines(text.replace("\xa0", " ")) if k]
    starts = [i - 2 for i, (_, v) in enumerate(kv) if _GUID.match(v) and i >= 2]
    blocks: list[dict[str, str | None]] = []
    for n, start in enumerate(starts):
        stop = starts[n + 1] if n + 1 < len(starts) else len(kv)
        rows = kv[start:stop]
        block: dict[str, str | None] = {
            "name": rows[0][1], "description": rows[1][1], "guid": rows[2][1], "mac": None,
            "state": None, "ssid": None, "bssid": None, "signal": None}
        block["mac"] = next((v for _, v in rows[3:5] if _MAC.match(v)), None)
        for j, (k, v) in enumerate(rows):
            if k.upper() == "SSID" and block["ssid"] is None:
                block["ssid"] = v or None
                block["state"] = rows[j - 1][1]  # the line above SSID (any language, any build)
                block["bssid"] = next((v2 for _, v2 in rows[j + 1:j + 3] if _MAC.match(v2)), None)
            elif block["signal"] is None and re.fullmatch(r"\d{1,3}\s?%", v):
                block["signal"] = v.replace(" ", "")
        blocks.append(block)
    return blocks


def netsh_wlan_ssid(text: str, interface: str | None = None) -> str | None:
    """The SSID of ``interface`` (or of the first connected one) from netsh, in any language."""
    for block in netsh_wlan_interfaces(text):
        if interface and (block.get("name") or "").lower() != interface.lower():
            continue
        if block.get("ssid"):
            return block["ssid"]
    return None


def netsh_wlan_note(text: str) -> str | None:
    """Why netsh gave no SSID when it says so: Windows 11 24H2 needs location permission."""
    if WLAN_LOCATION_URI in text:
        return ("SSID hidden by Windows (location permission): allow location access for "
                "desktop apps in Settings > Privacy & security > Location")
    return None


# Interface kinds by name/description, in every language the room PCs ship in. Checked in
# order: virtual adapters first (Wi-Fi Direct, VPN TAP), then Wi-Fi, then wired.
_VIRTUAL_WORDS = ("vethernet", "hyper-v", "vmware", "virtualbox", "vpn", "tap-", "tap ",
                  "wireguard", "tailscale", "zerotier", "bluetooth", "teredo", "isatap", "pseudo",
                  "wi-fi direct", "virtual adapter", "virtual ethernet", "tunnel", "openvpn",
                  "npcap", "loopback adapter", "wan miniport", "6to4", "iphone usb")
_WIFI_WORDS = ("wi-fi", "wifi", "wlan", "wireless", "802.11", "drahtlos", "sans fil",
               "inalámbrica", "inalambrica", "senza fili", "беспровод", "ワイヤレス", "無線")
_WIRED_WORDS = ("ethernet", "gbe", "gigabit", "realtek pcie", "usb 3.0 to", "ax88179",
                "ax88772", "rtl8153", "rtl815", "i211", "i219", "i225", "i226", "ethernet-",
                "lan-verbindung", "connexion au réseau local", "conexión de área local",
                "connessione alla rete locale", "подключение по локальной сети", "ローカル エリア接続")
# "Local Area Connection* N" (the star) and its translations name Wi-Fi Direct virtual
# adapters and VPN TAP adapters, never a cable.
_STAR_CONNECTION = re.compile(r"\*\s*\d+\s*$")


def windows_interface_kind(name: str, description: str = "") -> str:
    """Windows friendly names ("Wi-Fi", "Ethernet 2", "vEthernet (WSL)", "WLAN") to a kind.

    The adapter description (from GetAdaptersAddresses or ``ipconfig /all``), when known, is
    the better witness: "Microsoft Wi-Fi Direct Virtual Adapter", "ASIX AX88179 USB 3.0 to
    Gigabit Ethernet Adapter".
    """
    text = f"{name} {description}".lower()
    if "loopback" in text and "adapter" not in text:
        return "loopback"
    if _STAR_CONNECTION.search(name) or any(w in text for w in _VIRTUAL_WORDS):
        return "virtual"
    if any(w in text for w in _WIFI_WORDS):
        return "wifi"
    if any(w in text for w in _WIRED_WORDS) or re.search(r"local area connection(\s+\d+)?$", text):
        return "wired"
    return "unknown"


# GetAdaptersAddresses IfType (IANA ifType): the structured answer, no words involved.
IF_TYPE_KIND = {6: "wired", 71: "wifi", 24: "loopback", 131: "virtual", 53: "virtual",
                23: "virtual", 37: "virtual", 144: "virtual"}


def windows_kind_from_iftype(if_type: int, description: str = "") -> str:
    """IfType to a kind; an Ethernet-typed virtual adapter (Hyper-V, TAP) is still virtual."""
    kind = IF_TYPE_KIND.get(if_type, "unknown")
    if kind == "wired" and windows_interface_kind("", description) == "virtual":
        return "virtual"
    return kind


_IPCONFIG_KV = re.compile(r"^\s{2,}(?P<key>[^:]+?)[\s.]*:\s?(?P<value>.*)$")
_IP_STATE = re.compile(r"^(?P<addr>[0-9A-Fa-f:.]+(?:%\d+)?)\s*\((?P<state>[^)]*)\)$")


def ipconfig_all(text: str) -> list[dict[str, object]]:
    """``ipconfig /all`` (Windows, any language): one dict per adapter.

    Structure, not words: an adapter starts at an unindented line ending in ":"; its first
    lines are [media state (only when disconnected)], connection DNS suffix, description,
    physical address (MAC-shaped, or empty for tunnels). Host addresses are the values that
    carry a state in parentheses ("(Preferred)", "(Bevorzugt)"). DNS servers: the row whose
    key holds the acronym "DNS" in every language ("DNS Servers", "DNS-Server", "Serveurs DNS",
    "DNS-серверы") and whose value is an IP address (the suffix rows hold names), with the
    address-only continuation lines below it. Keys: ``header`` (the whole line, e.g.
    "Drahtlos-LAN-Adapter WLAN"), ``dns_suffix``, ``description``, ``mac``, ``disconnected``,
    ``addresses``, ``dns_servers`` (as printed, with any %scope); the global block is not returned.
    """
    adapters: list[dict[str, object]] = []
    rows: list[tuple[str, str]] = []
    conts: dict[int, list[str]] = {}

    def close() -> None:
        if not adapters:
            return
        a = adapters[-1]
        off = 0
        if len(rows) >= 3 and rows[2][1] and not _MAC.match(rows[2][1]):
            off = 1  # a media-state line comes first: the adapter is disconnected
        pick = [rows[off + i][1] if off + i < len(rows) else "" for i in range(3)]
        a.update(disconnected=bool(off), dns_suffix=pick[0] or None, description=pick[1] or None,
                 mac=pick[2] if _MAC.match(pick[2]) else None)
        a["addresses"] = [m.group("addr").split("%")[0] for _, v in rows
                          if (m := _IP_STATE.match(v))]
        a["dns_servers"] = next(([v, *conts.get(i, [])] for i, (k, v) in enumerate(rows)
                                 if "DNS" in k and _is_ip(v)), [])

    for line in text.replace("\r\n", "\n").split("\n"):
        if line and not line[0].isspace() and line.rstrip().endswith(":"):
            close()
            adapters.append({"header": line.rstrip().rstrip(":").rstrip()})
            rows, conts = [], {}
            continue
        if line.startswith(" " * 20) and rows:
            if _is_ip(line.strip()):  # a continuation line: one more value of the row above
                conts.setdefault(len(rows) - 1, []).append(line.strip())
            continue
        m = _IPCONFIG_KV.match(line)
        if m and adapters:
            rows.append((m.group("key").strip(), m.group("value").strip()))
    close()
    return [a for a in adapters if a.get("description") or a.get("mac")]


def _is_ip(value: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(value.split("%", 1)[0])
        return True
    except ValueError:
        return False


def ipconfig_adapter(adapters: list[dict[str, object]], name: str) -> dict[str, object] | None:
    """The ``ipconfig_all`` adapter whose header ends with the friendly ``name`` (any language)."""
    for a in adapters:
        if str(a["header"]).endswith(" " + name):
            return a
    return None


def route_print_interfaces(text: str) -> list[dict[str, str | None]]:
    """``route print`` interface list: index, MAC (None for software interfaces), description."""
    out: list[dict[str, str | None]] = []
    for line in text.splitlines():
        m = re.match(r"^\s*(\d+)\.\.\.((?:[0-9a-f]{2} ){5}[0-9a-f]{2})?\s*\.+(.+)$", line, re.I)
        if m:
            mac = m.group(2).strip().replace(" ", ":") if m.group(2) else None
            out.append({"index": m.group(1), "mac": mac, "description": m.group(3).strip()})
    return out


def route_print_default(text: str) -> list[dict[str, str]]:
    """``route print`` IPv4 default routes (0.0.0.0/0): gateway, interface address, metric."""
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) == 5 and f[0] == "0.0.0.0" and f[1] == "0.0.0.0":
            out.append({"gateway": f[2], "interface": f[3], "metric": f[4]})
    return out


def networksetup_hardware_ports(text: str) -> dict[str, str]:
    """``networksetup -listallhardwareports`` (macOS): device -> hardware port name."""
    ports: dict[str, str] = {}
    current = None
    for key, value in _kv_lines(text):
        if key == "Hardware Port":
            current = value
        elif key == "Device" and current is not None:
            ports[value] = current
            current = None
    return ports


def macos_kind(device: str, hardware_port: str | None) -> str:
    """A device's kind from its hardware port name, in any language the Mac is set to.

    Port names are localized ("WLAN" on a German Mac) or name the chip of a USB adapter
    ("AX88179A"), so words decide only Wi-Fi and the virtual ports; any other port networksetup
    lists on an ``enN`` device is a physical NIC, hence wired. Whole words only: "WLAN" must
    not match a "lan" substring rule.
    """
    if device == "lo0" or device.startswith("lo"):
        return "loopback"
    if hardware_port is None:
        return "virtual" if re.match(r"^(utun|awdl|llw|bridge|gif|stf|anpi|ap|ipsec|ppp)\d", device) else "unknown"
    port = hardware_port.lower()
    if re.search(r"\b(wi-?fi|airport|wlan|wireless)\b", port):
        return "wifi"
    if re.search(r"\b(bridge|vpn|bluetooth|iphone|ipad|firewire)\b", port) or device.startswith("bridge"):
        return "virtual"
    if re.match(r"^en\d+$", device) or re.search(r"\b(ethernet|thunderbolt|lan|usb)\b", port):
        return "wired"
    return "unknown"


def macos_airport_network(text: str) -> str | None:
    """``networksetup -getairportnetwork en0``: "Current Wi-Fi Network: name".

    macOS 15 prints "You are not associated with an AirPort network." even while connected
    when the caller lacks location permission: that is None here, and ``macos_getsummary``
    tells the two cases apart.
    """
    m = re.search(r"Current (?:Wi-Fi|AirPort) Network:\s*(.+)", text)
    return m.group(1).strip() if m else None


REDACTED = "<redacted>"


def macos_getsummary(text: str) -> dict[str, str | bool | None]:
    """``ipconfig getsummary en0`` (macOS): ``ssid``, ``redacted``, ``wifi``, ``link_active``.

    Since macOS 14.4 the SSID reads ``<redacted>`` for a process without location permission;
    ``redacted`` is True then and ``ssid`` None.
    """
    top = {k: v for k, v in _kv_lines(text)}
    ssid = top.get("SSID")
    return {"ssid": ssid if ssid and ssid != REDACTED else None,
            "redacted": ssid == REDACTED,
            "wifi": top.get("InterfaceType", "").lower() == "wifi" if "InterfaceType" in top else None,
            "link_active": (top["LinkStatusActive"].upper() == "TRUE") if "LinkStatusActive" in top else None}


MACOS_SSID_HIDDEN = ("SSID hidden by macOS (location permission): connected, but macOS 14.4+ "
                     "shows the network name only to apps with location access")


def macos_wifi_note(airport_text: str, summary_text: str) -> str | None:
    """Why there is no SSID: hidden by macOS (connected, redacted), else None (not connected)."""
    if macos_airport_network(airport_text):
        return None
    summary = macos_getsummary(summary_text)
    if summary["redacted"] and summary["link_active"] is not False:
        return MACOS_SSID_HIDDEN
    return None


def macos_route_get(text: str) -> dict[str, str | None]:
    """``route -n get ADDR`` (macOS): interface, gateway (None when on-link)."""
    kv = dict(_kv_lines(text))
    gw = kv.get("gateway")
    return {"interface": kv.get("interface"), "gateway": gw if gw and not gw.startswith("link#") else None}


def macos_arp(text: str) -> dict[str, str | None] | None:
    """``arp -n ADDR``: "? (10.0.0.5) at a4:83:e7:1:2:3 on en0 ifscope [ethernet]" or "(incomplete)"."""
    m = re.search(r"\) at (\S+) on (\S+)", text)
    if not m:
        return None
    mac = m.group(1)
    if mac == "(incomplete)":
        return {"mac": None, "state": "incomplete", "interface": m.group(2)}
    return {"mac": mac, "state": "reachable", "interface": m.group(2)}


# ---- Windows neighbours (ARP) -------------------------------------------------------------


def neighbor_rows(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """GetIpNetTable2 rows (``ipnet_table2``) keyed by address, as ``neighbor`` picks them: the
    first row with a MAC, else the first row."""
    table: dict[str, dict[str, Any]] = {}
    for r in rows:
        addr = str(r["address"])
        if addr not in table or (r["mac"] and not table[addr]["mac"]):
            table[addr] = {"mac": r["mac"], "state": r["state"], "if_index": r["if_index"],
                           "source": "GetIpNetTable2"}
    return table


_IPV4 = r"\d{1,3}(?:\.\d{1,3}){3}"
# "Interface: 192.168.1.10 --- 0xb", "Schnittstelle: ...", "Interface : ..." (French spacing),
# "Интерфейс: ...", "インターフェイス: ...": the word changes, the address and the hex index do not.
_ARP_IFACE = re.compile(rf"^\S.*?({_IPV4})\s+-+\s+0x([0-9a-f]+)\s*$", re.I)
# A row: IP, then the MAC (dashes; empty on a point-to-point tunnel), then the type word in the
# console's language (dynamic/dynamisch/dynamique/dinámico/динамический/動的).
_ARP_ROW = re.compile(rf"^\s+({_IPV4})\s+((?:[0-9a-f]{{2}}-){{5}}[0-9a-f]{{2}})?\s*(\S.*?)?\s*$", re.I)
_NO_MAC = "00-00-00-00-00-00"


def windows_arp(text: str) -> list[dict[str, str | int | None]]:
    """``arp -a`` (Windows, any language): one dict per row, under its interface.

    Layout, not words: an interface line ends in "ADDRESS --- 0xINDEX"; a row is an IPv4
    address, a dash-separated MAC and the type word as printed (localized, so kept only as
    ``type``). Column headers match neither shape and are skipped. Keys: ``interface`` (the
    interface's own address), ``if_index`` (int), ``address``, ``mac`` (colon form; None when
    the row has none, as on a point-to-point tunnel, or all zeros, an unresolved entry),
    ``type``, ``state``: "resolved" (a MAC is known; arp -a cannot tell reachable from stale),
    "incomplete" (00-00-00-00-00-00: asked, no answer yet) or "no-link-layer" (no MAC column).
    """
    rows: list[dict[str, str | int | None]] = []
    iface: str | None = None
    index: int | None = None
    for line in text.replace("\xa0", " ").splitlines():
        m = _ARP_IFACE.match(line)
        if m:
            iface, index = m.group(1), int(m.group(2), 16)
            continue
        r = _ARP_ROW.match(line)
        if not r or iface is None:
            continue
        raw_mac = (r.group(2) or "").lower()
        state = ("resolved" if raw_mac and raw_mac != _NO_MAC else
                 "incomplete" if raw_mac else "no-link-layer")
        rows.append({"interface": iface, "if_index": index, "address": r.group(1),
                     "mac": raw_mac.replace("-", ":") if state == "resolved" else None,
                     "type": r.group(3) or None, "state": state})
    return rows


def windows_neighbor(rows: list[dict[str, str | int | None]], peer: str,
                     interface_address: str | None = None) -> dict[str, str | None]:
    """The neighbour entry for ``peer`` from ``windows_arp`` rows, as osnet.neighbor returns it.

    ``{"mac": None, "state": "none"}`` when no interface lists it (the OS never asked, or the
    entry expired). With several interfaces listing it, the one whose address is
    ``interface_address`` (the source address towards the peer) wins.
    """
    found = [r for r in rows if r["address"] == peer]
    if interface_address:
        found = [r for r in found if r["interface"] == interface_address] or found
    resolved = [r for r in found if r["state"] == "resolved"]
    if not (resolved or found):
        return {"mac": None, "state": "none"}
    pick = (resolved or found)[0]
    mac = None if pick["mac"] is None else str(pick["mac"])
    return {"mac": mac, "state": str(pick["state"]), "interface": str(pick["interface"])}


# GetIpNetTable2 (iphlpapi): MIB_IPNET_TABLE2 is NumEntries (ULONG, padded to 8) then
# MIB_IPNET_ROW2[NumEntries], 88 bytes each: SOCKADDR_INET Address (28), InterfaceIndex (4),
# InterfaceLuid (8), PhysicalAddress[32], PhysicalAddressLength (4), State (4), Flags (1 + 3
# padding), ReachabilityTime (4). NL_NEIGHBOR_STATE values below. Decoded from bytes here so
# the layout is tested on every OS; only the call itself is Windows-only.
IPNET_ROW2_SIZE = 88
NL_NEIGHBOR_STATE = {0: "unreachable", 1: "incomplete", 2: "probe", 3: "delay", 4: "stale",
                     5: "reachable", 6: "permanent"}
_WIN_AF_INET, _WIN_AF_INET6 = 2, 23


def sockaddr_inet(buf: bytes) -> str | None:
    """A Windows SOCKADDR_INET / SOCKADDR (IPv4 or IPv6) as text; None for other families."""
    import ipaddress
    import struct

    if len(buf) < 8:
        return None
    family = struct.unpack_from("<H", buf, 0)[0]
    if family == _WIN_AF_INET:
        return str(ipaddress.IPv4Address(buf[4:8]))
    if family == _WIN_AF_INET6 and len(buf) >= 24:
        return str(ipaddress.IPv6Address(buf[8:24]))
    return None


def ipnet_table2(buf: bytes) -> list[dict[str, str | int | None]]:
    """The rows of a MIB_IPNET_TABLE2 copied out as bytes: address, if_index, mac, state."""
    import struct

    if len(buf) < 8:
        return []
    count = struct.unpack_from("<I", buf, 0)[0]
    count = min(count, (len(buf) - 8) // IPNET_ROW2_SIZE)
    rows: list[dict[str, str | int | None]] = []
    for n in range(count):
        row = buf[8 + n * IPNET_ROW2_SIZE: 8 + (n + 1) * IPNET_ROW2_SIZE]
        address = sockaddr_inet(row[:28])
        if address is None:
            continue
        if_index = struct.unpack_from("<I", row, 28)[0]
        length = min(struct.unpack_from("<I", row, 72)[0], 32)
        state_no = struct.unpack_from("<i", row, 76)[0]
        mac_bytes = row[40:40 + length]
        mac = ":".join(f"{b:02x}" for b in mac_bytes) if length and any(mac_bytes) else None
        state = NL_NEIGHBOR_STATE.get(state_no, "unknown")
        if mac is None and not length:
            state = "no-link-layer"  # a tunnel: no MAC to resolve
        rows.append({"address": address, "if_index": if_index, "mac": mac, "state": state})
    return rows
