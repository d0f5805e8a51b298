"""Wi-Fi link facts from the OS: signal (RSSI dBm), noise, band and channel, BSSID, PHY rate.

Why: a room on Wi-Fi loses calls to a weak signal, a crowded 2.4 GHz band or an access point
hand-over long before any bandwidth test notices. Where each fact comes from:

- Linux: ``iw dev IFACE link`` (BSSID, frequency, signal, bitrates) and ``iw dev IFACE station
  dump`` (the AP's entry: signal, signal average, beacon signal average, both bitrates); noise
  from ``/proc/net/wireless`` where the driver reports it (mac80211 drivers print -256: unknown).
- Windows: the WLAN API (roomprobe.host.wlanapi: current connection, RSSI, channel, and the
  connected BSS's centre frequency for the band), else ``netsh wlan show interfaces`` parsed by
  layout, so any display language works.
  Windows gives a signal *quality* in %, which maps linearly to -100..-50 dBm (the WLAN API's own
  definition); an RSSI from that is marked ``signal_estimated``.
- macOS: CoreWLAN through pyobjc (``CWWiFiClient.sharedWiFiClient().interfaceWithName_``:
  RSSI, noise, channel and band, PHY mode, rate, SSID/BSSID), else ``system_profiler
  SPAirPortDataType -json`` (signal / noise, channel with band, PHY mode, rate). macOS hides
  SSID and BSSID from a process without location permission: then None.

Every parser is pure and tested on real outputs (tests/data/os, tests/data/samples). Nothing
here raises: a missing tool or a refusal comes back as ``error`` with what to do.
"""

from __future__ import annotations

import contextlib
import json
import re
import struct
import sys
from typing import Any

from roomprobe.host.osnet.parsers import _GUID, _MAC, _kv_lines

MAX_TEXT = 1024 * 1024

# ---------------------------------------------------------------- frequencies and channels


def band_channel(freq_mhz: float | None) -> tuple[str | None, int | None]:
    """IEEE 802.11 channel plan: 2.4 GHz (1-14), 5 GHz (36-177), 6 GHz (1-233)."""
    if freq_mhz is None:
        return None, None
    f = int(round(freq_mhz))
    if f == 2484:
        return "2.4 GHz", 14
    if 2412 <= f <= 2472:
        return "2.4 GHz", (f - 2407) // 5
    if 5150 <= f <= 5895:
        return "5 GHz", (f - 5000) // 5
    if 5925 <= f <= 7125:
        return "6 GHz", (f - 5950) // 5
    return None, None


def band_from_text(text: str | None, channel: int | None = None) -> str | None:
    """"2,4 GHz", "5 GHz", "2GHz" (macOS) -> "2.4 GHz"/"5 GHz"/"6 GHz"; else from the channel."""
    if text:
        m = re.search(r"(\d+)(?:[.,]\d+)?\s*GHz", text)
        if m:
            return {"2": "2.4 GHz", "5": "5 GHz", "6": "6 GHz"}.get(m.group(1))
    if channel is not None:
        return "2.4 GHz" if 1 <= channel <= 14 else "5 GHz" if 32 <= channel <= 177 else None
    return None


def quality_to_dbm(percent: int) -> int:
    """Windows' signal quality (0-100 %) to dBm: 0 % is -100 dBm, 100 % is -50 dBm, linear."""
    return int(round(-100 + max(0, min(100, percent)) / 2))


def empty(interface: str, source: str) -> dict[str, Any]:
    """Every fact as unknown; parsers fill what their source tells."""
    return {"interface": interface, "source": source, "connected": None, "ssid": None,
            "bssid": None, "freq_mhz": None, "band": None, "channel": None, "signal_dbm": None,
            "signal_estimated": False, "signal_pct": None, "noise_dbm": None, "tx_mbps": None,
            "rx_mbps": None, "phy": None, "error": None, "note": None}


# ---------------------------------------------------------------- Linux: iw, /proc/net/wireless

_DBM = re.compile(r"(-?\d+(?:\.\d+)?)\s*(?:\[[^\]]*\]\s*)?dBm")
_RATE = re.compile(r"(\d+(?:\.\d+)?)\s*MBit/s")
_PHY = (("EHT-", "802.11be"), ("HE-", "802.11ax"), ("VHT-", "802.11ac"), ("MCS", "802.11n"))


def _phy_from_rate(text: str) -> str | None:
    return next((phy for key, phy in _PHY if key in text), None)


def _num(pattern: re.Pattern[str], text: str) -> float | None:
    m = pattern.search(text)
    return float(m.group(1)) if m else None


def parse_iw_link(text: str, interface: str = "") -> dict[str, Any]:
    """``iw dev IFACE link``: "Connected to BSSID (on IFACE)" + SSID/freq/signal/bitrates."""
    out = empty(interface, "iw")
    first = text.strip().splitlines()[0] if text.strip() else ""
    if first.startswith("Not connected"):
        out["connected"] = False
        return out
    m = re.match(r"Connected to ([0-9a-fA-F:]{17})", first)
    if not m:
        out["error"] = "iw link printed nothing recognisable"
        return out
    out["connected"] = True
    out["bssid"] = m.group(1).lower()
    for key, value in _kv_lines(text):
        if key == "SSID":
            out["ssid"] = value or None
        elif key == "freq":
            with contextlib.suppress(ValueError, IndexError):
                out["freq_mhz"] = float(value.split()[0])
        elif key == "signal":
            out["signal_dbm"] = _num(_DBM, value)
        elif key in ("tx bitrate", "rx bitrate"):
            out["tx_mbps" if key.startswith("tx") else "rx_mbps"] = _num(_RATE, value)
            out["phy"] = out["phy"] or _phy_from_rate(value)
    out["band"], out["channel"] = band_channel(out["freq_mhz"])
    return out


def parse_iw_station(text: str) -> dict[str, Any]:
    """``iw dev IFACE station dump`` on a client: the AP's entry (the first station)."""
    out: dict[str, Any] = {}
    block: list[str] = []
    for line in text.splitlines():
        if line.startswith("Station "):
            if block:
                break
            m = re.match(r"Station ([0-9a-fA-F:]{17})", line)
            out["bssid"] = m.group(1).lower() if m else None
            block.append(line)
        elif block:
            block.append(line)
    for key, value in _kv_lines("\n".join(block[1:])):
        if key in ("signal", "signal avg", "beacon signal avg"):
            out[key.replace(" ", "_") + "_dbm"] = _num(_DBM, value)
        elif key in ("tx bitrate", "rx bitrate"):
            out[key.replace(" bitrate", "") + "_mbps"] = _num(_RATE, value)
            out.setdefault("phy", _phy_from_rate(value))
        elif key in ("tx retries", "tx failed", "beacon loss", "connected time"):
            with contextlib.suppress(ValueError, IndexError):
                out[key.replace(" ", "_")] = int(value.split()[0])
    return out


def station_signal(st: dict[str, Any]) -> float | None:
    """The AP's signal from a station dump: the average, else the beacon average, else the last.

    Some drivers report a bogus last-frame signal (ath12k printed -95 dBm next to a -20 dBm
    beacon average before a 2024 fix), so averages come first, and a last value more than 20 dB
    below the beacon average is not trusted.
    """
    avg, beacon, last = st.get("signal_avg_dbm"), st.get("beacon_signal_avg_dbm"), st.get("signal_dbm")
    if avg is not None:
        return avg
    if beacon is not None and (last is None or last < beacon - 20):
        return beacon
    return last


def parse_proc_wireless(text: str, interface: str) -> dict[str, float | None]:
    """``/proc/net/wireless``: link quality, level (dBm) and noise (dBm; None when unreported)."""
    for line in text.splitlines()[2:]:
        name, _, rest = line.strip().partition(":")
        if name != interface:
            continue
        cols = rest.split()
        try:
            link, level, noise = (float(c.rstrip(".")) for c in cols[1:4])
        except (ValueError, IndexError):
            return {}
        return {"link": link, "level_dbm": level if -120 <= level < 0 else None,
                "noise_dbm": noise if -120 <= noise < 0 else None}
    return {}


def merge_linux(link: dict[str, Any], station: dict[str, Any],
                proc: dict[str, float | None]) -> dict[str, Any]:
    """One set of facts from iw link, the AP's station entry and /proc/net/wireless."""
    out = dict(link)
    if station and (not out["bssid"] or station.get("bssid") == out["bssid"]):
        sig = station_signal(station)
        if sig is not None:
            out["signal_dbm"] = sig
        out["tx_mbps"] = station.get("tx_mbps") or out["tx_mbps"]
        out["rx_mbps"] = station.get("rx_mbps") or out["rx_mbps"]
        out["phy"] = out["phy"] or station.get("phy")
        out["tx_retries"], out["tx_failed"] = station.get("tx_retries"), station.get("tx_failed")
    out["noise_dbm"] = proc.get("noise_dbm")
    if out["signal_dbm"] is None and proc.get("level_dbm") is not None:
        out["signal_dbm"] = proc["level_dbm"]
    return out


# ---------------------------------------------------------------- Windows: netsh, WLAN API

_PCT = re.compile(r"^(\d{1,3})\s?%$")
_NUMBER = re.compile(r"^\d+(?:[.,]\d+)?$")


def parse_netsh(text: str, interface: str | None = None) -> dict[str, Any] | None:
    """``netsh wlan show interfaces`` in any language, by layout (see osnet.parsers).

    In a connected block, after the SSID line: the BSSID is the MAC-shaped value, the band the
    "N GHz" value, the radio type the "802.11x" value, the channel the first bare integer, and
    the receive and transmit rates the two numbers right above the "NN%" signal line. Returns
    None when ``interface`` (or any interface) is not in the text.
    """
    kv = [(k, v) for k, v in _kv_lines(text.replace("\xa0", " ")) if k]
    starts = [i - 2 for i, (_, v) in enumerate(kv) if _GUID.match(v) and i >= 2]
    for n, start in enumerate(starts):
        rows = kv[start:starts[n + 1] if n + 1 < len(starts) else len(kv)]
        name = rows[0][1]
        if interface and name.lower() != interface.lower():
            continue
        out = empty(name, "netsh")
        j = next((i for i, (k, _) in enumerate(rows) if k.upper() == "SSID"), None)
        if j is None:
            out["connected"] = False
            return out
        out["connected"] = True
        out["ssid"] = rows[j][1] or None
        after = rows[j + 1:]
        sig = next((i for i, (_, v) in enumerate(after) if _PCT.match(v)), None)
        if sig is not None:
            out["signal_pct"] = int(_PCT.match(after[sig][1]).group(1))  # type: ignore[union-attr]
            out["signal_dbm"] = quality_to_dbm(out["signal_pct"])
            out["signal_estimated"] = True
            rates = [v for _, v in after[max(0, sig - 2):sig]]
            if len(rates) == 2 and all(_NUMBER.match(r) for r in rates):
                out["rx_mbps"], out["tx_mbps"] = (float(r.replace(",", ".")) for r in rates)
        mac_at = next((i for i, (_, v) in enumerate(after[:2]) if _MAC.match(v)), None)
        if mac_at is not None:
            out["bssid"] = after[mac_at][1].lower().replace("-", ":")
        body = after[(mac_at + 1) if mac_at is not None else 0:sig]
        band = next((v for _, v in body if re.fullmatch(r"\d+(?:[.,]\d+)?\s*GHz", v)), None)
        out["phy"] = next((v for _, v in body if re.fullmatch(r"802\.11\w+", v)), None)
        channel = next((int(v) for _, v in body if v.isdigit() and 1 <= int(v) <= 233), None)
        out["channel"] = channel
        out["band"] = band_from_text(band, channel)
        return out
    return None


# WLAN_CONNECTION_ATTRIBUTES (wlanapi.h): isState, wlanConnectionMode, strProfileName[256]
# (WCHAR), then WLAN_ASSOCIATION_ATTRIBUTES: DOT11_SSID (ULONG length + 32 bytes), bss type,
# BSSID (6 bytes, 2 of padding), PHY type, PHY index, signal quality (0-100), rx and tx rate
# (kbit/s); then WLAN_SECURITY_ATTRIBUTES (4 x 32 bits). 604 bytes in all, little-endian.
WLAN_CONN = struct.Struct("<II512sI32sI6s2xIIIII4I")
DOT11_PHY = {1: "FHSS", 2: "DSSS", 3: "IR", 4: "802.11a", 5: "802.11b", 6: "802.11g", 7: "802.11n",
             8: "802.11ac", 9: "802.11ad", 10: "802.11ax", 11: "802.11be"}
WLAN_CONNECTED = 1  # wlan_interface_state_connected


def parse_wlan_connection(buf: bytes, interface: str = "") -> dict[str, Any]:
    """WLAN_CONNECTION_ATTRIBUTES as returned by WlanQueryInterface (current connection)."""
    out = empty(interface, "wlanapi")
    if len(buf) < WLAN_CONN.size:
        out["error"] = f"WLAN_CONNECTION_ATTRIBUTES too short ({len(buf)} bytes)"
        return out
    (state, _mode, _profile, ssid_len, ssid, _bss_type, bssid, phy, _phy_index, quality, rx_kbps,
     tx_kbps, *_security) = WLAN_CONN.unpack_from(buf)
    out["connected"] = state == WLAN_CONNECTED
    if not out["connected"]:
        return out
    out["ssid"] = ssid[:min(32, ssid_len)].decode("utf-8", "replace") or None
    out["bssid"] = ":".join(f"{b:02x}" for b in bssid)
    out["phy"] = DOT11_PHY.get(phy)
    out["signal_pct"] = min(100, quality)
    out["signal_dbm"] = quality_to_dbm(out["signal_pct"])
    out["signal_estimated"] = True
    out["rx_mbps"], out["tx_mbps"] = rx_kbps / 1000.0, tx_kbps / 1000.0
    return out


# ---------------------------------------------------------------- macOS: system_profiler


def parse_system_profiler(text: str, interface: str) -> dict[str, Any]:
    """``system_profiler SPAirPortDataType -json``: the interface's current network."""
    out = empty(interface, "system_profiler")
    try:
        data = json.loads(text[:MAX_TEXT])
        ifaces = data["SPAirPortDataType"][0]["spairport_airport_interfaces"]
    except (ValueError, KeyError, IndexError, TypeError, RecursionError):
        out["error"] = "system_profiler printed no Wi-Fi interfaces"
        return out
    me = next((i for i in ifaces if isinstance(i, dict) and i.get("_name") == interface), None)
    cur = (me or {}).get("spairport_current_network_information")
    if not isinstance(cur, dict) or not cur.get("spairport_signal_noise"):
        out["connected"] = False
        return out
    out["connected"] = True
    name = cur.get("_name")
    out["ssid"] = None if not isinstance(name, str) or name == "<redacted>" else name
    bssid = cur.get("spairport_network_bssid")
    out["bssid"] = normalise_bssid(bssid) if isinstance(bssid, str) else None
    sn = re.findall(r"(-?\d+)\s*dBm", str(cur.get("spairport_signal_noise")))
    if sn:
        out["signal_dbm"] = float(sn[0])
        out["noise_dbm"] = float(sn[1]) if len(sn) > 1 else None
    chan = str(cur.get("spairport_network_channel") or "")
    m = re.match(r"\s*(\d+)", chan)
    out["channel"] = int(m.group(1)) if m else None
    out["band"] = band_from_text(chan, out["channel"])
    rate = cur.get("spairport_network_rate")
    out["tx_mbps"] = float(rate) if isinstance(rate, (int, float)) else None
    phy = cur.get("spairport_network_phymode")
    out["phy"] = phy if isinstance(phy, str) else None
    return out


# ---------------------------------------------------------------- macOS: CoreWLAN (pyobjc)

# CWChannelBand and CWPHYMode (CoreWLAN/CoreWLANTypes.h)
CW_BAND = {1: "2.4 GHz", 2: "5 GHz", 3: "6 GHz"}
CW_PHY = {1: "802.11a", 2: "802.11b", 3: "802.11g", 4: "802.11n", 5: "802.11ac", 6: "802.11ax",
          7: "802.11be"}
# Apple's APIs (CoreWLAN's bssid(), system_profiler) may print octets without their leading
# zero: "0:1b:2:3c:4:5". Accepted and written out in full.
_LOOSE_MAC = re.compile(r"^[0-9a-f]{1,2}(?:([:-])[0-9a-f]{1,2}){5}$", re.I)


def normalise_bssid(value: Any) -> str | None:
    """A BSSID as ``aa:bb:cc:dd:ee:ff`` (lower case, two digits per octet); None if not one."""
    text = str(value).strip() if value else ""
    if not _LOOSE_MAC.match(text):
        return None
    return ":".join(f"{int(o, 16):02x}" for o in re.split(r"[:-]", text))


def _call(obj: Any, name: str) -> Any:
    """``obj.name()`` when the object has it (CoreWLAN differs across macOS versions), else None."""
    fn = getattr(obj, name, None)
    try:
        return fn() if callable(fn) else None
    except Exception:  # an Objective-C exception surfacing through pyobjc
        return None


def parse_corewlan(cw: Any, interface: str) -> dict[str, Any]:
    """A CoreWLAN ``CWInterface`` (or anything with its methods) to the facts dict.

    Not associated: ``wlanChannel()`` is nil and ``rssiValue()`` 0. Without location
    permission ``ssid()``/``bssid()`` are nil while the link facts stay readable.
    """
    out = empty(interface, "CoreWLAN")
    channel = _call(cw, "wlanChannel")
    rssi = _call(cw, "rssiValue")
    if channel is None and not rssi:
        out["connected"] = False
        return out
    out["connected"] = True
    ssid = _call(cw, "ssid")
    out["ssid"] = str(ssid) if ssid else None
    out["bssid"] = normalise_bssid(_call(cw, "bssid"))
    out["signal_dbm"] = float(rssi) if rssi else None
    noise = _call(cw, "noiseMeasurement")
    out["noise_dbm"] = float(noise) if noise else None
    if channel is not None:
        number = _call(channel, "channelNumber")
        out["channel"] = int(number) if number else None
        band = _call(channel, "channelBand")
        out["band"] = CW_BAND.get(int(band)) if band is not None else None
        out["band"] = out["band"] or band_from_text(None, out["channel"])
    rate = _call(cw, "transmitRate")
    out["tx_mbps"] = float(rate) if rate else None
    phy = _call(cw, "activePHYMode")
    out["phy"] = CW_PHY.get(int(phy)) if phy is not None else None
    return out


def corewlan_interface(interface: str) -> Any:  # pragma: no cover - macOS with pyobjc only
    """The CoreWLAN interface object, or None (pyobjc missing, no such interface)."""
    import CoreWLAN  # type: ignore[import-not-found]

    client = CoreWLAN.CWWiFiClient.sharedWiFiClient()
    cw = client.interfaceWithName_(interface) if interface else client.interface()
    return cw or client.interface()


# ---------------------------------------------------------------- live


def _windows_read(interface: str) -> dict[str, Any]:
    """The WLAN API first; netsh when the API is missing or could not read the signal (the
    API's reason is kept in ``note``)."""
    from roomprobe.core import oscmd
    from roomprobe.host import wlanapi
    from roomprobe.host.osnet import _windows

    try:
        guid = _windows.adapters().get(interface, {}).get("guid")
        got = wlanapi.open_api(interface, guid)
    except Exception:  # a ctypes surprise must not cost the netsh answer
        got = None
    if got is not None and (got["signal_dbm"] is not None or got["connected"] is False):
        return got
    out = oscmd.run(["netsh", "wlan", "show", "interfaces"], 5.0)
    facts = parse_netsh(out.text, interface) if out.text else None
    if facts is None or facts["signal_dbm"] is None:
        if got is not None:
            return got
        if facts is None:
            facts = empty(interface, "netsh")
            facts["error"] = out.error or f"netsh does not list {interface}"
        return facts
    if got is not None and got.get("note"):
        facts["note"] = f"WLAN API: {got['note']}"
    return facts


def read(interface: str) -> dict[str, Any]:
    """Facts for ``interface`` from this OS; ``error`` says why a fact source failed."""
    from roomprobe.core import oscmd

    if sys.platform.startswith("linux"):
        link = oscmd.run(["iw", "dev", interface, "link"], 3.0)
        if not link.ok:
            out = empty(interface, "iw")
            out["error"] = (f"{link.error}; install 'iw' (Debian/Ubuntu: apt install iw)"
                            if "not found" in (link.error or "") else link.error)
            return out
        facts = parse_iw_link(link.text, interface)
        if facts["connected"]:
            st = oscmd.run(["iw", "dev", interface, "station", "dump"], 3.0)
            proc: dict[str, float | None] = {}
            try:
                with open("/proc/net/wireless", encoding="ascii", errors="replace") as fh:
                    proc = parse_proc_wireless(fh.read(64 * 1024), interface)
            except OSError:
                pass
            facts = merge_linux(facts, parse_iw_station(st.text) if st.ok else {}, proc)
        return facts
    if sys.platform == "win32":
        return _windows_read(interface)
    if sys.platform == "darwin":  # pragma: no cover - macOS only
        try:
            cw = corewlan_interface(interface)
        except Exception:  # pyobjc not installed or CoreWLAN refusing: the command answers
            cw = None
        if cw is not None:
            return parse_corewlan(cw, interface)
        out = oscmd.run(["system_profiler", "SPAirPortDataType", "-json"], 15.0)
        if not out.ok:
            facts = empty(interface, "system_profiler")
            facts["error"] = out.error
            return facts
        return parse_system_profiler(out.text, interface)
    facts = empty(interface, "none")
    facts["error"] = f"Wi-Fi facts are not read on {sys.platform}"
    return facts
