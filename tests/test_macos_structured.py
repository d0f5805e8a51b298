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
from roomprobe.net import wifi
from roomprobe.net.osnet import _macos
from roomprobe.net.proxysrc import macos as macproxy

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
