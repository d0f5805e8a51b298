"""Every real captured Windows/macOS output in tests/data/samples, with what it plainly says.

The samples are copied from ../shared/samples with their SOURCES.md (provenance: public test
fixtures, notes and issue threads). Non-English Windows samples are fed as their `.oem` twins
(the bytes netsh/ipconfig write, in the OEM code page SOURCES.md names) through the very
subprocess layer the live code uses (roomprobe.core.oscmd), replacing only the byte runner and
the code-page query: decoding, parsing and the live readers (osnet._windows, proxysrc.windows)
are the real ones. A test here fails if a parser matched English words only, decoded with the
wrong page, or lost the output.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from roomprobe.core import oscmd
from roomprobe.host import dnsconf
from roomprobe.host.osnet import _macos, _windows, parsers
from roomprobe.proxy.sources import windows as winproxy
from roomprobe.proxy.sources.macos import parse_scutil

SAMPLES = Path(__file__).parent / "data" / "samples"
SOURCES = (SAMPLES / "SOURCES.md").read_text("utf-8")


def sample(rel: str) -> str:
    return (SAMPLES / rel).read_text("utf-8")


def oem_page(rel: str) -> int:
    """The code page SOURCES.md states for an `.oem` twin ("[OEM bytes ..., cp850]")."""
    line = next(ln for ln in SOURCES.splitlines() if f"`{rel}`" in ln)
    return int(re.search(r"\bcp(\d+)\]", line).group(1))


@pytest.fixture
def windows_console(monkeypatch):
    """Pretend to be a Windows console with a given OEM page; answer commands from a table."""
    table: dict[tuple[str, ...], oscmd.RawOutput] = {}

    def fake_run_bytes(cmd, timeout):
        return table.get(tuple(cmd), oscmd.RawOutput(b"", 1))

    def setup(page: int, answers: dict[tuple[str, ...], bytes]) -> None:
        monkeypatch.setattr(oscmd, "_is_windows", lambda: True)
        monkeypatch.setattr(oscmd, "_windows_oem_page", lambda: page)
        monkeypatch.setattr(oscmd, "run_bytes", fake_run_bytes)
        table.clear()
        table.update({k: oscmd.RawOutput(v, 0) for k, v in answers.items()})
        _windows._netsh_wlan.cache_clear()
        _windows._ipconfig.cache_clear()
        _windows.adapters.cache_clear()

    yield setup
    _windows._netsh_wlan.cache_clear()
    _windows._ipconfig.cache_clear()
    _windows.adapters.cache_clear()


def test_every_sample_file_is_used_here():
    """A new sample without a test here fails: the list below must name every file."""
    here = Path(__file__).read_text("utf-8")
    files = sorted(str(p.relative_to(SAMPLES)) for p in SAMPLES.rglob("*") if p.is_file()
                   and p.name not in ("README.md", "SOURCES.md"))
    assert len(files) == 35
    missing = [f for f in files if Path(f).stem not in here]
    assert missing == []
    assert all(f"`{f}`" in SOURCES for f in files)


# ---- netsh wlan show interfaces ---------------------------------------------------------

WLAN = "windows/netsh-wlan-show-interfaces/"
WLAN_EXPECT = {
    # stem: (interface name, SSID, BSSID, signal, state as printed)
    "de-win11-connected": ("WLAN", "SSID-1", "fe:dc:ba:09:87:02", "43%", "Verbunden"),
    "es-win11-connected": ("Wi-Fi", "SSID-1", "fe:dc:ba:09:87:02", "81%", "conectado"),
    "fr-win11-connected": ("Wi-Fi", "SSID-1", "fe:dc:ba:09:87:02", "80%", "connecté"),
    "it-connected": ("Wi-Fi", "SSID-1", "fe:dc:ba:09:87:02", "85%", "connessa"),
    "en-win11-connected-band": ("Wi-Fi", "SomeSSID", "xx:xx:xx:xx:xx:xx", "53%", "connected"),
    "en-disconnected": ("WiFi", None, None, None, None),
}


@pytest.mark.parametrize("stem", sorted(WLAN_EXPECT))
def test_netsh_wlan_text_every_language(stem):
    name, ssid, bssid, signal, state = WLAN_EXPECT[stem]
    blocks = parsers.netsh_wlan_interfaces(sample(WLAN + stem + ".txt"))
    assert len(blocks) == 1
    b = blocks[0]
    assert (b["name"], b["ssid"], b["bssid"], b["signal"], b["state"]) == (name, ssid, bssid, signal, state)
    assert parsers.netsh_wlan_ssid(sample(WLAN + stem + ".txt"), name) == ssid


@pytest.mark.parametrize("stem", ["de-win11-connected", "es-win11-connected",
                                  "fr-win11-connected", "it-connected"])
def test_netsh_wlan_oem_bytes_through_the_live_reader(windows_console, stem):
    rel = WLAN + stem + ".oem"
    windows_console(oem_page(rel), {("netsh", "wlan", "show", "interfaces"): (SAMPLES / rel).read_bytes()})
    name, ssid = WLAN_EXPECT[stem][:2]
    assert _windows.wifi_ssid(name) == ssid
    assert _windows.wifi_note(name) is None
    # and the decoded text is the published text (no mojibake, CRLF gone)
    assert _windows._netsh_wlan().text.strip() == sample(WLAN + stem + ".txt").replace(
        "\u2019", "'").strip()


def test_oem_bytes_decoded_with_the_ansi_page_lose_the_ssid_state():
    """The bug the layer fixes: cp1252 (ANSI) decoding of cp850 bytes garbles the words."""
    raw = (SAMPLES / WLAN / "de-win11-connected.oem").read_bytes()
    assert "Übertragungsrate" not in raw.decode("cp1252", "replace")
    assert "Übertragungsrate" in oscmd.decode(raw, "cp850")


def test_netsh_wlan_location_permission_is_said(windows_console):
    # Not a sample (none was found): only the settings URI netsh names in every language.
    windows_console(437, {("netsh", "wlan", "show", "interfaces"):
                          b"...\r\nms-settings:privacy-location\r\n"})
    assert _windows.wifi_ssid("Wi-Fi") is None
    assert "location permission" in _windows.wifi_note("Wi-Fi")


def test_netsh_missing_is_a_note_not_a_crash(windows_console):
    windows_console(850, {})
    assert _windows.wifi_ssid("WLAN") is None
    assert "unreadable" in _windows.wifi_note("WLAN")


# ---- netsh winhttp show proxy -----------------------------------------------------------

HTTP = "windows/netsh-winhttp-show-proxy/"
JA_BYPASS_FIRST = ["jp0490sw*", "10.*.*.*", "172.16.*.*"]


def test_netsh_winhttp_english():
    direct = winproxy.parse_netsh_winhttp(sample(HTTP + "en-direct.txt"))
    assert not direct.active and direct.error is None
    prox = winproxy.parse_netsh_winhttp(sample(HTTP + "en-proxy-bypass-none.txt"))
    assert prox.proxies == {"all": "http://89.42.198.79:47570"} and prox.bypass == []


@pytest.mark.parametrize("stem, proxies, bypass_head, bypass_len", [
    ("ja-direct", {}, [], 0),
    ("ja-proxy-nobypass", {"all": "http://1.2.3.4:5678"}, [], 0),
    ("ja-proxy-bypass-list", {"all": "http://webproxy.mew.co.jp:8080"}, JA_BYPASS_FIRST, 26),
])
def test_netsh_winhttp_japanese_oem_through_the_live_reader(windows_console, stem, proxies,
                                                            bypass_head, bypass_len):
    rel = HTTP + stem + ".oem"
    assert oem_page(rel) == 932
    windows_console(oem_page(rel), {("netsh", "winhttp", "show", "proxy"): (SAMPLES / rel).read_bytes()})
    src = winproxy.read_winhttp()  # no winreg here: reg query fails (exit 1), netsh answers
    assert src.error is None
    assert src.proxies == proxies
    assert src.bypass[:len(bypass_head)] == bypass_head and len(src.bypass) == bypass_len
    if bypass_len:
        assert src.bypass[-1] == "*.intra.panasonic.cn"
    # the UTF-8 text parses the same
    text_src = winproxy.parse_netsh_winhttp(sample(HTTP + stem + ".txt"))
    assert (text_src.proxies, text_src.bypass) == (src.proxies, src.bypass)


def test_netsh_winhttp_garbage_is_an_error_not_direct():
    assert winproxy.parse_netsh_winhttp("").error
    assert winproxy.parse_netsh_winhttp("Der folgende Befehl wurde nicht gefunden: winhttp.").error


# ---- reg query Internet Settings ---------------------------------------------------------

def test_reg_query_internet_settings_partial():
    values = winproxy.parse_reg_query(sample("windows/reg-query-internet-settings/en-win10-noproxy-partial.txt"))
    assert values["ProxyEnable"] == "0" and values["ProxyOverride"] == "local"
    src = winproxy.wininet_source(values)
    assert not src.active and src.proxies == {} and src.bypass == ["local"]


# ---- ipconfig /all and route print -------------------------------------------------------

def _by_name(adapters, name):
    a = parsers.ipconfig_adapter(adapters, name)
    assert a is not None, name
    return a


def test_ipconfig_german_oem_bytes(windows_console):
    rel = "windows/ipconfig-all/de-win11.oem"
    windows_console(oem_page(rel), {("ipconfig", "/all"): (SAMPLES / rel).read_bytes()})
    adapters = _windows._ipconfig()
    wlan = _by_name(adapters, "WLAN")
    assert wlan["dns_suffix"] == "fritz.box" and not wlan["disconnected"]
    assert wlan["mac"] == "D0-39-57-78-A7-C3" and "192.168.178.23" in wlan["addresses"]
    assert _windows.interface_kind("WLAN") == "wifi"
    assert _windows.interface_kind("Ethernet") == "wired"
    assert _by_name(adapters, "Ethernet")["disconnected"] is True
    assert _windows.interface_kind("LAN-Verbindung* 3") == "virtual"  # Wi-Fi Direct
    assert _windows.interface_kind("vEthernet (WSL (Hyper-V firewall))") == "virtual"
    assert _windows.interface_kind("Bluetooth-Netzwerkverbindung") == "virtual"
    assert _windows.dns_suffix() == "fritz.box"
    text = parsers.ipconfig_all(sample("windows/ipconfig-all/de-win11.txt"))
    assert text == adapters


def test_ipconfig_english_win10_usb_ethernet_and_tunnel():
    adapters = parsers.ipconfig_all(sample("windows/ipconfig-all/en-win10.txt"))
    assert len(adapters) == 3
    ts = _by_name(adapters, "Tailscale")
    assert ts["mac"] is None and ts["dns_suffix"] == "tailff123.ts.net" and "100.115.71.66" in ts["addresses"]
    eth = _by_name(adapters, "Ethernet 2")
    assert eth["description"].startswith("ASIX AX88179") and eth["addresses"][-1] == "10.50.13.132"
    assert parsers.windows_interface_kind("Ethernet 2", eth["description"]) == "wired"
    assert parsers.windows_interface_kind("Tailscale", ts["description"]) == "virtual"
    bt = _by_name(adapters, "Bluetooth Network Connection")
    assert bt["disconnected"] and parsers.windows_interface_kind(
        "Bluetooth Network Connection", bt["description"]) == "virtual"


def test_ipconfig_english_win11_wifi_and_virtuals():
    adapters = parsers.ipconfig_all(sample("windows/ipconfig-all/en-win11.txt"))
    wifi = _by_name(adapters, "Wi-Fi")
    assert wifi["description"] == "Intel(R) Wi-Fi 6 AX200 160MHz" and "192.168.1.169" in wifi["addresses"]
    kinds = {a["header"]: parsers.windows_interface_kind(str(a["header"]).rsplit(" ", 1)[-1],
                                                        str(a["description"])) for a in adapters}
    assert kinds["Wireless LAN adapter Wi-Fi"] == "wifi"
    assert kinds["Wireless LAN adapter Local Area Connection* 1"] == "virtual"
    assert kinds["Unknown adapter Local Area Connection"] == "virtual"  # TAP-NordVPN
    assert kinds["Ethernet adapter VMware Network Adapter VMnet8"] == "virtual"
    assert kinds["Ethernet adapter Ethernet 2"] == "wired"  # Realtek PCIe 2.5GbE
    assert _by_name(adapters, "Ethernet")["disconnected"]


def test_route_print_interfaces_and_default_route():
    text = sample("windows/route-print/en-win10.txt")
    ifaces = parsers.route_print_interfaces(text)
    assert ifaces[0] == {"index": "8", "mac": "00:ff:58:60:5f:61", "description": "TAP-Windows Adapter V9"}
    loop = next(i for i in ifaces if i["index"] == "1")
    assert loop["mac"] is None and loop["description"] == "Software Loopback Interface 1"
    assert parsers.windows_interface_kind("", loop["description"]) == "loopback"
    assert parsers.windows_interface_kind("", ifaces[0]["description"]) == "virtual"
    assert parsers.route_print_default(text) == [
        {"gateway": "192.168.31.1", "interface": "192.168.31.221", "metric": "30"}]


# ---- macOS --------------------------------------------------------------------------------

MAC = "macos/"


def test_macos_ssid_hidden_by_location_permission(monkeypatch):
    airport = sample(MAC + "networksetup-getairportnetwork/en-macos15-connected-not-associated.txt")
    summary = sample(MAC + "ipconfig-getsummary/en-macos15.6-ssid-redacted-partial.txt")
    assert parsers.macos_airport_network(airport) is None
    s = parsers.macos_getsummary(summary)
    assert s == {"ssid": None, "redacted": True, "wifi": True, "link_active": True}
    assert parsers.macos_wifi_note(airport, summary) == parsers.MACOS_SSID_HIDDEN
    # the live reader, with the commands answered from the samples
    answers = {("networksetup", "-getairportnetwork", "en0"): airport.encode(),
               ("ipconfig", "getsummary", "en0"): summary.encode()}
    monkeypatch.setattr(oscmd, "run_bytes", lambda cmd, t: oscmd.RawOutput(answers[tuple(cmd)], 0))
    _macos._airport.cache_clear()
    try:
        assert _macos.wifi_ssid("en0") is None
        assert _macos.wifi_note("en0").startswith("SSID hidden by macOS (location permission)")
    finally:
        _macos._airport.cache_clear()
    # really not connected: no summary SSID => no note (plain "no Wi-Fi")
    assert parsers.macos_wifi_note(airport, "<dictionary> {\n  LinkStatusActive : FALSE\n}") is None


def test_macos_hardware_ports_macbook():
    ports = parsers.networksetup_hardware_ports(
        sample(MAC + "networksetup-listallhardwareports/en-macbook-iphone-usb-bt-pan.txt"))
    kinds = {dev: parsers.macos_kind(dev, port) for dev, port in ports.items()}
    assert kinds == {"en0": "wifi", "en5": "virtual", "en3": "virtual", "en1": "wired",
                     "en2": "wired", "bridge0": "virtual"}


def test_macos_hardware_ports_usb_ethernet_chip_name():
    ports = parsers.networksetup_hardware_ports(
        sample(MAC + "networksetup-listallhardwareports/en-macos12-usb-ethernet-partial.txt"))
    assert ports["en8"] == "AX88179A"
    assert parsers.macos_kind("en8", ports["en8"]) == "wired"
    assert parsers.macos_kind("en4", ports["en4"]) == "wired"
    assert parsers.macos_kind("en0", ports["en0"]) == "wifi"


def test_macos_german_wlan_port_is_wifi_not_wired():
    # No German capture exists (SOURCES.md "Not found"); the port name alone is the case.
    assert parsers.macos_kind("en0", "WLAN") == "wifi"
    assert parsers.macos_kind("en7", "USB 10/100/1000 LAN") == "wired"


@pytest.mark.parametrize("stem, expected", [
    ("en-full-two-interfaces", [("192.168.1.54", "en7"), ("192.168.1.52", "en7")]),
    ("en-head-dnsmasq-truncated", [("127.0.0.1", None)]),
    ("en-ppp-supplemental-partial-edited", [("10.0.2.1", "en0")]),
    ("en-resolver1-ipv6-linklocal-partial", [("fe80::8e3b:adff:fead:7bf6%en0", "en0"),
                                             ("192.168.1.1", "en0")]),
    # only scoped (utun0) resolvers: none is general (test_macos_scoped_only_resolvers_...)
    ("en-vpn-utun-scoped-only-macos10.13", []),
])
def test_macos_scutil_dns(stem, expected):
    found = dnsconf.general_nameservers(dnsconf.parse_scutil_dns(sample(MAC + "scutil-dns/" + stem + ".txt")))
    assert [(f["address"], (re.search(r"\((\w+)\)$", f["source"]) or [None, None])[1])
            for f in found] == expected


def test_macos_scutil_proxy_samples():
    man = parse_scutil(sample(MAC + "scutil-proxy/en-manual-http-exceptions.txt"))
    assert man.proxies == {"http": "http://127.0.0.1:8118"}
    assert man.bypass == ["*.local", "169.254/16"] and man.pac_url is None
    pac = parse_scutil(sample(MAC + "scutil-proxy/en-pac-macos10.15.txt"))
    assert pac.pac_url == "http://wpad.company.com/wpad.dat" and pac.proxies == {} and pac.bypass == []


def test_wpad_domain_on_windows_is_the_connection_suffix(windows_console, monkeypatch):
    import sys

    from roomprobe.proxy.sources import pac

    rel = "windows/ipconfig-all/de-win11.oem"
    windows_console(oem_page(rel), {("ipconfig", "/all"): (SAMPLES / rel).read_bytes()})
    monkeypatch.setattr(sys, "platform", "win32")
    assert pac.search_domain() == "fritz.box"


def _darwin_scutil(monkeypatch, text: str) -> None:
    """Pretend to be a Mac whose ``scutil --dns`` prints ``text`` (through oscmd, as live)."""
    import sys

    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(oscmd, "run_bytes", lambda cmd, t: oscmd.RawOutput(text.encode(), 0)
                        if cmd == ["scutil", "--dns"] else oscmd.RawOutput(b"", 1))


def test_macos_scoped_only_resolvers_are_a_finding_not_a_pass(monkeypatch):
    """Tunnelblick's capture: resolver #1 has no nameserver, 8.8.8.8/8.8.4.4 are scoped to utun0.
    macOS does not ask scoped servers for ordinary lookups, so querying them would PASS a Mac on
    which zoom.us does not resolve: no resolver is returned and the dns probe fails with why."""
    from probes import dns as dnsprobe
    from roomprobe.core.probe import Severity, Status

    _darwin_scutil(monkeypatch, sample(MAC + "scutil-dns/en-vpn-utun-scoped-only-macos10.13.txt"))
    resolvers, why = dnsconf.system_resolvers()
    assert resolvers == []
    assert "no nameserver" in why and "8.8.8.8 on utun0" in why and "ordinary lookups" in why
    findings = dnsprobe.analyse(resolvers, [], [], {}, ["zoom.us"], dnsprobe.Options(), why)
    assert [(f.id, f.severity) for f in findings] == [("dns-scoped-only", Severity.FAIL)]
    assert "VPN" in findings[0].hint
    ev = {"queries": [], "os": [], "allow_networks": []}
    assert dnsprobe.verdict(ev, findings, ["zoom.us"], resolvers, True).status == Status.FAIL


def test_macos_unreachable_default_resolver_with_scoped_ones_is_the_same_finding(monkeypatch):
    """The modern format (``reach : 0x00000000 (Not Reachable)``): the default resolver lists a
    server macOS cannot reach, while the scoped section has reachable ones: ordinary lookups fail
    as well. Built from the two-interface capture by marking resolver #1 Not Reachable."""
    text = sample(MAC + "scutil-dns/en-full-two-interfaces.txt")
    first = "  reach    : 0x00020002 (Reachable,Directly Reachable Address)\n"
    assert text.count(first) == 3
    text = text.replace(first, "  reach    : 0x00000000 (Not Reachable)\n", 1)
    _darwin_scutil(monkeypatch, text)
    resolvers, why = dnsconf.system_resolvers()
    assert resolvers == [] and "Not Reachable" in why and dnsconf.scoped_only(why)
    # the capture as it is: a reachable default resolver, used, no problem
    _darwin_scutil(monkeypatch, sample(MAC + "scutil-dns/en-full-two-interfaces.txt"))
    resolvers, why = dnsconf.system_resolvers()
    assert [r["address"] for r in resolvers] == ["192.168.1.54", "192.168.1.52"] and why is None
