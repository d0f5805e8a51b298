"""Parsers for OS command outputs, kept pure so they are tested on recorded real outputs."""

from __future__ import annotations

import re


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


def netsh_wlan_interfaces(text: str) -> list[dict[str, str]]:
    """``netsh wlan show interfaces`` (Windows): one dict per interface block, keys lowercased."""
    blocks: list[dict[str, str]] = []
    for key, value in _kv_lines(text):
        k = key.lower()
        if k == "name":
            blocks.append({})
        if blocks:
            blocks[-1].setdefault(k, value)
    return blocks


def netsh_wlan_ssid(text: str, interface: str | None = None) -> str | None:
    for block in netsh_wlan_interfaces(text):
        if interface and block.get("name", "").lower() != interface.lower():
            continue
        if block.get("state", "").lower() == "connected" and block.get("ssid"):
            return block["ssid"]
    return None


def windows_interface_kind(name: str, description: str = "") -> str:
    """Windows friendly names ("Wi-Fi", "Ethernet 2", "vEthernet (WSL)") to a kind."""
    text = f"{name} {description}".lower()
    if "loopback" in text:
        return "loopback"
    if any(w in text for w in ("vethernet", "hyper-v", "vmware", "virtualbox", "vpn", "tap-",
                               "wireguard", "tailscale", "zerotier", "bluetooth", "teredo",
                               "isatap", "pseudo")):
        return "virtual"
    if any(w in text for w in ("wi-fi", "wifi", "wlan", "wireless", "802.11")):
        return "wifi"
    if "ethernet" in text or "local area connection" in text:
        return "wired"
    return "unknown"


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
    if device == "lo0" or device.startswith("lo"):
        return "loopback"
    if hardware_port is None:
        return "virtual" if re.match(r"^(utun|awdl|llw|bridge|gif|stf|anpi|ap)\d", device) else "unknown"
    port = hardware_port.lower()
    if "wi-fi" in port or "airport" in port:
        return "wifi"
    if "bridge" in port or "vpn" in port:
        return "virtual"
    if "ethernet" in port or "thunderbolt" in port or "lan" in port:
        return "wired"
    return "unknown"


def macos_airport_network(text: str) -> str | None:
    """``networksetup -getairportnetwork en0``: "Current Wi-Fi Network: name"."""
    m = re.search(r"Current Wi-Fi Network:\s*(.+)", text)
    return m.group(1).strip() if m else None


def macos_route_get(text: str) -> dict[str, str | None]:
    """``route -n get ADDR`` (macOS): interface, gateway (None when on-link)."""
    kv = dict(_kv_lines(text))
    gw = kv.get("gateway")
    return {"interface": kv.get("interface"), "gateway": gw if gw and not gw.startswith("link#") else None}


def macos_arp(text: str) -> dict[str, str] | None:
    """``arp -n ADDR``: "? (10.0.0.5) at a4:83:e7:1:2:3 on en0 ifscope [ethernet]" or "(incomplete)"."""
    m = re.search(r"\) at (\S+) on (\S+)", text)
    if not m:
        return None
    mac = m.group(1)
    if mac == "(incomplete)":
        return {"mac": None, "state": "incomplete", "interface": m.group(2)}
    return {"mac": mac, "state": "reachable", "interface": m.group(2)}
