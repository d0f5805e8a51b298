"""What a hop-by-hop trace means: where loss and delay begin, told right. Pure: no sockets.

The misreadings this module exists to avoid (the ones network teams see in every MTR pasted
into a ticket):

* A router that limits the ICMP answers it sends shows "30% loss" at its own hop while the hops
  behind it lose nothing: the packets it forwards are fine. Loss at a hop that does not persist
  to the later hops is that router's rate limit, noted on the hop, never a finding on its own.
* A hop that never answers ("???", 100%) is a router configured not to send time exceeded:
  "no reply", not loss.
* Real loss begins at some hop k and persists to the destination. We find k from the suffix
  minimum of the loss (a hop's loss can only be trusted as far as every later hop shows it too),
  and name the segment: the last clean hop before k, the first lossy hop k, the destination.
* The same for delay: a queue that adds 80 ms from hop k on lifts every later hop; one slow
  router answering late lifts only itself (the suffix minimum of the median RTT removes it).

Each hop gets a zone, which is what the diagnosis speaks in: ``lan`` (hop 1: this device's own
link, Wi-Fi or cable, and its gateway), ``site`` (private addresses before the internet),
``edge`` (the first public address: the WAN link and the site's firewall), ``provider`` (the
ISP's network up to Zoom), ``zoom`` (inside Zoom's published ranges), ``vpn`` (the far end of a
tunnel the route goes into on this device).
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from roomprobe.core.probe import Finding, Severity

# What "the site" is: the addresses a site uses inside (RFC 1918, ULA, link-local). Not
# ipaddress' is_private, which also calls documentation and benchmark ranges private.
SITE_NETS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "fc00::/7", "fe80::/10"))
# Interface names of tunnels: a route into one means the path to Zoom goes through a VPN.
TUNNEL_PREFIXES = ("tun", "tap", "wg", "ppp", "utun", "ipsec", "vpn", "vx", "gre", "gpd", "zt",
                   "tailscale", "nordlynx", "cscotun", "ppp", "l2tp")

ZONE_WORDS = {
    "lan": "this device's own link (Wi-Fi or cable) and its gateway",
    "site": "the site's network (switches, internal routers, the firewall's inside)",
    "edge": "the site's edge: the firewall and the WAN link to the internet provider",
    "provider": "the internet provider's network",
    "zoom": "Zoom's network",
    "vpn": "the VPN tunnel this device sends Zoom's traffic into",
}
SYMPTOMS = ("audio breaks up, video freezes or drops to low resolution, screen share stalls; "
            "when nothing passes: 5003 / 104101-104118")
FIXES = {
    "lan": "Check the room's own link first: wire the room if it is on Wi-Fi (or move it to 5 GHz with "
           "a strong signal), replace the cable or switch port, check the port's error counters",
    "site": "Check the site's switches and internal routers on this path: uplink utilisation, "
            "interface errors, QoS that trusts Zoom's DSCP marks",
    "edge": "Check the firewall and the WAN link: CPU and session load, the WAN line's utilisation "
            "and errors; if it starts on the provider's first router, open a ticket with the ISP",
    "provider": "Open a ticket with the internet provider and give them the figures below (the hop "
                "table, loss where it begins, the time window, both ends' addresses)",
    "zoom": "The loss begins inside Zoom's network: check status.zoom.us, then open a ticket with "
            "Zoom support with this trace",
    "vpn": "Send Zoom's traffic outside the VPN (split tunnelling for Zoom's ranges, as Zoom "
           "recommends), or check the VPN gateway's load",
}


@dataclass(frozen=True)
class Targets:
    """The figures a verdict is judged against (Zoom publishes none; see docs/path.md)."""

    loss_pct: float = 1.0  # real-time media targets: loss < 1%
    loss_fail_pct: float = 10.0
    rtt_ms: float = 100.0
    jitter_ms: float = 30.0
    step_ms: float = 20.0  # a persisting latency step this large is a queue worth naming
    mtu_warn: int = 1400  # below this Zoom's full-size packets fragment or vanish


@dataclass
class Judgement:
    hops: list[dict[str, Any]]
    findings: list[Finding] = field(default_factory=list)
    loss: dict[str, Any] | None = None  # where real loss begins
    delay: dict[str, Any] | None = None  # where a persisting latency step begins
    rate_limited: list[int] = field(default_factory=list)  # TTLs
    silent: list[int] = field(default_factory=list)
    mtu: dict[str, Any] | None = None
    destination: dict[str, Any] | None = None  # the destination hop's figures, if it answered


def is_site(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return any(ip in n for n in SITE_NETS if n.version == ip.version)


def is_tunnel(interface: str | None) -> bool:
    return bool(interface) and str(interface).lower().startswith(TUNNEL_PREFIXES)


def zones(hops: list[dict[str, Any]], zoom: Callable[[str], bool | None],
          tunnel: bool = False) -> list[str]:
    """The zone of each hop (silent hops take the zone of the hop before them)."""
    out: list[str] = []
    public_seen = False
    for h in hops:
        addr = (h.get("addresses") or [None])[0]
        prev = out[-1] if out else "lan"
        if addr is None:
            if h["ttl"] == 1:
                out.append("vpn" if tunnel else "lan")
            else:  # a silent hop sits where its neighbours are; hop 1 alone is this device's link,
                # the first public address alone is the edge
                out.append({"lan": "site", "edge": "provider"}.get(prev, prev))
            continue
        if zoom(addr):
            zone = "zoom"
        elif h["ttl"] == 1:
            zone = "vpn" if tunnel else "lan"
        elif not public_seen and is_site(addr):
            zone = "vpn" if prev == "vpn" and tunnel and h["ttl"] == 1 else "site"
        elif not public_seen:
            zone = "edge"
        else:
            zone = "provider"
        if not is_site(addr):
            public_seen = True
        out.append(zone)
    return out


def _median(h: dict[str, Any]) -> float | None:
    r = h.get("rtt_ms")
    return float(r["median"]) if isinstance(r, dict) and r.get("median") is not None else None


def _where(h: dict[str, Any], zone: str) -> dict[str, Any]:
    return {"ttl": h["ttl"], "address": (h.get("addresses") or [None])[0], "zone": zone}


def judge(trace: dict[str, Any], zoom: Callable[[str], bool | None], *, tunnel: str | None = None,
          targets: Targets | None = None) -> Judgement:
    """Annotate every hop (zone, note) and conclude: findings with stable ids."""
    t = targets or Targets()
    hops = [dict(h) for h in trace.get("hops") or []]
    zs = zones(hops, zoom, is_tunnel(tunnel))
    j = Judgement(hops)
    answering = [i for i, h in enumerate(hops) if h.get("received")]
    _first_notes(j, hops, zs)
    reached = bool(trace.get("reached")) and bool(hops) and bool(hops[-1].get("received"))
    if reached:
        d = hops[-1]
        j.destination = {"ttl": d["ttl"], "address": trace.get("address"), "loss_pct": d.get("loss_pct"),
                         "sent": d.get("sent"), "received": d.get("received"), "rtt_ms": d.get("rtt_ms"),
                         "zone": zs[-1]}
    _loss(j, hops, zs, answering, reached, t)
    _delay(j, hops, zs, answering, reached, t)
    _mtu(j, hops, zs, t)
    _findings(j, trace, t, tunnel)
    return j


def _note(hop: dict[str, Any], text: str) -> None:
    hop["note"] = (hop["note"] + ", " if hop["note"] else "") + text


def _first_notes(j: Judgement, hops: list[dict[str, Any]], zs: list[str]) -> None:
    """Each hop's zone, and what shows at a glance: no reply, or load-balanced."""
    for i, h in enumerate(hops):
        h["zone"] = zs[i]
        h["note"] = ""
        if not h.get("received"):
            h["note"] = "no reply"
            j.silent.append(h["ttl"])
        elif len(h.get("addresses") or []) > 1:
            h["note"] = "load-balanced"


def _loss(j: Judgement, hops: list[dict[str, Any]], zs: list[str], answering: list[int],
          reached: bool, t: Targets) -> None:
    """Loss: the suffix minimum over answering hops (the destination included) is what persists;
    a hop losing clearly more than the hops behind it rate-limits its ICMP answers."""
    behind: dict[int, int] = {}  # the hop at or behind i that lost least: what persists past i
    low: tuple[float, int] = (float("inf"), -1)
    for i in reversed(answering):
        low = min(low, (float(hops[i].get("loss_pct") or 0.0), i))
        behind[i] = low[1]
    for i, after in pairwise(answering):
        if _excess(hops[i], hops[behind[after]]):
            _note(hops[i], "rate-limits its ICMP answers")
            j.rate_limited.append(hops[i]["ttl"])
    if not reached or j.destination is None:
        return
    end_loss = float(hops[-1].get("loss_pct") or 0.0)
    if end_loss >= t.loss_pct:
        onset = _onset(hops, answering, behind)
        before = [i for i in answering if i < onset]
        j.loss = {"begins": _where(hops[onset], zs[onset]),
                  "last_clean": _where(hops[before[-1]], zs[before[-1]]) if before else None,
                  "last": _where(hops[-1], zs[-1]), "loss_pct": end_loss,
                  "zone": zs[onset]}
        for i in answering:
            if i >= onset:
                _note(hops[i], "loss persists")


# How far a hop's own loss must stand above the least-losing hop behind it before it is called
# a rate limit, when that hop lost some too, in standard deviations of the difference of two
# binomial counts: rounds are independent, so at 30% loss over 60 rounds one hop shows 21% and
# the next 39% by chance alone, and neither is rate-limiting. 3.5 keeps chance below one run in
# a few hundred.
EXCESS_SD = 3.5


def _excess(h: dict[str, Any], behind: dict[str, Any]) -> bool:
    """Whether this hop's own answers go missing, not what it forwards. With nothing lost behind
    it, any loss here is its own (nothing it forwarded was lost); with loss behind it too, only
    a difference beyond chance is (a test on the two counts, with their pooled rate)."""
    n1, n2 = int(h.get("sent") or 0), int(behind.get("sent") or 0)
    l1 = n1 - int(h.get("received") or 0)
    l2 = n2 - int(behind.get("received") or 0)
    if n1 <= 0 or n2 <= 0 or l1 <= 0 or l1 / n1 <= l2 / n2:
        return False
    if l2 <= 0:
        return True
    p = (l1 + l2) / (n1 + n2)
    return l1 / n1 - l2 / n2 > EXCESS_SD * math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))


def _onset(hops: list[dict[str, Any]], answering: list[int], behind: dict[int, int]) -> int:
    """The hop where the loss that reaches the destination begins: the split of the answering
    hops into a "before" and an "after", each with one loss rate, that explains the persisting
    losses best (the maximum-likelihood change point of a binomial rate).

    Why not "the first hop whose loss reaches half the destination's": that compares two single
    hops' figures, each a count over a few dozen rounds. With 30% loss from hop 3 over 60
    rounds, hop 3 shows under half the destination's figure in one run of forty, and the blame
    moved one hop on. The change point weighs every hop behind the split: the same case is
    misplaced about once in a thousand runs, when one later hop loses far less than chance
    allows (tests/test_path_unit.py draws 3000). A hop whose loss did not persist at all (a suffix
    minimum of 0) is never where loss begins; a split is preferred to "one rate from the first hop on" only when it
    explains the counts better by more than its extra rate is worth (BIC).
    """
    sent = [int(hops[i].get("sent") or 0) for i in answering]
    lost = [round(n * float(hops[behind[i]].get("loss_pct") or 0.0) / 100)
            for n, i in zip(sent, answering, strict=True)]
    first = next((k for k, n in enumerate(lost) if n > 0), len(lost) - 1)
    penalty = 0.5 * math.log(max(2, sum(sent)))
    best: tuple[float, int] | None = None
    for k in range(first, len(answering)):
        score = (_loglik(sum(lost[:k]), sum(sent[:k])) + _loglik(sum(lost[k:]), sum(sent[k:]))
                 - (penalty if k > 0 else 0.0))
        if best is None or score > best[0] + 1e-9:
            best = (score, k)
    return answering[best[1] if best else first]


def _loglik(lost: int, sent: int) -> float:
    """The log-likelihood of ``lost`` of ``sent`` at its own best rate (0 when the rate is 0 or 1)."""
    if lost <= 0 or lost >= sent:
        return 0.0
    p = lost / sent
    return lost * math.log(p) + (sent - lost) * math.log(1 - p)


def _delay(j: Judgement, hops: list[dict[str, Any]], zs: list[str], answering: list[int],
           reached: bool, t: Targets) -> None:
    """Delay: the suffix minimum of the median RTT; the largest persisting step, if big enough."""
    med = {i: m for i in answering if (m := _median(hops[i])) is not None}
    order = sorted(med)
    # A router that answers slower than the hops behind it is slow to answer (its control
    # plane), not a queue: what it forwards is not delayed. Its figure says nothing of the path.
    slow = {i for k, i in enumerate(order) if order[k + 1:] and
            med[i] - min(med[x] for x in order[k + 1:]) >= t.step_ms}
    kept = [i for i in order if i not in slow]
    dfloor: dict[int, float] = {}
    low = float("inf")
    for i in reversed(kept):
        low = min(low, med[i])
        dfloor[i] = low
    best: tuple[float, int, int | None] | None = None
    prev: int | None = None
    for i in kept:
        step = dfloor[i] - (dfloor[prev] if prev is not None else 0.0)
        if best is None or step > best[0]:
            best = (step, i, prev)
        prev = i
    if reached and best is not None and best[0] >= t.step_ms:
        step, onset, before_i = best
        j.delay = {"begins": _where(hops[onset], zs[onset]),
                   "last_clean": _where(hops[before_i], zs[before_i]) if before_i is not None else None,
                   "last": _where(hops[-1], zs[-1]), "added_ms": round(step, 1), "zone": zs[onset]}
        for i in kept:
            if i >= onset:
                _note(hops[i], "delay persists")
    for i in slow:
        _note(hops[i], "slow to answer (not a queue)")


def _mtu(j: Judgement, hops: list[dict[str, Any]], zs: list[str], t: Targets) -> None:
    """Where the MTU drops: the router whose next link is smaller, named "beyond hop k".

    With "fragmentation needed" the router says so (its address and MTU). Without (a black
    hole), full-size probes are answered up to hop k and never after while small ones are.
    The router checks the TTL before the size, so the full-size probe that expires AT it is
    answered either way: the drop shows from the next hop on.
    """
    by_addr = {a: i for i, h in enumerate(hops) for a in h.get("addresses") or []}
    for i, h in enumerate(hops):
        if h.get("mtu"):
            sender = h.get("mtu_from")
            k = by_addr.get(sender, i - 1) if sender else i - 1
            k = max(0, min(k, i))
            j.mtu = {**_where(hops[k], zs[k]), "mtu": int(h["mtu"]), "frag_needed": True}
            if sender:
                j.mtu["address"] = sender
            _note(hops[k], f"MTU {h['mtu']} beyond")
            return
    big = [(i, h) for i, h in enumerate(hops) if (h.get("big") or {}).get("sent") and h.get("received")]
    if not big or j.destination is None:
        return
    for idx in range(len(big)):
        if all(not (x.get("big") or {}).get("answered") for _, x in big[idx:]):
            # Could ordinary loss explain it? The chance that every full-size probe from here
            # on was lost like the small ones were: only well below 1% is it the size.
            chance = 1.0
            for _, x in big[idx:]:
                chance *= (float(x.get("loss_pct") or 0.0) / 100.0) ** int(x["big"]["sent"])
            if chance > 0.01:
                return
            if idx == 0:
                j.mtu = {"ttl": 0, "address": None, "zone": "lan", "mtu": None, "frag_needed": False}
                return
            k = big[idx - 1][0]
            j.mtu = {**_where(hops[k], zs[k]), "mtu": None, "frag_needed": False}
            _note(hops[k], "full-size packets vanish beyond")
            return


def _isp_figures(trace: dict[str, Any], j: Judgement) -> dict[str, Any]:
    """What an ISP asks for: both ends, the method, the counts, every hop's figures (the report
    around it carries the time window)."""
    return {"source": trace.get("source"), "destination": trace.get("address"), "method": trace.get("method"),
            "rounds": trace.get("rounds"), "probe_size": trace.get("probe_size"),
            "hops": [{"ttl": h["ttl"], "address": (h.get("addresses") or ["???"])[0],
                      "loss_pct": h.get("loss_pct"), "sent": h.get("sent"),
                      "median_ms": _median(h), "note": h.get("note")} for h in j.hops]}


def _findings(j: Judgement, trace: dict[str, Any], t: Targets, tunnel: str | None) -> None:
    add = j.findings.append
    if is_tunnel(tunnel):
        add(Finding("path-via-vpn", Severity.WARN,
                    f"The route to Zoom goes into the tunnel {tunnel}: calls take the VPN's detour and "
                    "share its capacity.", {"interface": tunnel, "local_mtu": trace.get("local_mtu")},
                    hint=FIXES["vpn"]))
    if j.destination is None:
        last = next((h for h in reversed(j.hops) if h.get("received")), None)
        where = (f"the last hop that answered is {last['ttl']} ({(last.get('addresses') or ['?'])[0]}, "
                 f"{last['zone']})") if last else "no hop answered at all"
        add(Finding("path-no-answer", Severity.WARN,
                    f"{trace.get('address')} never answered {trace.get('method')} probes; {where}.",
                    {"last_answering": _where(last, last["zone"]) if last else None,
                     "method": trace.get("method"), "rounds": trace.get("rounds")},
                    hint="Try another method (--method tcp reaches web hosts through web-only firewalls); "
                         "if no method gets through, the block is after the last hop that answered"))
        return
    if j.loss:
        z = j.loss["zone"]
        b = j.loss["begins"]
        sev = Severity.FAIL if j.loss["loss_pct"] >= t.loss_fail_pct else Severity.WARN
        add(Finding(f"path-loss-{z}", sev,
                    f"{j.loss['loss_pct']:g}% of probes are lost from hop {b['ttl']} ({b['address']}, "
                    f"{ZONE_WORDS[z]}) through to the destination: real loss, and it begins there. "
                    f"Likely in Zoom: {SYMPTOMS}.",
                    {**j.loss, "isp": _isp_figures(trace, j)} if z in ("provider", "edge") else dict(j.loss),
                    hint=FIXES[z]))
    if j.delay:
        z = j.delay["zone"]
        b = j.delay["begins"]
        add(Finding(f"path-delay-{z}", Severity.WARN,
                    f"Round trips grow by {j.delay['added_ms']:g} ms from hop {b['ttl']} ({b['address']}, "
                    f"{ZONE_WORDS[z]}) and stay that high to the destination: a queue begins there. "
                    "Likely in Zoom: lag, talk-over, audio that stutters under load.",
                    {**j.delay, "isp": _isp_figures(trace, j)} if z in ("provider", "edge") else dict(j.delay),
                    hint=FIXES[z] + "; under load, smart queue management (fq_codel/cake) on the bottleneck"))
    rtt = j.destination.get("rtt_ms") or {}
    if rtt.get("median") is not None and rtt["median"] > t.rtt_ms and not j.delay:
        add(Finding("path-rtt-high", Severity.WARN,
                    f"The median round trip to {trace.get('address')} is {rtt['median']:g} ms "
                    f"(target < {t.rtt_ms:g} ms).", {"rtt_ms": rtt}))
    if rtt.get("jitter") is not None and rtt["jitter"] > t.jitter_ms:
        add(Finding("path-jitter-high", Severity.WARN,
                    f"Round trips to {trace.get('address')} vary by {rtt['jitter']:g} ms on average "
                    f"(target < {t.jitter_ms:g} ms).", {"rtt_ms": rtt}))
    if j.mtu:
        m = j.mtu
        if m["frag_needed"]:
            sev = Severity.WARN if m["mtu"] < t.mtu_warn else Severity.INFO
            add(Finding("path-mtu-reduced", sev,
                        f"Beyond hop {m['ttl']} ({m['address']}) the path carries at most {m['mtu']} bytes, and "
                        "that router says so (ICMP fragmentation needed).", dict(m),
                        hint="Fine when ICMP 'fragmentation needed' passes every firewall; otherwise "
                             "clamp the TCP MSS on that link"))
        else:
            add(Finding("path-mtu-blackhole", Severity.WARN,
                        f"Full-size packets vanish beyond hop {m['ttl']} ({m['address']}) while small ones "
                        "pass, and no 'fragmentation needed' comes back: an MTU black hole.", dict(m),
                        hint="Allow ICMP type 3 code 4 through the firewall, or lower the MTU / clamp "
                             "the MSS on the smaller link"))
