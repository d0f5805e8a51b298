"""OS command parsers, on recorded outputs from Windows, macOS and Linux (not run here live)."""

from __future__ import annotations

from pathlib import Path

import pytest

from roomprobe.host.osnet import parsers

DATA = Path(__file__).parent / "data" / "os"


def rec(name: str) -> str:
    return (DATA / name).read_text()


def test_netsh_wlan_connected_and_disconnected():
    assert parsers.netsh_wlan_ssid(rec("netsh_wlan_connected.txt")) == "CorpRooms"
    assert parsers.netsh_wlan_ssid(rec("netsh_wlan_connected.txt"), "Wi-Fi") == "CorpRooms"
    assert parsers.netsh_wlan_ssid(rec("netsh_wlan_connected.txt"), "Wi-Fi 2") is None
    assert parsers.netsh_wlan_ssid(rec("netsh_wlan_disconnected.txt")) is None
    block = parsers.netsh_wlan_interfaces(rec("netsh_wlan_connected.txt"))[0]
    assert block["bssid"] == "70:3a:0e:aa:bb:cc" and block["signal"] == "92%"


def test_iw_link():
    assert parsers.iw_link_ssid(rec("iw_link_connected.txt")) == "Room 4.01 Wi-Fi"
    assert parsers.iw_link_ssid(rec("iw_link_disconnected.txt")) is None


@pytest.mark.parametrize("name, kind", [
    ("Wi-Fi", "wifi"), ("Ethernet 2", "wired"), ("vEthernet (WSL)", "virtual"),
    ("Loopback Pseudo-Interface 1", "loopback"), ("Bluetooth Network Connection", "virtual"),
    ("Local Area Connection* 10", "virtual"), ("Tailscale", "virtual"), ("Foo", "unknown"),
])
def test_windows_kinds(name, kind):
    assert parsers.windows_interface_kind(name) == kind


def test_macos_hardware_ports_and_kinds():
    ports = parsers.networksetup_hardware_ports(rec("networksetup_listallhardwareports.txt"))
    assert ports == {"en0": "Ethernet", "en1": "Wi-Fi", "bridge0": "Thunderbolt Bridge",
                     "en2": "Thunderbolt 1"}
    assert parsers.macos_kind("en0", ports["en0"]) == "wired"
    assert parsers.macos_kind("en1", ports["en1"]) == "wifi"
    assert parsers.macos_kind("bridge0", ports["bridge0"]) == "virtual"
    assert parsers.macos_kind("utun3", None) == "virtual"
    assert parsers.macos_kind("lo0", None) == "loopback"


def test_macos_airport_route_arp():
    assert parsers.macos_airport_network(rec("networksetup_getairportnetwork.txt")) == "Boardroom"
    assert parsers.macos_airport_network(rec("networksetup_getairportnetwork_none.txt")) is None
    assert parsers.macos_route_get(rec("route_get_macos_gateway.txt")) == {
        "interface": "en0", "gateway": "192.168.1.1"}
    assert parsers.macos_route_get(rec("route_get_macos_onlink.txt")) == {
        "interface": "en0", "gateway": None}
    assert parsers.macos_arp(rec("arp_macos.txt"))["mac"] == "a4:83:e7:1:2:3"
    assert parsers.macos_arp(rec("arp_macos_incomplete.txt")) == {
        "mac": None, "state": "incomplete", "interface": "en0"}
