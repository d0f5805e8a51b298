"""Windows DNS servers: only those of adapters that are up (dnspython's registry reader also
returns the servers of disconnected adapters, which Windows never asks).

The adapter records come from the real ``ipconfig /all`` samples in tests/data/samples/windows
(provenance in its SOURCES.md), the German one as its cp850 `.oem` twin through the same
subprocess layer (roomprobe.core.oscmd) the live reader uses. The registry lists are what
dnspython would return: the up adapter's servers plus a static server configured on an adapter
the sample shows disconnected (the registry keeps it; ipconfig does not print it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from roomprobe.core import oscmd
from roomprobe.host import dnsconf
from roomprobe.host.osnet import _windows

IPCONFIG = Path(__file__).parent / "data" / "samples" / "windows" / "ipconfig-all"


def reg(*addresses: str) -> list[dict]:
    return [{"address": a, "port": 53, "source": "registry"} for a in addresses]


@pytest.fixture
def ipconfig_records(monkeypatch):
    """adapter_records() fed by ipconfig /all bytes (GetAdaptersAddresses is Windows-only)."""
    def load(name: str, page: int = 437):
        data = (IPCONFIG / name).read_bytes()
        if name.endswith(".txt"):
            data = data.decode("utf-8").replace("\n", "\r\n").encode("cp1252", "replace")
        monkeypatch.setattr(oscmd, "_is_windows", lambda: True)
        monkeypatch.setattr(oscmd, "_windows_oem_page", lambda: page)
        monkeypatch.setattr(oscmd, "run_bytes", lambda cmd, t: oscmd.RawOutput(data, 0))
        monkeypatch.setattr(_windows, "adapters", lambda: {})
        _windows._ipconfig.cache_clear()
        return _windows.adapter_records()
    yield load
    _windows._ipconfig.cache_clear()


def test_german_disconnected_ethernet_server_is_dropped(ipconfig_records):
    records, label = ipconfig_records("de-win11.oem", 850)
    assert label == "ipconfig /all"
    eth = next(r for r in records if r["name"] == "Ethernet-Adapter Ethernet")
    assert eth["up"] is False
    registry = reg("fd00::62b5:8dff:fe35:646d", "10.0.0.53", "192.168.178.1",
                   "2a04:9546:19ba:af01:62b5:8dff:fe35:646d")
    got, problem = dnsconf.windows_up_resolvers(registry, records, label)
    assert problem is None
    assert [r["address"] for r in got] == ["fd00::62b5:8dff:fe35:646d", "192.168.178.1",
                                           "2a04:9546:19ba:af01:62b5:8dff:fe35:646d"]
    assert all(r["source"] == "registry (Drahtlos-LAN-Adapter WLAN)" for r in got)


def test_english_win11_only_the_wifi_server_survives(ipconfig_records):
    records, label = ipconfig_records("en-win11.txt")
    got, problem = dnsconf.windows_up_resolvers(reg("8.8.8.8", "192.168.1.1"), records, label)
    assert [r["address"] for r in got] == ["192.168.1.1"] and problem is None


def test_scoped_ipv6_servers_match_the_registry_spelling(ipconfig_records):
    """ipconfig prints fec0:0:0:ffff::1%1; dnspython gives the bare address."""
    records, label = ipconfig_records("en-win10.txt")
    got, _ = dnsconf.windows_up_resolvers(reg("fec0:0:0:ffff::1", "10.50.13.1", "192.0.2.99"),
                                          records, label)
    assert [r["address"] for r in got] == ["fec0:0:0:ffff::1", "10.50.13.1"]


def test_when_the_connected_adapter_goes_down_its_servers_go_too(ipconfig_records):
    records, label = ipconfig_records("de-win11.oem", 850)
    down = [{**r, "up": False} if r["name"].endswith(" WLAN") else r for r in records]
    got, problem = dnsconf.windows_up_resolvers(reg("192.168.178.1", "10.0.0.53"), down, label)
    assert got == []
    assert "no connected network adapter has a DNS server" in problem and "10.0.0.53" in problem


def test_unknown_adapters_leave_the_registry_list_alone():
    registry = reg("10.0.0.53", "192.168.178.1")
    assert dnsconf.windows_up_resolvers(registry, []) == (registry, None)


def test_registry_without_the_up_servers_falls_back_to_the_adapters_list(ipconfig_records):
    records, label = ipconfig_records("en-win11.txt")
    got, _ = dnsconf.windows_up_resolvers(reg("8.8.8.8"), records, label)
    assert got == [{"address": "192.168.1.1", "port": 53,
                    "source": "ipconfig /all (Wireless LAN adapter Wi-Fi)"}]


def test_unreadable_adapter_data_keeps_the_registry_list(monkeypatch):
    def boom():
        raise OSError("iphlpapi missing")
    monkeypatch.setattr(_windows, "adapter_records", boom)
    registry = reg("10.0.0.53")
    assert dnsconf._windows_filter(registry) == (registry, None)


def test_structured_adapter_data_is_preferred(monkeypatch):
    monkeypatch.setattr(_windows, "adapters", lambda: {
        "WLAN": {"if_type": 71, "up": True, "dns_servers": ["192.168.178.1"]},
        "Ethernet": {"if_type": 6, "up": False, "dns_servers": ["10.0.0.53"]}})
    monkeypatch.setattr(oscmd, "run_bytes", lambda cmd, t: pytest.fail("ipconfig must not run"))
    records, label = _windows.adapter_records()
    assert label == "GetAdaptersAddresses"
    got, _ = dnsconf.windows_up_resolvers(reg("10.0.0.53", "192.168.178.1"), records, label)
    assert got == [{"address": "192.168.178.1", "port": 53, "source": "registry (WLAN)"}]
