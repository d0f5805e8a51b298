"""wifi: is the room's Wi-Fi link good enough for a call?

Signal (RSSI dBm), noise, band and channel, BSSID and PHY rate of the Wi-Fi link in use, judged
(weak signal, 2.4 GHz, roaming between runs); skips a wired room.

Checks: for each Wi-Fi interface that carries this host's traffic (up with a routable address and
holding the default route, or the route to the controller/room), the OS's facts: signal (RSSI
dBm), noise where the driver reports it, band and channel, BSSID, PHY rates (roomprobe.host.wifi).
Concludes: fail when the signal is at or below ``rssi_fail_dbm`` (-80 dBm: basic connectivity
only), warn at or below ``rssi_warn_dbm`` (-70 dBm: the floor for reliable delivery); warn on
the 2.4 GHz band (crowded, few channels, lower rates); roaming between runs from the history
the check hands in (``ctx.history``: the database of ``--history-db``): the BSSID differs from
the previous run's (info), or ``roam_warn`` different access points in the last ``roam_runs``
runs (warn: the room sits between two APs).
SKIP when no Wi-Fi interface is in use (a wired room), with the reason.
PASS proves: the OS reported a signal for the Wi-Fi link in use, above the warn level, on a
band other than 2.4 GHz (or none reported). It does not prove the air is free (interference
shows as loss in the quality probe).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from roomprobe.core.errors import UsageError
from roomprobe.core.probe import Context, Finding, HistoryReader, Probe, Result, Severity, Status, described
from roomprobe.host import osnet


@dataclass(frozen=True)
class Options:
    """``[probes.wifi]`` in the config file, ``--set wifi.KEY=VALUE``."""

    rssi_warn_dbm: float = -70.0  # below this, delivery is no longer reliable
    rssi_fail_dbm: float = -80.0  # below this, basic connectivity only
    warn_2ghz: bool = True  # the 2.4 GHz band is crowded and slower
    roam_runs: int = 10  # how many earlier runs to look at for roaming
    roam_warn: int = 3  # this many different access points in those runs is a warning


def validate(o: Options) -> None:
    """Levels in dBm, fail below warn; roaming counts that can happen."""
    if not -100 <= o.rssi_fail_dbm < o.rssi_warn_dbm <= -30:
        raise UsageError("wifi.rssi_fail_dbm must be below wifi.rssi_warn_dbm, both -100..-30 dBm")
    if not 0 <= o.roam_runs <= 100 or not 2 <= o.roam_warn <= 100:
        raise UsageError("wifi.roam_runs must be 0-100 and wifi.roam_warn 2-100")


def in_use(ifaces: list[dict[str, Any]], carriers: set[str]) -> tuple[list[str], list[str]]:
    """(Wi-Fi interfaces carrying traffic, Wi-Fi interfaces up but idle).

    ``carriers``: interfaces named by the default route(s) or the route to the target. With no
    route known at all, every Wi-Fi interface up with a routable address counts as in use.
    """
    wifi = [i["name"] for i in ifaces if i.get("kind") == "wifi" and i.get("up")
            and any(osnet.routable(a["address"]) for a in i.get("addresses", []))]
    if not carriers:
        return wifi, []
    return [n for n in wifi if n in carriers], [n for n in wifi if n not in carriers]


def earlier_bssids(history: HistoryReader | None, interface: str, runs: int) -> list[str] | None:
    """BSSIDs of ``interface`` in the last ``runs`` stored reports, newest first (None: no
    history). A report that lacks the wifi evidence is skipped: this probe only looks for roaming."""
    reports = history.recent_reports(runs) if history is not None and runs > 0 else None
    if reports is None:
        return None
    out: list[str] = []
    for rep in reports:
        try:
            probe = next(p for p in rep["probes"] if p.get("id") == "wifi")
            for facts in probe["evidence"]["links"]:
                if facts.get("interface") == interface and isinstance(facts.get("bssid"), str):
                    out.append(facts["bssid"])
                    break
        except (TypeError, KeyError, StopIteration, AttributeError):
            continue
    return out


def judge(facts: dict[str, Any], o: Options, earlier: list[str] | None) -> list[Finding]:
    """Findings for one Wi-Fi link: weak signal, 2.4 GHz, roaming."""
    out: list[Finding] = []
    name, sig = facts["interface"], facts.get("signal_dbm")
    est = " (estimated from Windows' signal quality %)" if facts.get("signal_estimated") else ""
    noise = f", noise {facts['noise_dbm']:g} dBm" if facts.get("noise_dbm") is not None else ""
    if sig is not None and sig <= o.rssi_warn_dbm:
        sev = Severity.FAIL if sig <= o.rssi_fail_dbm else Severity.WARN
        out.append(Finding("wifi-signal-weak", sev,
                           f"The Wi-Fi signal on {name} is {sig:g} dBm{est}{noise} (warn at "
                           f"{o.rssi_warn_dbm:g}, fail at {o.rssi_fail_dbm:g} dBm): calls lose "
                           "packets and the rate drops.",
                           {k: facts.get(k) for k in ("interface", "signal_dbm", "noise_dbm",
                                                      "signal_estimated", "bssid", "band", "channel")},
                           hint="Wire the room if you can; otherwise add or move an access point "
                                "so the room sees -67 dBm or better."))
    if o.warn_2ghz and facts.get("band") == "2.4 GHz":
        out.append(Finding("wifi-band-2ghz", Severity.WARN,
                           f"{name} is on the 2.4 GHz band (channel {facts.get('channel') or '?'}): "
                           "crowded, only three free channels, lower rates, and shared with "
                           "Bluetooth and microwaves.",
                           {k: facts.get(k) for k in ("interface", "band", "channel", "bssid")},
                           hint="Join the SSID on 5 GHz (or 6 GHz), or enable band steering on the "
                                "access points."))
    bssid = facts.get("bssid")
    if bssid and earlier:
        distinct = list(dict.fromkeys([bssid, *earlier]))
        if len(distinct) >= o.roam_warn:
            out.append(Finding("wifi-roaming", Severity.WARN,
                               f"{name} used {len(distinct)} different access points in the last "
                               f"{len(earlier) + 1} runs: the room sits between access points and "
                               "hands over, which cuts calls for a moment each time.",
                               {"interface": name, "bssids": distinct, "runs": len(earlier) + 1},
                               hint="Fix the coverage so one access point is clearly strongest in "
                                    "the room, or wire it."))
        elif earlier[0] != bssid:
            out.append(Finding("wifi-roamed", Severity.INFO,
                               f"{name} is on another access point than in the previous run "
                               f"({earlier[0]} then, {bssid} now).",
                               {"interface": name, "previous": earlier[0], "now": bssid}))
    return out


def _carriers(ctx: Context) -> set[str]:
    names = {g["interface"] for g in osnet.default_gateways() if g.get("interface")}
    target = ctx.targets.peer
    if target:
        route = osnet.route_to(target) or {}
        if route.get("interface"):
            names.add(route["interface"])
    return names


def run(ctx: Context) -> Result:
    from roomprobe.host import wifi

    o = ctx.options
    ifaces = list(osnet.interfaces())
    used, idle = in_use(ifaces, _carriers(ctx))
    if not used:
        why = (f"Wi-Fi {', '.join(idle)} is up but traffic leaves by another interface" if idle
               else "no Wi-Fi interface is up with an address (a wired room)")
        return Result(Status.SKIP, "no-wifi", why, {"idle_wifi": idle})
    links = [wifi.read(name) for name in used]
    evidence: dict[str, Any] = {"links": links}
    unread = [f for f in links if f.get("signal_dbm") is None]
    if unread:
        why = "; ".join(f"{f['interface']}: " + (f["error"] or ("not associated" if f["connected"]
                                                                is False else "no signal reported"))
                        for f in unread)
        return Result.unmeasured("wifi-unreadable", f"Wi-Fi signal not read ({why})", evidence)
    findings: list[Finding] = []
    for f in links:
        earlier = earlier_bssids(ctx.history, f["interface"], int(o.roam_runs))
        findings += judge(f, o, earlier)
    parts = []
    for f in links:
        rate = f" {f['tx_mbps']:g} Mbit/s" if f.get("tx_mbps") else ""
        where = f"{f.get('band') or '? GHz'} ch {f.get('channel') or '?'}"
        parts.append(f"{f['interface']} {f['signal_dbm']:g} dBm{'~' if f.get('signal_estimated') else ''}, "
                     f"{where}{rate}, AP {f.get('bssid') or 'hidden'}"
                     + (f" (partly read: {f['note']})" if f.get("note") else ""))
    summary = "; ".join(parts)
    if any(x.severity == Severity.FAIL for x in findings):
        status = Status.FAIL
    elif any(x.severity == Severity.WARN for x in findings):
        status = Status.WARN
    else:
        proof = {f["interface"]: {"signal_dbm": f["signal_dbm"], "band": f.get("band"),
                                  "source": f["source"]} for f in links}
        return Result.passed("ok", summary, evidence, proof, findings)
    reason = next(x.id for x in findings if x.severity != Severity.INFO)
    return Result(status, reason, summary, evidence, findings)


# 20 s: macOS system_profiler takes seconds
PROBE = Probe("wifi", "Wi-Fi link (signal, band, roaming)", run, timeout_s=20.0, options=Options,
              validate=validate, description=described(__doc__))
