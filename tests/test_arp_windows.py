"""Windows neighbour (ARP) lookups: real localized ``arp -a`` outputs, parsed by layout.

The samples in tests/data/arp (provenance in its SOURCES.md) are German, French, Spanish,
Russian and Japanese; the type word differs in each (dynamisch, dynamique, dinámico,
динамический, 動的), so a parser matching English words finds nothing here. The `.oem` twins
are fed as bytes through roomprobe.core.oscmd with the code page SOURCES.md names (cp850,
cp866, cp932), into the live reader (osnet._windows.neighbor): only the byte runner, the code
page query and the structured source (GetIpNetTable2, Windows-only) are replaced.
"""

from __future__ import annotations

import ipaddress
import struct
from pathlib import Path

import pytest

from roomprobe.core import oscmd
from roomprobe.host import osnet
from roomprobe.host.osnet import _windows, parsers

ARP = Path(__file__).parent / "data" / "arp"
SOURCES = (ARP / "SOURCES.md").read_text("utf-8")

# stem: {interface address: (index, [(address, mac) of the rows with a unicast MAC the sample shows])}
EXPECT = {
    "de-one-interface": {"172.17.67.120": (0xC, 13, [
        ("172.17.67.94", "90:b1:1c:5d:d6:af"), ("172.17.67.254", "44:1e:a1:9b:a0:00")])},
    "fr-two-interfaces": {"192.168.56.1": (0x3, 10, []),
                          "10.33.77.199": (0xB, 12, [("10.33.79.254", "7c:5a:1c:d3:d8:76"),
                                                     ("10.33.65.63", "44:af:28:c3:6a:9f")])},
    "fr-filtered-no-header-edited": {"10.33.77.199": (0xB, 1, [("10.33.79.254", "7c:5a:1c:d3:d8:76")])},
    "es-wifi-and-warp-tunnel-partial": {"192.168.1.170": (0xA, 9, [("192.168.1.1", "fc:22:f4:5a:37:70")]),
                                        "172.16.0.2": (0x1B, 5, [])},
    "ru-two-interfaces": {"192.168.56.1": (0xB, 5, []),
                          "100.64.0.122": (0x12, 8, [("100.64.0.1", "a8:63:7d:d9:82:0c")])},
    "ja-one-interface": {"192.168.1.12": (0xD, 12, [("192.168.1.1", "00:25:36:e9:ff:c5"),
                                                    ("192.168.1.30", "3c:8d:20:1c:ff:fb")])},
}


def test_every_arp_sample_is_used_and_sourced():
    files = sorted(p.name for p in ARP.iterdir() if p.name != "SOURCES.md")
    assert {Path(f).stem for f in files} == set(EXPECT)
    assert all(f"`{f}`" in SOURCES for f in files)


@pytest.mark.parametrize("stem", sorted(EXPECT))
def test_arp_rows_by_layout_in_every_language(stem):
    rows = parsers.windows_arp((ARP / f"{stem}.txt").read_text("utf-8"))
    by_iface: dict[str, list[dict]] = {}
    for r in rows:
        by_iface.setdefault(str(r["interface"]), []).append(r)
    assert set(by_iface) == set(EXPECT[stem])
    for iface, (index, count, pairs) in EXPECT[stem].items():
        got = by_iface[iface]
        assert len(got) == count  # the column header is not a row
        assert {r["if_index"] for r in got} == {index}
        for addr, mac in pairs:
            row = next(r for r in got if r["address"] == addr)
            assert (row["mac"], row["state"]) == (mac, "resolved")
        assert all(r["type"] for r in got)  # the localized word, whatever it is


def test_type_word_is_kept_as_printed_not_translated():
    rows = parsers.windows_arp((ARP / "ru-two-interfaces.txt").read_text("utf-8"))
    assert next(r for r in rows if r["address"] == "100.64.0.1")["type"] == "динамический"
    ja = parsers.windows_arp((ARP / "ja-one-interface.txt").read_text("utf-8"))
    assert ja[0]["type"] == "動的"


def test_a_tunnel_row_without_mac_is_not_an_arp_answer():
    """Cloudflare WARP lists peers with no MAC column: no MAC, and not "no entry" either."""
    rows = parsers.windows_arp((ARP / "es-wifi-and-warp-tunnel-partial.txt").read_text("utf-8"))
    row = next(r for r in rows if r["address"] == "2.16.54.158")
    assert (row["mac"], row["state"], row["interface"]) == (None, "no-link-layer", "172.16.0.2")
    nb = parsers.windows_neighbor(rows, "2.16.54.158")
    assert nb["mac"] is None and nb["state"] == "no-link-layer"


def test_unresolved_all_zero_mac_is_incomplete_and_absent_is_none():
    text = ("Interface: 10.1.0.5 --- 0x4\n  Internet Address      Physical Address      Type\n"
            "  10.1.0.31             00-00-00-00-00-00     invalid\n")
    rows = parsers.windows_arp(text)
    assert parsers.windows_neighbor(rows, "10.1.0.31") == {"mac": None, "state": "incomplete",
                                                          "interface": "10.1.0.5"}
    assert parsers.windows_neighbor(rows, "10.1.0.32") == {"mac": None, "state": "none"}
    # 10.1.0.3 must not match 10.1.0.31
    assert parsers.windows_neighbor(rows, "10.1.0.3")["state"] == "none"


def test_the_interface_holding_the_source_address_wins():
    """The same multicast address sits under every interface; the peer's own interface decides."""
    rows = parsers.windows_arp((ARP / "ru-two-interfaces.txt").read_text("utf-8"))
    assert parsers.windows_neighbor(rows, "224.0.0.251", "100.64.0.122")["interface"] == "100.64.0.122"
    assert parsers.windows_neighbor(rows, "224.0.0.251", "192.168.56.1")["interface"] == "192.168.56.1"


# ---- the live reader, through the OEM-code-page layer ------------------------------------

PAGES = {"de-one-interface": 850, "fr-two-interfaces": 850, "es-wifi-and-warp-tunnel-partial": 850,
         "ru-two-interfaces": 866, "ja-one-interface": 932}


@pytest.fixture
def windows_arp_cmd(monkeypatch):
    def setup(page: int, stdout: bytes, returncode: int | None = 0, error: str | None = None,
              source: str | None = None):
        calls = []

        def fake_run_bytes(cmd, timeout):
            calls.append(cmd)
            assert cmd == ["arp", "-a"]
            return oscmd.RawOutput(stdout, returncode, error)

        monkeypatch.setattr(oscmd, "_is_windows", lambda: True)
        monkeypatch.setattr(oscmd, "_windows_oem_page", lambda: page)
        monkeypatch.setattr(oscmd, "run_bytes", fake_run_bytes)
        monkeypatch.setattr(_windows, "_ipnet_table2", lambda: None)  # Windows-only API
        monkeypatch.setattr(osnet, "source_address", lambda peer: source)
        return calls
    return setup


@pytest.mark.parametrize("stem", sorted(PAGES))
def test_live_reader_decodes_oem_bytes_and_finds_each_mac(windows_arp_cmd, stem):
    data = (ARP / f"{stem}.oem").read_bytes()
    for iface, (_i, _n, pairs) in EXPECT[stem].items():
        for addr, mac in pairs:
            calls = windows_arp_cmd(PAGES[stem], data, source=iface)
            nb = _windows.neighbor(addr)
            assert calls and nb == {"mac": mac, "state": "resolved", "interface": iface, "source": "arp -a"}
    windows_arp_cmd(PAGES[stem], data)
    assert _windows.neighbor("203.0.113.77") == {"mac": None, "state": "none", "source": "arp -a"}


def test_a_wrong_code_page_garbles_the_words_but_not_the_layout(windows_arp_cmd):
    """Layout parsing survives even a wrong page (cp1252 for cp866 bytes): the interface line,
    the addresses and the MACs are ASCII; the type word becomes garbage with spaces in it."""
    data = (ARP / "ru-two-interfaces.oem").read_bytes()
    windows_arp_cmd(1252, data, source="100.64.0.122")
    assert _windows.neighbor("100.64.0.1")["mac"] == "a8:63:7d:d9:82:0c"


def test_arp_missing_or_silent_is_unknown_not_absent(windows_arp_cmd):
    windows_arp_cmd(850, b"", None, "arp: command not found")
    assert _windows.neighbor("10.0.0.1") is None
    windows_arp_cmd(850, b"", None, "arp: no answer within 5 s")
    assert _windows.neighbor("10.0.0.1") is None


def test_empty_table_sentence_is_no_entry(windows_arp_cmd):
    windows_arp_cmd(850, "Es wurden keine ARP-Einträge gefunden.\r\n".encode("cp850"), 1)
    assert _windows.neighbor("10.0.0.1") == {"mac": None, "state": "none"}


def test_ipv6_peer_without_the_structured_source_is_unknown(windows_arp_cmd):
    calls = windows_arp_cmd(850, b"")
    assert _windows.neighbor("fe80::1") is None and calls == []


# ---- GetIpNetTable2, decoded from the bytes Windows returns ------------------------------

def _row(addr: str, index: int, mac: bytes, state: int) -> bytes:
    ip = ipaddress.ip_address(addr)
    if ip.version == 4:
        sa = struct.pack("<HH4s8x", 2, 0, ip.packed) + bytes(12)
    else:
        sa = struct.pack("<HHI16sI", 23, 0, 0, ip.packed, 0)
    row = sa + struct.pack("<IQ32sIiB3xI", index, 0x1234, mac.ljust(32, b"\0"), len(mac), state, 0, 0)
    assert len(sa) == 28 and len(row) == parsers.IPNET_ROW2_SIZE
    return row


def test_ipnet_table2_layout():
    rows = [_row("192.168.1.1", 12, bytes.fromhex("001122334455"), 5),
            _row("192.168.1.9", 12, bytes(6), 1),
            _row("fe80::1", 12, bytes.fromhex("aabbccddeeff"), 4),
            _row("172.16.0.9", 27, b"", 6)]
    buf = struct.pack("<I4x", len(rows)) + b"".join(rows)
    got = parsers.ipnet_table2(buf)
    assert got == [
        {"address": "192.168.1.1", "if_index": 12, "mac": "00:11:22:33:44:55", "state": "reachable"},
        {"address": "192.168.1.9", "if_index": 12, "mac": None, "state": "incomplete"},
        {"address": "fe80::1", "if_index": 12, "mac": "aa:bb:cc:dd:ee:ff", "state": "stale"},
        {"address": "172.16.0.9", "if_index": 27, "mac": None, "state": "no-link-layer"},
    ]
    # a count larger than the copied bytes never reads past them
    assert len(parsers.ipnet_table2(struct.pack("<I4x", 1000) + rows[0])) == 1
    assert parsers.ipnet_table2(b"") == []


def test_structured_source_is_preferred_when_it_answers(monkeypatch):
    monkeypatch.setattr(_windows, "_ipnet_table2", lambda: [
        {"address": "10.0.0.1", "if_index": 7, "mac": "00:11:22:33:44:55", "state": "stale"}])
    monkeypatch.setattr(oscmd, "run_bytes", lambda cmd, t: pytest.fail("arp -a must not run"))
    assert _windows.neighbor("10.0.0.1") == {"mac": "00:11:22:33:44:55", "state": "stale",
                                             "if_index": 7, "source": "GetIpNetTable2"}
    assert _windows.neighbor("10.0.0.2") == {"mac": None, "state": "none"}


def test_a_raising_structured_source_falls_back_to_arp(windows_arp_cmd, monkeypatch):
    windows_arp_cmd(850, (ARP / "de-one-interface.oem").read_bytes(), source="172.17.67.120")

    def boom():
        raise OSError("iphlpapi missing")
    monkeypatch.setattr(_windows, "_ipnet_table2", boom)
    assert _windows.neighbor("172.17.67.254")["mac"] == "44:1e:a1:9b:a0:00"
