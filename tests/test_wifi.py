"""Wi-Fi facts: parsers on real OS outputs, the WLAN API struct, the probe's verdicts and roaming.

The parsers read recorded text (tests/data/os, see WIFI_SOURCES.md; tests/data/samples for
netsh in five languages). The probe runs with the OS layer replaced (this machine has no Wi-Fi),
so each verdict is driven by facts a real OS printed.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from reportkit import as_report
from roomprobe.probes import wifi as probe

from roomprobe.core.errors import UsageError
from roomprobe.core.probe import Context, Status, Targets
from roomprobe.core.settings import CheckSettings
from roomprobe.host import wifi

OS = Path(__file__).parent / "data" / "os"
WLAN = Path(__file__).parent / "data" / "samples" / "windows" / "netsh-wlan-show-interfaces"


def rec(name: str) -> str:
    return (OS / name).read_text("utf-8")


def test_band_and_channel_from_frequency():
    assert wifi.band_channel(2412) == ("2.4 GHz", 1) and wifi.band_channel(2447) == ("2.4 GHz", 8)
    assert wifi.band_channel(2484) == ("2.4 GHz", 14) and wifi.band_channel(5180) == ("5 GHz", 36)
    assert wifi.band_channel(5260) == ("5 GHz", 52) and wifi.band_channel(5955) == ("6 GHz", 1)
    assert wifi.band_channel(None) == (None, None) and wifi.band_channel(900) == (None, None)
    assert wifi.band_from_text("2,4 GHz") == "2.4 GHz" and wifi.band_from_text("6 (2GHz, 20MHz)") == "2.4 GHz"
    assert wifi.band_from_text(None, 11) == "2.4 GHz" and wifi.band_from_text(None, 116) == "5 GHz"
    assert wifi.quality_to_dbm(100) == -50 and wifi.quality_to_dbm(0) == -100 and wifi.quality_to_dbm(60) == -70


def test_iw_link_5ghz_and_2ghz_and_disconnected():
    f = wifi.parse_iw_link(rec("iw_link_connected.txt"), "wlp0s20f3")
    assert f["connected"] and f["bssid"] == "70:3a:0e:aa:bb:cc" and f["ssid"] == "Room 4.01 Wi-Fi"
    assert (f["freq_mhz"], f["band"], f["channel"], f["signal_dbm"]) == (5180, "5 GHz", 36, -51)
    assert (f["tx_mbps"], f["rx_mbps"], f["phy"]) == (780.0, 866.7, "802.11ac")
    g = wifi.parse_iw_link(rec("iw_link_2ghz.txt"), "wlan0")
    assert (g["band"], g["channel"], g["signal_dbm"], g["tx_mbps"]) == ("2.4 GHz", 8, -37, 48.0)
    d = wifi.parse_iw_link(rec("iw_link_disconnected.txt"), "wlan0")
    assert d["connected"] is False and d["signal_dbm"] is None
    assert wifi.parse_iw_link("command failed: No such device (-19)\n")["error"]


def test_iw_station_dump_prefers_averages_and_distrusts_a_bogus_last_signal():
    st = wifi.parse_iw_station(rec("iw_station_dump_vht.txt"))
    assert st["bssid"] == "04:f0:21:32:3f:d2" and st["signal_dbm"] == -60 and st["signal_avg_dbm"] == -59
    assert st["tx_mbps"] == 650.0 and st["tx_retries"] == 976 and st["phy"] == "802.11ac"
    assert wifi.station_signal(st) == -59
    eht = wifi.parse_iw_station(rec("iw_station_dump_ath12k_eht.txt"))
    assert eht["signal_dbm"] == -95 and eht["beacon_signal_avg_dbm"] == -20 and eht["phy"] == "802.11be"
    assert wifi.station_signal(eht) == -20  # the driver bug's -95 is not believed
    assert wifi.parse_iw_station("") == {}


def test_proc_net_wireless_noise_unknown_is_none():
    p = wifi.parse_proc_wireless(rec("proc_net_wireless.txt"), "wlan0")
    assert p == {"link": 49.0, "level_dbm": -61.0, "noise_dbm": None}
    assert wifi.parse_proc_wireless(rec("proc_net_wireless.txt"), "wlan1") == {}
    noisy = rec("proc_net_wireless.txt").replace("-256", "-92.")
    assert wifi.parse_proc_wireless(noisy, "wlan0")["noise_dbm"] == -92.0


def test_merge_linux_uses_the_station_entry_of_the_same_ap():
    link = wifi.parse_iw_link(rec("iw_link_connected.txt"), "wlp0s20f3")
    other = wifi.parse_iw_station(rec("iw_station_dump_vht.txt"))  # another BSSID: not merged
    m = wifi.merge_linux(link, other, {"noise_dbm": -92.0, "level_dbm": -50.0, "link": 60})
    assert m["signal_dbm"] == -51 and m["noise_dbm"] == -92.0 and m["tx_mbps"] == 780.0
    same = dict(other, bssid=link["bssid"])
    assert wifi.merge_linux(link, same, {})["signal_dbm"] == -59


@pytest.mark.parametrize("stem, band, channel, rx, tx, pct, bssid", [
    ("en-win11-connected-band", "5 GHz", 36, 72, 144, 53, "xx:xx:xx:xx:xx:xx"),
    ("de-win11-connected", "5 GHz", 116, 300, 300, 43, "fe:dc:ba:09:87:02"),
    ("es-win11-connected", "2.4 GHz", 11, 69, 206, 81, "fe:dc:ba:09:87:02"),
    ("fr-win11-connected", "2.4 GHz", 11, 103, 206, 80, "fe:dc:ba:09:87:02"),
    ("it-connected", "2.4 GHz", 4, 130, 130, 85, "fe:dc:ba:09:87:02"),  # no band line: from channel
])
def test_netsh_by_layout_in_every_language(stem, band, channel, rx, tx, pct, bssid):
    f = wifi.parse_netsh((WLAN / f"{stem}.txt").read_text("utf-8"))
    assert f is not None and f["connected"] and f["ssid"]
    assert (f["band"], f["channel"], f["rx_mbps"], f["tx_mbps"], f["signal_pct"]) == (band, channel, rx, tx, pct)
    assert f["bssid"] == bssid and f["signal_estimated"] and f["signal_dbm"] == wifi.quality_to_dbm(pct)
    assert f["phy"] and f["phy"].startswith("802.11")


def test_netsh_disconnected_and_other_interface():
    text = (WLAN / "en-disconnected.txt").read_text("utf-8")
    f = wifi.parse_netsh(text, "WiFi")
    assert f is not None and f["connected"] is False and f["signal_dbm"] is None
    assert wifi.parse_netsh(text, "Ethernet") is None


def _conn_bytes(state=1, ssid=b"CorpRooms", bssid=b"\x70\x3a\x0e\xaa\xbb\xcc", phy=10, quality=62,
                rx=866_700, tx=780_000):
    profile = "CorpRooms".encode("utf-16-le").ljust(512, b"\0")
    return wifi.WLAN_CONN.pack(state, 0, profile, len(ssid), ssid.ljust(32, b"\0"), 1, bssid, phy, 0,
                               quality, rx, tx, 1, 0, 7, 4)


def test_wlan_connection_attributes_from_bytes():
    assert wifi.WLAN_CONN.size == 604  # sizeof(WLAN_CONNECTION_ATTRIBUTES) on Windows
    f = wifi.parse_wlan_connection(_conn_bytes(), "Wi-Fi")
    assert f["connected"] and f["ssid"] == "CorpRooms" and f["bssid"] == "70:3a:0e:aa:bb:cc"
    assert (f["phy"], f["signal_pct"], f["signal_dbm"], f["rx_mbps"], f["tx_mbps"]) == \
        ("802.11ax", 62, -69, 866.7, 780.0)
    assert wifi.parse_wlan_connection(_conn_bytes(state=4))["connected"] is False
    assert wifi.parse_wlan_connection(b"\0" * 100)["error"]


def test_system_profiler_json():
    f = wifi.parse_system_profiler(rec("system_profiler_airport.json"), "en0")
    assert f["connected"] and f["ssid"] is None  # "<redacted>" by macOS
    assert (f["signal_dbm"], f["noise_dbm"], f["channel"], f["band"], f["tx_mbps"], f["phy"]) == \
        (-51, -90, 40, "5 GHz", 1297.0, "802.11ax")
    assert wifi.parse_system_profiler(rec("system_profiler_airport.json"), "en1")["connected"] is False
    assert wifi.parse_system_profiler("[[[", "en0")["error"]


# ---------------------------------------------------------------- the probe

IFACES = [
    {"name": "eth0", "kind": "wired", "up": True, "addresses": [{"address": "10.0.0.5"}]},
    {"name": "wlan0", "kind": "wifi", "up": True, "addresses": [{"address": "10.1.0.5"}]},
]


def ctx(tmp_path: Path, **opts) -> Context:
    from roomprobe.fleet.history import Reader

    return Context(Targets(), probe.Options(**opts), deadline=1e12, privileged=False,
                   history=Reader(tmp_path / "h.sqlite3"))


@pytest.fixture
def host(monkeypatch):
    state = {"gateway": "wlan0", "facts": wifi.parse_iw_link(rec("iw_link_connected.txt"), "wlan0")}
    monkeypatch.setattr(probe.osnet, "interfaces", lambda: IFACES)
    monkeypatch.setattr(probe.osnet, "default_gateways",
                        lambda: [{"gateway": "10.1.0.1", "interface": state["gateway"]}])
    monkeypatch.setattr(wifi, "read", lambda name: dict(state["facts"], interface=name))
    return state


def test_wired_room_is_skipped_with_the_reason(host, tmp_path):
    host["gateway"] = "eth0"
    r = probe.run(ctx(tmp_path))
    assert r.status == Status.SKIP and "another interface" in r.summary


def test_good_5ghz_signal_passes_with_proof(host, tmp_path):
    r = probe.run(ctx(tmp_path))
    assert r.status == Status.PASS and r.evidence["proof"]["wlan0"]["signal_dbm"] == -51
    assert "-51 dBm" in r.summary and "5 GHz ch 36" in r.summary


@pytest.mark.parametrize("dbm, status", [(-72, Status.WARN), (-83, Status.FAIL), (-69, Status.PASS)])
def test_weak_signal_levels(host, tmp_path, dbm, status):
    host["facts"] = dict(host["facts"], signal_dbm=dbm)
    r = probe.run(ctx(tmp_path))
    assert r.status == status
    assert ("wifi-signal-weak" in {f.id for f in r.findings}) == (status != Status.PASS)


def test_2ghz_band_warns(host, tmp_path):
    host["facts"] = wifi.parse_iw_link(rec("iw_link_2ghz.txt"), "wlan0")
    r = probe.run(ctx(tmp_path))
    assert r.status == Status.WARN and r.reason == "wifi-band-2ghz"


def test_unreadable_signal_is_no_verdict(host, tmp_path):
    facts = wifi.empty("wlan0", "iw")
    facts["error"] = "iw: command not found; install 'iw' (Debian/Ubuntu: apt install iw)"
    host["facts"] = facts
    r = probe.run(ctx(tmp_path))
    assert r.status == Status.ERROR and "apt install iw" in r.summary


def _store(db: Path, bssid: str) -> None:
    from roomprobe.fleet import history

    conn = history.connect(db)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    report = {"started_at": now, "status": "pass", "complete": True, "duration_s": 1,
              "findings": [], "targets": {}, "probes": [
                  {"id": "wifi", "evidence": {"links": [{"interface": "wlan0", "bssid": bssid}]}}]}
    history.record(conn, as_report(report), 0)
    conn.close()


def test_roaming_from_history(host, tmp_path):
    db = tmp_path / "h.sqlite3"
    assert probe.run(ctx(tmp_path)).status == Status.PASS  # no history yet
    _store(db, "70:3a:0e:aa:bb:cc")
    r = probe.run(ctx(tmp_path))
    assert r.status == Status.PASS and not r.findings  # same AP as last time
    _store(db, "70:3a:0e:00:00:01")
    r = probe.run(ctx(tmp_path))
    assert r.status == Status.PASS and [f.id for f in r.findings] == ["wifi-roamed"]
    _store(db, "70:3a:0e:00:00:02")
    r = probe.run(ctx(tmp_path))
    assert r.status == Status.WARN and r.reason == "wifi-roaming"
    assert len(r.findings[0].evidence["bssids"]) == 3


def test_damaged_history_is_ignored_not_fatal(host, tmp_path):
    (tmp_path / "h.sqlite3").write_bytes(b"not a database at all")
    assert probe.run(ctx(tmp_path)).status == Status.PASS


def test_the_check_hands_wifi_the_history_it_records_into(monkeypatch, tmp_path):
    """The reader the check gives the probes reads the database after_run writes (the flag,
    else $ROOMPROBE_HISTORY_DB, else the platform default), so roaming compares like with like."""
    from roomprobe.commands.check import _history_reader
    from roomprobe.fleet import after_run, history

    monkeypatch.delenv(history.ENV_DB, raising=False)
    assert _history_reader(CheckSettings()).path == after_run.db_path(CheckSettings()) \
        == history.default_db_path()
    monkeypatch.setenv(history.ENV_DB, str(tmp_path / "x.db"))
    assert _history_reader(CheckSettings()).path == tmp_path / "x.db"
    c = CheckSettings(history_db=str(tmp_path / "h.sqlite3"))
    assert _history_reader(c).path == after_run.db_path(c) == tmp_path / "h.sqlite3"


def test_a_missing_or_empty_history_is_none_not_an_empty_list(tmp_path):
    from roomprobe.fleet.history import Reader

    assert probe.earlier_bssids(None, "wlan0", 10) is None
    assert probe.earlier_bssids(Reader(tmp_path / "none.sqlite3"), "wlan0", 10) is None
    _store(tmp_path / "h.sqlite3", "70:3a:0e:aa:bb:cc")
    assert probe.earlier_bssids(Reader(tmp_path / "h.sqlite3"), "wlan0", 0) is None
    assert probe.earlier_bssids(Reader(tmp_path / "h.sqlite3"), "wlan0", 10) == ["70:3a:0e:aa:bb:cc"]


def test_options_validated():
    with pytest.raises(UsageError):
        probe.validate(probe.Options(rssi_warn_dbm=-80, rssi_fail_dbm=-70))
    with pytest.raises(UsageError):
        probe.validate(probe.Options(roam_warn=1))
    probe.validate(probe.Options())


def test_in_use():
    assert probe.in_use(IFACES, {"wlan0"}) == (["wlan0"], [])
    assert probe.in_use(IFACES, {"eth0"}) == ([], ["wlan0"])
    assert probe.in_use(IFACES, set()) == (["wlan0"], [])
    link_local = [dict(IFACES[1], addresses=[{"address": "169.254.3.4"}])]
    assert probe.in_use(link_local, set()) == ([], [])


def test_ticket_evidence_row_shows_the_wifi_facts():
    from roomprobe.report.ticket import wifi_line

    facts = wifi.merge_linux(wifi.parse_iw_link(rec("iw_link_connected.txt"), "wlan0"), {},
                             {"noise_dbm": -92.0})
    line = wifi_line(as_report({"probes": [{"id": "wifi", "status": "pass", "evidence": {"links": [facts]}}]}))
    assert line == ("wlan0: -51 dBm, noise -92 dBm, 5 GHz channel 36, AP 70:3a:0e:aa:bb:cc, "
                    "780 Mbit/s 802.11ac")
    skipped = as_report({"probes": [{"id": "wifi", "status": "skip", "summary": "no Wi-Fi interface is up"}]})
    assert wifi_line(skipped).startswith("not in use")
    assert wifi_line(as_report({"probes": []})) is None
    odd = as_report({"probes": [{"id": "wifi", "status": "warn", "evidence": {"links": ["x"]}}]})
    assert wifi_line(odd) is None


# ---- Windows WLAN API logic (roomprobe.host.wlanapi), the calls faked -------------------------

def test_wlan_bss_entry_layout_is_the_sdks():
    """WLAN_BSS_ENTRY as declared in wlanapi.h (field order quoted in MSDN's ns-wlanapi-
    wlan_bss_entry), natural alignment, no pointers, so x86 and x64 agree: 360 bytes."""
    from roomprobe.host import wlanapi

    e = wlanapi.WlanBssEntry
    offsets = {name: getattr(e, name).offset for name, _ in e._fields_}
    assert offsets == {"ssid_length": 0, "ssid": 4, "uPhyId": 36, "dot11Bssid": 40, "dot11BssType": 48,
                       "dot11BssPhyType": 52, "lRssi": 56, "uLinkQuality": 60, "bInRegDomain": 64,
                       "usBeaconPeriod": 66, "ullTimestamp": 72, "ullHostTimestamp": 80,
                       "usCapabilityInformation": 88, "ulChCenterFrequency": 92, "uRateSetLength": 96,
                       "usRateSet": 100, "ulIeOffset": 352, "ulIeSize": 356}
    assert wlanapi.BSS_ENTRY_SIZE == 360


def _bss(bssid: bytes, khz: int, rssi: int = -55, phy: int = 10) -> bytes:
    """One WLAN_BSS_ENTRY packed by hand with struct (not with the ctypes class under test)."""
    import struct

    return struct.pack("<I32sI6s2xIIiIBxH4xQQH2xII252sII", 4, b"Room".ljust(32, b"\0"), 0, bssid, 1, phy,
                       rssi, 80, 1, 100, 0, 0, 0x431, khz, 0, b"", 0, 0)


def _bss_list(*entries: bytes) -> bytes:
    import struct

    body = b"".join(entries)
    return struct.pack("<II", 8 + len(body), len(entries)) + body


GUID_A = "{3F9A1C2E-1111-4A2B-9C3D-00AABBCCDD01}"
GUID_B = "{7D2E4B10-2222-4C5D-8E6F-00AABBCCDD02}"


class FakeWlan:
    """WlanEnumInterfaces / WlanQueryInterface / WlanGetNetworkBssList answers, and who was asked."""

    def __init__(self, interfaces, answers, bss=None):
        self._ifaces, self._answers, self._bss = interfaces, answers, bss
        self.asked: list[tuple[str, object]] = []

    def interfaces(self):
        return list(self._ifaces)

    def query(self, guid, opcode):
        self.asked.append((guid, opcode))
        got = self._answers.get(opcode, 5)
        return (got, 0) if isinstance(got, bytes) else (None, got)

    def bss_list(self, guid):
        self.asked.append((guid, "bss"))
        return (self._bss, 0) if self._bss is not None else (None, 5)


def _le(fmt, v):
    import struct

    return struct.pack(fmt, v)


def test_6ghz_channel_5_is_6ghz_from_the_centre_frequency_not_2ghz():
    """6 GHz reuses channel numbers: channel 5 at 5975 MHz is 6 GHz, never "2.4 GHz"."""
    from roomprobe.host import wlanapi

    ap = b"\x70\x3a\x0e\xaa\xbb\xcc"
    api = FakeWlan([(GUID_A, "Intel(R) Wi-Fi 7 BE200")],
                   {wlanapi.OPCODE_CURRENT_CONNECTION: _conn_bytes(bssid=ap, phy=11),
                    wlanapi.OPCODE_RSSI: _le("<i", -52), wlanapi.OPCODE_CHANNEL_NUMBER: _le("<I", 5)},
                   _bss_list(_bss(b"\x11\x22\x33\x44\x55\x66", 2432000), _bss(ap, 5975000)))
    f = wlanapi.wlan_facts(api, "Wi-Fi", GUID_A)
    assert (f["band"], f["channel"], f["freq_mhz"], f["signal_dbm"]) == ("6 GHz", 5, 5975.0, -52)
    assert wifi.band_from_text(None, 5) == "2.4 GHz"  # what the channel alone (the old way) said
    assert not [x for x in probe.judge(f, probe.Options(), None) if x.id == "wifi-band-2ghz"]
    # the same channel at 2432 MHz is 2.4 GHz, and warned about
    api = FakeWlan([(GUID_A, "x")], {**api._answers}, _bss_list(_bss(ap, 2432000)))
    f = wlanapi.wlan_facts(api, "Wi-Fi", GUID_A)
    assert f["band"] == "2.4 GHz"
    assert [x.id for x in probe.judge(f, probe.Options(), None)] == ["wifi-band-2ghz"]


def test_without_the_centre_frequency_the_band_is_unknown_for_a_6ghz_capable_phy():
    from roomprobe.host import wlanapi

    answers = {wlanapi.OPCODE_CURRENT_CONNECTION: _conn_bytes(phy=10),
               wlanapi.OPCODE_RSSI: _le("<i", -60), wlanapi.OPCODE_CHANNEL_NUMBER: _le("<I", 5)}
    f = wlanapi.wlan_facts(FakeWlan([(GUID_A, "x")], answers, None), "Wi-Fi", GUID_A)
    assert f["band"] is None and "band unknown" in f["note"] and "BSS list not read" in f["note"]
    # 802.11ac cannot be on 6 GHz: its channel 5 is 2.4 GHz
    answers[wlanapi.OPCODE_CURRENT_CONNECTION] = _conn_bytes(phy=8)
    f = wlanapi.wlan_facts(FakeWlan([(GUID_A, "x")], answers, None), "Wi-Fi", GUID_A)
    assert f["band"] == "2.4 GHz"


def test_the_interface_is_the_adapters_guid_not_a_description_match():
    """Friendly name "WLAN" (German) appears in no description, and "Wi-Fi" is in both: the GUID
    from GetAdaptersAddresses (AdapterName) picks the interface."""
    from roomprobe.host import wlanapi

    ifaces = [(GUID_A, "Intel(R) Wi-Fi 6 AX201 160MHz"), (GUID_B, "MediaTek Wi-Fi 6 MT7921 Wireless LAN Card")]
    api = FakeWlan(ifaces, {wlanapi.OPCODE_CURRENT_CONNECTION: _conn_bytes()})
    f = wlanapi.wlan_facts(api, "WLAN", GUID_B.lower().strip("{}"))
    assert f is not None and {g for g, _ in api.asked} == {GUID_B}
    assert wlanapi.pick_interface(ifaces, None) is None  # two and no GUID: not guessed
    assert wlanapi.pick_interface(ifaces[:1], None) == GUID_A  # the only one
    assert wlanapi.pick_interface(ifaces, "{00000000-0000-0000-0000-000000000000}") is None
    raw = bytes.fromhex("2e1c9a3f11112b4a9c3d00aabbccdd01")
    assert wlanapi.guid_text(raw) == GUID_A


def test_a_refused_connection_query_still_reads_signal_and_channel_and_says_why():
    """Windows 11 without location permission: WlanQueryInterface(current connection) returns
    ERROR_ACCESS_DENIED; RSSI and channel are still asked and reported, with the reason."""
    from roomprobe.host import wlanapi

    api = FakeWlan([(GUID_A, "x")], {wlanapi.OPCODE_CURRENT_CONNECTION: 5,
                                     wlanapi.OPCODE_RSSI: _le("<i", -61),
                                     wlanapi.OPCODE_CHANNEL_NUMBER: _le("<I", 44)})
    f = wlanapi.wlan_facts(api, "Wi-Fi", GUID_A)
    assert (f["connected"], f["signal_dbm"], f["signal_estimated"], f["channel"]) == (True, -61, False, 44)
    assert f["ssid"] is None and f["error"] is None
    assert "current connection" in f["note"] and "access denied" in f["note"] and "location" in f["note"]
    assert [op for _, op in api.asked][:3] == [wlanapi.OPCODE_CURRENT_CONNECTION, wlanapi.OPCODE_RSSI,
                                               wlanapi.OPCODE_CHANNEL_NUMBER]
    # everything refused: unknown, and the reason is the error the probe shows
    api = FakeWlan([(GUID_A, "x")], {})
    f = wlanapi.wlan_facts(api, "Wi-Fi", GUID_A)
    assert f["signal_dbm"] is None and "access denied" in f["error"]


def test_windows_reader_asks_by_the_adapters_guid_and_keeps_the_apis_reason(monkeypatch):
    """wifi.read on Windows: the friendly name's GUID (GetAdaptersAddresses AdapterName) goes to
    the WLAN API; when the API could not read the signal, netsh answers and the API's reason
    stays in ``note``."""
    import sys

    from roomprobe.core import oscmd
    from roomprobe.host import wlanapi
    from roomprobe.host.osnet import _windows

    seen = {}
    partial = dict(wifi.empty("WLAN", "wlanapi"), note="signal (RSSI) not read: access denied",
                   error="signal (RSSI) not read: access denied")

    def fake_open(name, guid):
        seen["args"] = (name, guid)
        return partial

    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(_windows, "adapters", lambda: {"WLAN": {"guid": GUID_B}})
    monkeypatch.setattr(wlanapi, "open_api", fake_open)
    monkeypatch.setattr(oscmd, "_is_windows", lambda: True)
    monkeypatch.setattr(oscmd, "_windows_oem_page", lambda: 65001)
    text = (WLAN / "de-win11-connected.txt").read_bytes()
    monkeypatch.setattr(oscmd, "run_bytes", lambda cmd, t: oscmd.RawOutput(text, 0))
    f = wifi.read("WLAN")
    assert seen["args"] == ("WLAN", GUID_B)
    assert (f["source"], f["band"], f["channel"], f["signal_pct"]) == ("netsh", "5 GHz", 116, 43)
    assert f["note"] == "WLAN API: signal (RSSI) not read: access denied"
    # the API read the signal: its answer stands, netsh is not asked
    monkeypatch.setattr(wlanapi, "open_api", lambda name, guid: dict(partial, signal_dbm=-60, error=None))
    monkeypatch.setattr(oscmd, "run_bytes", lambda cmd, t: pytest.fail("netsh asked"))
    assert wifi.read("WLAN")["signal_dbm"] == -60


def test_a_partly_read_link_says_so_in_the_summary(host, tmp_path):
    host["facts"] = dict(host["facts"], note="current connection (SSID, PHY) not read: access denied")
    r = probe.run(ctx(tmp_path))
    assert r.status == Status.PASS and "partly read: current connection" in r.summary
