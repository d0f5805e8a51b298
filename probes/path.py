"""path: the way to Zoom hop by hop, and where on it loss or delay begins.

mtr-style rounds to Zoom without administrator rights; names where real loss or a queue begins (this
device's link, site, edge, provider, Zoom), rate limits told apart

Checks: every hop between this device and Zoom's web host (and the media hosts or the peer,
when asked): who answers, loss, RTT min/median/p95/max and jitter, where the MTU drops.
How: mtr-style rounds (every TTL of a round in flight together, roomprobe.net.traceroute) with
no administrator rights on any OS: Linux UDP (falling back to TCP 443 when the destination
ignores UDP) or ICMP datagram sockets, macOS ICMP datagram sockets, Windows IcmpSendEcho2. The
evidence says which method ran and why.
Concludes (probes/_pathjudge.py): loss that begins at hop k and persists to the destination is
real and named by zone (this device's link, the site, the edge/WAN, the provider, Zoom); loss at
one hop only is that router rate-limiting its ICMP answers (a note, never a finding); a silent
hop is "no reply"; a latency step that persists is a queue, named the same way.
PASS proves: the destination answered this run's probes (``proof.answered``), with loss below
``loss_pct`` and median RTT and jitter below their targets, and no persisting step, MTU drop or
VPN detour was measured. A destination that never answers is a warning naming the last hop
that did; a run the deadline cut short before every round was sent is ``error``.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import Any

from roomprobe.core.errors import UsageError
from roomprobe.core.probe import Context, Probe, Result, Severity, Status, described
from roomprobe.core.threads import start_guarded
from roomprobe.net import traceroute, zoomranges

from ._pathjudge import Judgement, Targets, judge

RANGES_URL = "https://assets.zoom.us/docs/ipranges/Zoom.txt"


@dataclass(frozen=True)
class Options:
    """The path probe's options: ``[probes.path]`` in the config file, ``--set``."""

    # Zoom's web host (the cloud probe's first web URL): it answers TCP 443 everywhere.
    targets: tuple[str, ...] = ("zoom.us",)
    # Media servers you know (your Zoom Node / Meeting Connector), traced too when given.
    media_hosts: tuple[str, ...] = ()
    include_peer: bool = False  # also trace the controller/room peer (check --controller/--room)
    method: str = "auto"  # auto | udp | icmp | tcp
    rounds: int = 4  # inside check: a few rounds, which routers' ICMP bursts (6) absorb
    interval: float = 0.25
    wait: float = 0.6  # how long one round waits for its answers (check's deadline is 5 s)
    max_ttl: int = 30
    mtu_check: bool = True  # two rounds of full-size probes with DF set
    mtu_size: int = 1500
    loss_pct: float = 1.0
    rtt_ms: float = 100.0
    jitter_ms: float = 30.0
    step_ms: float = 20.0
    zoom_ranges: tuple[str, ...] = (RANGES_URL,)
    ranges_max_age_days: float = 7.0


def validate(options: Any) -> None:
    if options.method not in ("auto", *traceroute.METHODS):
        raise UsageError(f"path.method {options.method!r}: use auto, udp, icmp or tcp")
    if not 1 <= int(options.rounds) <= 1000:
        raise UsageError(f"path.rounds {options.rounds}: give 1 to 1000")
    if not 1 <= int(options.max_ttl) <= 64:
        raise UsageError(f"path.max_ttl {options.max_ttl}: give 1 to 64")
    if not 0.0 <= float(options.interval) <= 60 or not 0.05 <= float(options.wait) <= 30:
        raise UsageError("path.interval is 0-60 s and path.wait 0.05-30 s")
    if not 576 <= int(options.mtu_size) <= 9000:
        raise UsageError(f"path.mtu_size {options.mtu_size}: give 576 to 9000 bytes")
    for host in (*options.targets, *options.media_hosts):
        if not isinstance(host, str) or not host.strip() or any(c.isspace() for c in host):
            raise UsageError(f"path: {host!r} is not a host name or address")


def resolve(host: str) -> str:
    """The IPv4 address to trace (IPv6 paths are not traced yet: see docs/path.md)."""
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_DGRAM)
    return str(infos[0][4][0])


def route_of(address: str) -> dict[str, Any]:
    """How the OS sends to ``address``: {interface, source} (a tunnel interface means a VPN
    detour; the source is the address an ISP asks for). Empty when the OS cannot tell."""
    try:
        from roomprobe.host import osnet

        route = osnet.route_to(address)
    except Exception:  # the route table is a hint here, never a reason to fail the trace
        return {}
    return {k: str(route[k]) for k in ("interface", "source") if route.get(k)}


def tunnel_for(address: str) -> str | None:
    """The interface the OS would send to ``address`` on (a tunnel means a VPN detour)."""
    return route_of(address).get("interface")


def load_ranges(opts: Any, timeout: float) -> zoomranges.Ranges:
    if not opts.zoom_ranges:
        return zoomranges.Ranges()
    return zoomranges.load(list(opts.zoom_ranges), max_age_s=float(opts.ranges_max_age_days) * 86400,
                           timeout=timeout)


def targets_of(opts: Any, peer: str | None) -> list[tuple[str, str]]:
    """(role, host): role is one of a fixed set (zoom | media | peer), the metrics' label."""
    out = [("zoom", str(h)) for h in opts.targets] + [("media", str(h)) for h in opts.media_hosts]
    if opts.include_peer and peer:
        out.append(("peer", peer))
    return out


def thresholds(opts: Any) -> Targets:
    return Targets(loss_pct=float(opts.loss_pct), rtt_ms=float(opts.rtt_ms),
                   jitter_ms=float(opts.jitter_ms), step_ms=float(opts.step_ms))


def conclude_one(role: str, host: str, trace: dict[str, Any], tunnel: str | None,
                 ranges: zoomranges.Ranges, opts: Any) -> tuple[dict[str, Any], Judgement]:
    """One target's evidence (the trace with every hop judged) and its judgement."""
    j = judge(trace, lambda a: ranges.contains(a) if ranges.loaded else None, tunnel=tunnel,
              targets=thresholds(opts))
    if role == "back":  # traced by the peer towards us: its zones are seen from the peer's side
        for f in j.findings:
            f.message = f"On the way back (traced by the peer towards this device): {f.message}"
            f.evidence = {**f.evidence, "direction": "back"}
    ev = {**trace, "role": role, "host": host, "interface": tunnel, "hops": j.hops,
          "loss": j.loss, "delay": j.delay, "rate_limited": j.rate_limited, "silent": j.silent,
          "mtu": j.mtu, "destination": j.destination}
    return ev, j


def verdict(paths: list[tuple[dict[str, Any], Judgement]], ranges: zoomranges.Ranges,
            planned_rounds: int) -> Result:
    """One Result for every traced target: the findings, or PASS with the destination's figures."""
    findings = [f for _ev, j in paths for f in j.findings]
    evidence: dict[str, Any] = {"paths": [ev for ev, _ in paths],
                                "ranges": {"loaded": ranges.loaded, "sources": ranges.sources,
                                           "age_s": ranges.age_s()}}
    cut = [ev for ev, _ in paths if ev.get("interrupted")]
    worst = max((f.severity for f in findings), default=None,
                key=lambda s: [Severity.INFO, Severity.WARN, Severity.FAIL].index(s))
    if worst in (Severity.WARN, Severity.FAIL):
        first = next(f for f in findings if f.severity == worst)
        status = Status.FAIL if worst == Severity.FAIL else Status.WARN
        return Result(status, first.id, first.message, evidence, findings)
    short = [ev for ev, _ in paths if int(ev.get("rounds") or 0) < int(ev.get("planned_rounds") or planned_rounds)]
    if cut or short or not paths:
        done = ", ".join(f"{ev['host']}: {ev.get('rounds', 0)}/{planned_rounds} rounds" for ev, _ in paths)
        return Result.unmeasured("path-incomplete", f"the trace was cut short ({done or 'nothing traced'}); "
                                 "give check a longer --timeout", evidence, findings)
    proof = {ev["host"]: {"address": ev["address"], "answered": f"{ev['destination']['received']}/"
                          f"{ev['destination']['sent']}", "hops": ev["reached_ttl"],
                          "median_ms": (ev["destination"].get("rtt_ms") or {}).get("median"),
                          "method": ev["method"]} for ev, _ in paths if ev.get("destination")}
    d = paths[0][0]
    summary = (f"{d['host']} answered at hop {d['reached_ttl']} over {d['method']}, "
               f"{d['destination']['loss_pct']:g}% loss, median "
               f"{(d['destination'].get('rtt_ms') or {}).get('median')} ms")
    return Result.passed("path-clean", summary, evidence, proof, findings)


def _trace_one(role: str, host: str, opts: Any, deadline: float) -> tuple[dict[str, Any], str | None]:
    try:
        address = resolve(host)
    except (OSError, UnicodeError) as exc:
        return ({"target": host, "address": None, "role": role, "error": f"cannot resolve: {exc}",
                 "hops": [], "rounds": 0, "method": None}, None)
    # Zoom's web hosts answer TCP 443 and ignore UDP to a closed port: start with what answers.
    choice = traceroute.choose(str(opts.method), first="tcp" if role == "zoom" else "udp")
    # Plan only the rounds the deadline has room for, even if every round waits its full wait
    # (a silent hop): a plan the deadline then cuts short would prove nothing.
    per_round = max(float(opts.interval), float(opts.wait)) + 0.05
    room = deadline - time.monotonic() - 0.1
    planned = max(1, min(int(opts.rounds), int(room // per_round)))
    trace = traceroute.run(choice.method, host, address, why=choice.why, rounds=planned,
                           interval=float(opts.interval), wait=float(opts.wait), max_ttl=int(opts.max_ttl),
                           big_size=int(opts.mtu_size) if opts.mtu_check else None,
                           big_rounds=2 if opts.mtu_check else 0, deadline=deadline,
                           fallback=choice.fallback)
    out = trace.to_dict()
    out["planned_rounds"] = planned
    out["source"] = route_of(address).get("source")
    if planned < int(opts.rounds):
        out["rounds_note"] = (f"{planned} of {opts.rounds} rounds planned: that is what the check's "
                              "deadline has room for (give check a longer --timeout for more)")
    return out, tunnel_for(address)


def run(ctx: Context) -> Result:
    opts = ctx.options
    wanted = targets_of(opts, ctx.targets.peer)
    if not wanted:
        return Result.unmeasured("path-no-target", "nothing to trace: path.targets is empty (and no "
                                 "peer was asked for); set path.targets or path.include_peer", {})
    deadline = ctx.deadline - 0.15
    ranges_box: list[zoomranges.Ranges] = []
    rthread = start_guarded(lambda: ranges_box.append(load_ranges(opts, ctx.budget(2.0))), "path-ranges")
    try:
        traceroute.choose(str(opts.method)).method.close()
    except traceroute.MethodUnavailable as exc:
        return Result.unmeasured("path-no-method", f"no way to send probes here: {exc}",
                                 {"method": opts.method})
    boxes: list[list[tuple[dict[str, Any], str | None]]] = [[] for _ in wanted]
    threads = [start_guarded(lambda box=box, role=role, host=host: box.append(_trace_one(role, host, opts,
                                                                                         deadline)),
                             f"path-{i}") for i, ((role, host), box) in enumerate(zip(wanted, boxes, strict=True))]
    for t in threads:
        t.join(max(0.0, ctx.remaining()))
    rthread.join(max(0.0, ctx.remaining()))
    ranges = ranges_box[0] if ranges_box else zoomranges.Ranges()
    paths = []
    for (role, host), box, t in zip(wanted, boxes, threads, strict=True):
        if not box:
            err = getattr(t, "error", None)
            return Result.unmeasured("path-incomplete", f"tracing {host} did not finish"
                                     + (f": {err}" if err else " before the deadline"), {"target": host})
        trace, tunnel = box[0]
        if trace.get("error"):
            return Result.unmeasured("path-unresolved", f"{host}: {trace['error']}", {"target": host})
        paths.append(conclude_one(role, host, trace, tunnel, ranges, opts))
    return verdict(paths, ranges, int(opts.rounds))


PROBE = Probe("path", "The path to Zoom hop by hop: where loss and delay begin", run, timeout_s=5.0,
              options=Options, validate=validate, description=described(__doc__))
