"""macOS structured sources through pyobjc: SystemConfiguration (proxies) and CoreWLAN (Wi-Fi).

pyobjc exists only on macOS (a platform marker in pyproject keeps it off Linux), so the
conversion functions are tested here on plain dicts and fake objects shaped like what pyobjc
returns: SCDynamicStoreCopyProxies gives an NSDictionary whose flags are NSNumber (ints in
Python), ports NSNumber, ExceptionsList an NSArray; CWInterface answers method calls and its
wlanChannel() is a CWChannel. The same dictionary scutil --proxy prints must give the same
source, so the structured path and the command fallback cannot drift apart.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from roomprobe.core import oscmd
from roomprobe.host import wifi
from roomprobe.host.osnet import _macos
from roomprobe.proxy.sources import macos as macproxy

SAMPLES = Path(__file__).parent / "data" / "samples" / "macos" / "scutil-proxy"


def test_sc_dictionary_manual_proxy_with_exceptions():
    d = {"HTTPEnable": 1, "HTTPProxy": "127.0.0.1", "HTTPPort": 8118,
         "HTTPSEnable": 0, "HTTPSProxy": "10.9.9.9", "HTTPSPort": 3128,
         "ExceptionsList": ("*.local", "169.254/16"), "FTPPassive": 1}
    src = macproxy.source_from_dict(d, "SCDynamicStoreCopyProxies")
    assert src.proxies == {"http": "http://127.0.0.1:8118"}  # HTTPS is configured but off
    assert src.bypass == ["*.local", "169.254/16"]
    assert (src.pac_url, src.auto_detect, src.origin) == (None, False, "SCDynamicStoreCopyProxies")


def test_sc_dictionary_pac_and_wpad():
    d = {"ProxyAutoConfigEnable": 1, "ProxyAutoConfigURLString": "http://wpad.example/proxy.pac",
         "ProxyAutoDiscoveryEnable": True}
    src = macproxy.source_from_dict(d, "SCDynamicStoreCopyProxies")
    assert src.pac_url == "http://wpad.example/proxy.pac" and src.auto_detect and not src.proxies
    off = macproxy.source_from_dict({**d, "ProxyAutoConfigEnable": 0,
                                     "ProxyAutoDiscoveryEnable": 0}, "x")
    assert off.pac_url is None and not off.auto_detect and not off.active


def test_sc_dictionary_socks_and_defaults():
    src = macproxy.source_from_dict({"SOCKSEnable": 1, "SOCKSProxy": "10.0.0.9"}, "x")
    assert src.proxies == {"all": "socks5://10.0.0.9:1080"}
    # an enabled proxy without a host is no proxy
    assert macproxy.source_from_dict({"HTTPEnable": 1, "HTTPProxy": ""}, "x").proxies == {}


@pytest.mark.parametrize("sample", sorted(p.name for p in SAMPLES.iterdir()))
def test_structured_and_scutil_paths_agree(sample):
    """scutil --proxy prints the SC dictionary: parsed text and the dict must give one source."""
    text = (SAMPLES / sample).read_text("utf-8")
    from_text = macproxy.parse_scutil(text)
    # rebuild the NSDictionary shape: ints for flags/ports, a tuple for the NSArray
    d: dict = {}
    for key in ("HTTPEnable", "HTTPPort", "HTTPSEnable", "HTTPSPort", "SOCKSEnable", "SOCKSPort",
                "ProxyAutoConfigEnable", "ProxyAutoDiscoveryEnable"):
        m = re.search(rf"^\s*{key}\s*:\s*(\d+)\s*$", text, re.M)
        if m:
            d[key] = int(m.group(1))
    for key in ("HTTPProxy", "HTTPSProxy", "SOCKSProxy", "ProxyAutoConfigURLString"):
        m = re.search(rf"^\s*{key}\s*:\s*(\S+)\s*$", text, re.M)
        if m:
            d[key] = m.group(1)
    if from_text.bypass:
        d["ExceptionsList"] = tuple(from_text.bypass)
    from_dict = macproxy.source_from_dict(d, "scutil --proxy")
    assert (from_dict.proxies, from_dict.bypass, from_dict.pac_url, from_dict.auto_detect) == \
        (from_text.proxies, from_text.bypass, from_text.pac_url, from_text.auto_detect)
    assert from_text.active  # every sample sets something: the comparison is not vacuous


def test_read_prefers_systemconfiguration_and_falls_back_to_scutil(monkeypatch):
    monkeypatch.setattr(macproxy, "_systemconfiguration",
                        lambda: {"HTTPEnable": 1, "HTTPProxy": "10.1.1.1", "HTTPPort": 3128})
    monkeypatch.setattr(oscmd, "run_bytes", lambda cmd, t: pytest.fail("scutil must not run"))
    src = macproxy.read()
    assert src.origin == "SCDynamicStoreCopyProxies" and src.proxies == {"http": "http://10.1.1.1:3128"}

    def boom():
        raise RuntimeError("objc.error")
    text = (SAMPLES / "en-manual-http-exceptions.txt").read_bytes()
    monkeypatch.setattr(macproxy, "_systemconfiguration", boom)
    monkeypatch.setattr(oscmd, "run_bytes", lambda cmd, t: oscmd.RawOutput(text, 0))
    src = macproxy.read()
    assert src.origin == "scutil --proxy" and src.proxies == {"http": "http://127.0.0.1:8118"}


def test_systemconfiguration_without_pyobjc_is_none_here():
    if sys.platform == "darwin":
        pytest.skip("pyobjc is installed on macOS")
    assert macproxy._systemconfiguration() is None


# ---- CoreWLAN ------------------------------------------------------------------------------

class FakeChannel:
    def __init__(self, number, band, width=2):
        self._n, self._b, self._w = number, band, width

    def channelNumber(self):
        return self._n

    def channelBand(self):
        return self._b

    def channelWidth(self):
        return self._w


class FakeCW:
    """The CWInterface methods parse_corewlan calls, returning what pyobjc would."""

    def __init__(self, ssid=None, bssid=None, rssi=0, noise=0, channel=None, rate=0.0, phy=0):
        self._v = dict(ssid=ssid, bssid=bssid, rssiValue=rssi, noiseMeasurement=noise,
                       wlanChannel=channel, transmitRate=rate, activePHYMode=phy)

    def __getattr__(self, name):
        if name in ("_v",):
            raise AttributeError(name)
        if name in self._v:
            return lambda: self._v[name]
        raise AttributeError(name)


def test_corewlan_connected_5ghz():
    cw = FakeCW("Room-5G", "A4:83:E7:01:02:03", -58, -92, FakeChannel(44, 2), 866.0, 5)
    got = wifi.parse_corewlan(cw, "en0")
    assert {k: got[k] for k in ("source", "connected", "ssid", "bssid", "signal_dbm", "noise_dbm",
                                "channel", "band", "tx_mbps", "phy")} == {
        "source": "CoreWLAN", "connected": True, "ssid": "Room-5G", "bssid": "a4:83:e7:01:02:03",
        "signal_dbm": -58.0, "noise_dbm": -92.0, "channel": 44, "band": "5 GHz", "tx_mbps": 866.0,
        "phy": "802.11ac"}


def test_corewlan_hidden_ssid_keeps_the_link_facts():
    """No location permission: ssid()/bssid() are nil, RSSI and channel are still there."""
    got = wifi.parse_corewlan(FakeCW(None, None, -71, -90, FakeChannel(6, 1), 144.0, 4), "en0")
    assert got["connected"] and got["ssid"] is None and got["bssid"] is None
    assert (got["signal_dbm"], got["band"], got["phy"]) == (-71.0, "2.4 GHz", "802.11n")


def test_corewlan_not_associated():
    got = wifi.parse_corewlan(FakeCW(), "en0")
    assert got["connected"] is False and got["signal_dbm"] is None and got["channel"] is None


def test_corewlan_unknown_band_falls_back_to_the_channel_and_odd_methods_are_none():
    class Odd(FakeCW):
        def transmitRate(self):
            raise RuntimeError("NSException")
    got = wifi.parse_corewlan(Odd("x", "not-a-mac", -60, 0, FakeChannel(149, 0), phy=42), "en1")
    assert got["band"] == "5 GHz" and got["bssid"] is None and got["tx_mbps"] is None
    assert got["noise_dbm"] is None and got["phy"] is None


def test_macos_ssid_without_pyobjc_uses_networksetup(monkeypatch):
    if sys.platform == "darwin":
        pytest.skip("pyobjc is installed on macOS")
    _macos._airport.cache_clear()
    monkeypatch.setattr(oscmd, "run_bytes",
                        lambda cmd, t: oscmd.RawOutput(b"Current Wi-Fi Network: Room-1\n", 0))
    assert _macos._corewlan_ssid("en0") is None
    assert _macos.wifi_ssid("en0") == "Room-1"
    _macos._airport.cache_clear()


def test_macos_ssid_prefers_corewlan(monkeypatch):
    import types
    fake = types.SimpleNamespace(CWWiFiClient=types.SimpleNamespace(sharedWiFiClient=lambda: types.SimpleNamespace(
        interfaceWithName_=lambda name: FakeCW("Room-CW", rssi=-50, channel=FakeChannel(36, 2)))))
    monkeypatch.setitem(sys.modules, "CoreWLAN", fake)
    monkeypatch.setattr(oscmd, "run_bytes", lambda cmd, t: pytest.fail("networksetup must not run"))
    assert _macos.wifi_ssid("en0") == "Room-CW"
    assert _macos.wifi_note("en0") is None


# ---- issue 21: every enabled proxy, ExcludeSimpleHostnames, networksetup fallback ----------

def test_socks_is_kept_beside_http_and_https_and_each_scheme_routes_to_its_own():
    from roomprobe.proxy.sources import route

    d = {"HTTPEnable": 1, "HTTPProxy": "10.0.0.1", "HTTPPort": 3128,
         "HTTPSEnable": 1, "HTTPSProxy": "10.0.0.2", "HTTPSPort": 3129,
         "SOCKSEnable": 1, "SOCKSProxy": "10.0.0.3", "SOCKSPort": 1081}
    src = macproxy.source_from_dict(d, "SCDynamicStoreCopyProxies")
    assert src.proxies == {"http": "http://10.0.0.1:3128", "https": "http://10.0.0.2:3129",
                           "all": "socks5://10.0.0.3:1081"}
    assert src.to_evidence()["proxies"]["all"] == "socks5://10.0.0.3:1081"  # reported
    assert route(src, "https://zoom.us/").proxy == "http://10.0.0.2:3129"
    assert route(src, "http://zoom.us/").proxy == "http://10.0.0.1:3128"
    assert route(src, "wss://zoom.us/").proxy == "socks5://10.0.0.3:1081"
    assert src.where("all") == "SOCKSProxy (macos)"


def test_exclude_simple_hostnames_bypasses_dotless_names():
    from roomprobe.proxy.sources import route

    d = {"HTTPSEnable": 1, "HTTPSProxy": "10.0.0.2", "HTTPSPort": 3129,
         "ExcludeSimpleHostnames": 1, "ExceptionsList": ("*.local",)}
    src = macproxy.source_from_dict(d, "SCDynamicStoreCopyProxies")
    assert src.bypass == ["*.local", "<local>"]
    assert route(src, "https://roomcontroller/").via == "bypass"
    assert route(src, "https://zoom.us/").proxy == "http://10.0.0.2:3129"
    # the same through scutil's text (the key as scutil --proxy prints it)
    text = ("<dictionary> {\n  ExcludeSimpleHostnames : 1\n  HTTPSEnable : 1\n"
            "  HTTPSPort : 3129\n  HTTPSProxy : 10.0.0.2\n}\n")
    assert macproxy.parse_scutil(text).bypass == ["<local>"]
    off = macproxy.source_from_dict({**d, "ExcludeSimpleHostnames": 0}, "x")
    assert off.bypass == ["*.local"]


# networksetup(8): "-getwebproxy networkservice: Displays Web proxy (server, port, enabled value)
# info for <networkservice>"; the printed form (no capture of it is in tests/data/samples):
# "Enabled: Yes|No", "Server: HOST", "Port: N", "Authenticated Proxy Enabled: 0|1".
# -listnetworkserviceorder: "(N) Service" lines, "(*) Service" for a disabled one, each followed
# by "(Hardware Port: ..., Device: ...)".
NS_ORDER = ("An asterisk (*) denotes that a network service is disabled.\n"
            "(1) USB 10/100/1000 LAN\n(Hardware Port: USB 10/100/1000 LAN, Device: en7)\n\n"
            "(2) Wi-Fi\n(Hardware Port: Wi-Fi, Device: en0)\n\n"
            "(*) Thunderbolt Bridge\n(Hardware Port: Thunderbolt Bridge, Device: bridge0)\n")


def _ns(enabled: bool, server: str = "", port: int = 0) -> str:
    return (f"Enabled: {'Yes' if enabled else 'No'}\nServer: {server}\nPort: {port}\n"
            "Authenticated Proxy Enabled: 0\n")


def test_networksetup_proxy_answers_parse():
    assert macproxy.parse_networksetup_proxy(_ns(True, "proxy.corp", 8080)) == {
        "Enabled": "Yes", "Server": "proxy.corp", "Port": "8080"}
    assert macproxy.parse_service_order(NS_ORDER) == ["USB 10/100/1000 LAN", "Wi-Fi"]
    src = macproxy.source_from_networksetup(
        {"-getwebproxy": _ns(True, "proxy.corp", 8080), "-getsecurewebproxy": _ns(True, "proxy.corp", 8443),
         "-getsocksfirewallproxy": _ns(True, "socks.corp", 1080)}, "Wi-Fi")
    assert src.proxies == {"http": "http://proxy.corp:8080", "https": "http://proxy.corp:8443",
                           "all": "socks5://socks.corp:1080"}
    assert "Wi-Fi" in src.origin and "fixed proxies only" in src.origin
    off = macproxy.source_from_networksetup({"-getwebproxy": _ns(False, "proxy.corp", 8080)}, "Wi-Fi")
    assert off.proxies == {} and not off.active


def test_read_falls_back_to_networksetup_when_scutil_fails(monkeypatch):
    monkeypatch.setattr(macproxy, "_systemconfiguration", lambda: None)
    answers = {("networksetup", "-listnetworkserviceorder"): NS_ORDER,
               ("networksetup", "-getwebproxy", "Wi-Fi"): _ns(False),
               ("networksetup", "-getsecurewebproxy", "Wi-Fi"): _ns(True, "10.1.1.1", 3128),
               ("networksetup", "-getsocksfirewallproxy", "Wi-Fi"): _ns(False)}

    def fake(cmd, timeout):
        if cmd[0] == "scutil":
            return oscmd.RawOutput(error="scutil: command not found")
        text = answers.get(tuple(cmd), _ns(False))
        return oscmd.RawOutput(text.encode(), 0)

    monkeypatch.setattr(oscmd, "run_bytes", fake)
    src = macproxy.read()
    assert src.error is None and src.proxies == {"https": "http://10.1.1.1:3128"}
    assert "'Wi-Fi'" in src.origin  # the USB LAN service (tried first) has none
    # nothing answers at all: both reasons, no exception
    monkeypatch.setattr(oscmd, "run_bytes", lambda cmd, t: oscmd.RawOutput(error=f"{cmd[0]}: command not found"))
    src = macproxy.read()
    assert "scutil" in src.error and "networksetup" in src.error


# ---- issue 21: PHY mode 7 and BSSIDs without leading zeros ---------------------------------

def test_corewlan_wifi7_phy_and_short_bssid_octets():
    cw = FakeCW("Room-6G", "0:1b:2:3c:4:a5", -50, -95, FakeChannel(37, 3), 2882.0, 7)
    got = wifi.parse_corewlan(cw, "en0")
    assert got["phy"] == "802.11be" and got["band"] == "6 GHz"
    assert got["bssid"] == "00:1b:02:3c:04:a5"
    assert wifi.normalise_bssid("A4:83:E7:01:02:03") == "a4:83:e7:01:02:03"
    assert wifi.normalise_bssid("0:1b:2:3c:4") is None and wifi.normalise_bssid("<redacted>") is None


def test_system_profiler_short_bssid_octets():
    import json

    doc = {"SPAirPortDataType": [{"spairport_airport_interfaces": [{
        "_name": "en0", "spairport_current_network_information": {
            "_name": "Room", "spairport_network_bssid": "a4:83:e7:1:2:3",
            "spairport_signal_noise": "-60 dBm / -92 dBm", "spairport_network_channel": "36 (5GHz, 80MHz)"}}]}]}
    got = wifi.parse_system_profiler(json.dumps(doc), "en0")
    assert got["bssid"] == "a4:83:e7:01:02:03" and got["channel"] == 36
