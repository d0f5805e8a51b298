"""Hop-by-hop path measurement (mtr style): rounds of probes with increasing TTL, per-hop stats.

Why rounds with every TTL in flight together: a classic traceroute waits for hop 1 before it
asks hop 2, so 10 rounds to 20 hops take minutes; mtr sends the whole ladder at once and so do
we (one round = every TTL sent back to back, then one shared wait). Each hop then gets one probe
per round, which is what makes per-hop loss comparable across hops.

Why a round interval of about a second by default: routers limit the ICMP errors they send per
destination (Linux: ``net.ipv4.icmp_ratelimit`` = one per second after a burst of six, the same
order on Cisco and Juniper). Faster rounds would make healthy routers look lossy. The ``path``
probe inside ``check`` sends only a few rounds, which the burst absorbs.

How each OS sends and hears the probes lives in its own module (``trace_linux``, ``trace_icmp``
for macOS, ``trace_windows``); they all implement :class:`Method`. This module owns the rounds,
the hop table and the statistics, and never touches a socket itself.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

# What one probe's answer was.
TIME_EXCEEDED = "time-exceeded"  # a router on the way answered (ICMP type 11)
REACHED = "reached"  # the destination itself answered (echo reply, port unreachable, SYN-ACK/RST)
UNREACHABLE = "unreachable"  # someone said "cannot get there" (ICMP 3, not from the destination)
FRAG_NEEDED = "frag-needed"  # a router could not forward it without fragmenting (ICMP 3/4, MTU)

METHODS = ("udp", "icmp", "tcp")
DEFAULT_MAX_TTL = 30
PROBE_SIZE = 64  # bytes of IP packet for the loss/latency rounds (mtr's default is 64 too)


@dataclass
class Reply:
    """One probe's answer (or its absence: ``address`` None, ``kind`` "")."""

    ttl: int
    address: str | None
    rtt_ms: float | None
    kind: str
    code: int | None = None  # the ICMP code for UNREACHABLE
    mtu: int | None = None  # next-hop MTU for FRAG_NEEDED (0: the router did not say)


class Method(Protocol):
    """One way to send a round of probes and hear the answers (per OS, per protocol)."""

    name: str

    def round(self, dest: str, ttls: Sequence[int], wait: float, size: int) -> list[Reply]:
        """Send one probe per TTL (all at once), wait up to ``wait`` seconds for the answers,
        return the answers heard (at most one per TTL)."""
        ...

    def close(self) -> None: ...


class MethodUnavailable(Exception):
    """This method cannot run here (the OS refused the socket): the reason says why."""


@dataclass
class Hop:
    """Everything heard at one TTL over all rounds."""

    ttl: int
    sent: int = 0
    addresses: Counter[str] = field(default_factory=Counter)
    rtts: list[float] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    mtu: int | None = None
    mtu_from: str | None = None  # the router that said "fragmentation needed"
    big_sent: int = 0  # full-size probes (the MTU round)
    big_answered: int = 0

    @property
    def received(self) -> int:
        return sum(self.kinds.values())

    @property
    def loss_pct(self) -> float | None:
        return None if not self.sent else round(100.0 * (self.sent - self.received) / self.sent, 1)

    def to_dict(self) -> dict[str, Any]:
        r = sorted(self.rtts)
        out: dict[str, Any] = {
            "ttl": self.ttl, "sent": self.sent, "received": self.received, "loss_pct": self.loss_pct,
            "addresses": [a for a, _ in self.addresses.most_common()],
            "answers": dict(self.addresses.most_common()),
            "kinds": dict(self.kinds),
            "rtt_ms": rtt_stats(self.rtts) if r else None,
        }
        if self.mtu is not None:
            out["mtu"] = self.mtu
            out["mtu_from"] = self.mtu_from
        if self.big_sent:
            out["big"] = {"sent": self.big_sent, "answered": self.big_answered}
        return out


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty sequence."""
    k = max(0, min(len(sorted_values) - 1, math.ceil(pct / 100.0 * len(sorted_values)) - 1))
    return sorted_values[k]


def rtt_stats(rtts: Sequence[float]) -> dict[str, float]:
    """min/median/p95/max/avg and jitter (mean difference between consecutive samples, as
    mtr's "Javg" and RTP's jitter read it: what a media stream feels)."""
    r = sorted(rtts)
    jit = [abs(b - a) for a, b in zip(rtts, rtts[1:], strict=False)]
    return {"min": round(r[0], 2), "median": round(statistics.median(r), 2),
            "p95": round(percentile(r, 95), 2), "max": round(r[-1], 2),
            "avg": round(statistics.fmean(r), 2),
            "jitter": round(statistics.fmean(jit), 2) if jit else 0.0}


@dataclass
class Trace:
    """The whole measurement: hops 1..end, what ran and why, and how it ended."""

    target: str
    address: str
    method: str
    method_why: str
    hops: list[Hop] = field(default_factory=list)
    rounds: int = 0
    reached_ttl: int | None = None  # the TTL at which the destination answered
    ended_ttl: int | None = None  # the TTL at which someone said "unreachable"
    interrupted: bool = False
    cut_by_deadline: bool = False
    seconds: float = 0.0
    probe_size: int = PROBE_SIZE
    big_size: int | None = None
    local_mtu: int | None = None  # this device's own MTU towards the destination (a tunnel's is lower)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "address": self.address, "method": self.method,
                "method_why": self.method_why, "rounds": self.rounds,
                "reached": self.reached_ttl is not None, "reached_ttl": self.reached_ttl,
                "ended_ttl": self.ended_ttl, "interrupted": self.interrupted,
                "cut_by_deadline": self.cut_by_deadline, "seconds": round(self.seconds, 2),
                "probe_size": self.probe_size, "big_size": self.big_size, "local_mtu": self.local_mtu,
                "errors": self.errors[:10], "hops": [h.to_dict() for h in self.hops]}


def _last_ttl(trace: Trace, max_ttl: int) -> int:
    return trace.reached_ttl or trace.ended_ttl or max_ttl


def _record(trace: Trace, replies: Sequence[Reply], ttls: Sequence[int], big: bool) -> None:
    by_ttl = {x.ttl: x for x in replies if x.address is not None or x.kind}
    for x in by_ttl.values():  # where the path ends decides which hops count at all
        if x.kind == REACHED and (trace.reached_ttl is None or x.ttl < trace.reached_ttl):
            trace.reached_ttl = x.ttl
        if x.kind == UNREACHABLE and trace.reached_ttl is None and (
                trace.ended_ttl is None or x.ttl < trace.ended_ttl):
            trace.ended_ttl = x.ttl
    last = _last_ttl(trace, max(ttls))
    while len(trace.hops) < last:
        trace.hops.append(Hop(len(trace.hops) + 1))
    del trace.hops[last:]
    for ttl in ttls:
        if ttl > last:
            continue
        hop = trace.hops[ttl - 1]
        r = by_ttl.get(ttl)
        if big:
            hop.big_sent += 1
            if r is not None and r.kind in (TIME_EXCEEDED, REACHED):
                hop.big_answered += 1
            if r is not None and r.kind == FRAG_NEEDED and r.mtu:
                hop.mtu = r.mtu if hop.mtu is None else min(hop.mtu, r.mtu)
                hop.mtu_from = r.address
            continue
        hop.sent += 1
        if r is None:
            continue
        if r.kind == FRAG_NEEDED and r.mtu:
            hop.mtu, hop.mtu_from = r.mtu, r.address
        if r.address:
            hop.addresses[r.address] += 1
        hop.kinds[r.kind] += 1
        if r.rtt_ms is not None:
            hop.rtts.append(r.rtt_ms)


def run(method: Method, target: str, address: str, *, why: str, rounds: int = 10,
        interval: float = 1.0, wait: float = 1.0, max_ttl: int = DEFAULT_MAX_TTL,
        size: int = PROBE_SIZE, big_size: int | None = None, big_rounds: int = 0,
        deadline: float | None = None, on_round: Callable[[Trace], None] | None = None,
        fallback: tuple[Method, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep) -> Trace:
    """``rounds`` rounds (0 = until interrupted) to ``address``, then ``big_rounds`` full-size
    rounds (``big_size`` bytes, DF set) that find where the MTU drops.

    ``fallback`` (a method and why): when the destination did not answer the first two rounds,
    start over with it (UDP to a closed port is dropped by many firewalls; TCP 443 to a web
    host is answered). Stops early, keeping what it has, at ``deadline`` (monotonic time: ``cut_by_deadline``) or
    on Ctrl-C (``interrupted``). ``on_round`` sees the trace after every round (the live table).
    """
    trace = Trace(target, address, method.name, why, probe_size=size,
                  big_size=big_size if big_rounds else None)
    t0 = clock()
    local = getattr(method, "local_mtu", None)
    if big_size and callable(local):
        # Full-size means what this device can send: its own link's MTU caps the probe, so
        # the MTU rounds find drops beyond it (a tunnel's lower MTU is this device's choice).
        with contextlib.suppress(OSError):
            trace.local_mtu = local(address)
        if trace.local_mtu:
            big_size = min(big_size, trace.local_mtu)
            trace.big_size = big_size
    plan = [False] * rounds + [True] * (big_rounds if big_size else 0) if rounds else []
    i = 0
    try:
        while rounds == 0 or i < len(plan):
            big = plan[i] if rounds else False
            start = clock()
            # A round whose wait the deadline would shorten is not sent: answers later than the
            # cut would count as loss that never happened.
            if deadline is not None and deadline - start < wait:
                trace.cut_by_deadline = True
                break
            ttls = list(range(1, _last_ttl(trace, max_ttl) + 1))
            try:
                replies = method.round(address, ttls, wait, big_size if big and big_size else size)
            except OSError as exc:
                trace.errors.append(f"round {i + 1}: {type(exc).__name__}: {exc}"[:200])
                replies = []
            _record(trace, replies, ttls, big)
            if not big:
                trace.rounds += 1
            i += 1
            # Two silent rounds, not one: loss can take a single round's answer from beyond a hop.
            if i == min(2, rounds or 2) and fallback is not None and trace.reached_ttl is None \
                    and trace.ended_ttl is None:
                last = max((h.ttl for h in trace.hops if h.received), default=0)
                old = method.name
                method.close()
                method, why2 = fallback
                fallback = None
                trace.method = method.name
                trace.method_why = (f"{why2} (the destination did not answer {old} probes; the last "
                                    f"hop that did was {last or 'none'})")
                trace.hops.clear()
                trace.rounds = 0
                i = 0
            if on_round is not None:
                on_round(trace)
            if rounds and i >= len(plan):
                break
            pause = interval - (clock() - start)
            if deadline is not None and clock() + max(0.0, pause) + wait > deadline:
                trace.cut_by_deadline = True
                break
            if pause > 0:
                sleep(pause)
    except KeyboardInterrupt:
        trace.interrupted = True
    finally:
        trace.seconds = clock() - t0
        method.close()
        if fallback is not None:
            fallback[0].close()
    return trace


@dataclass
class Choice:
    """The method to run, why, and what to fall back to if the destination ignores it."""

    method: Method
    why: str
    fallback: tuple[Method, str] | None = None


def choose(prefer: str = "auto", *, platform: str = sys.platform, port: int = 33434,
           first: str = "udp") -> Choice:
    """The method to use here and why; raises MethodUnavailable with every reason when none can.

    auto: Linux -> UDP (IP_RECVERR: no privilege, the protocol Zoom media uses), falling back
    to TCP 443 when the destination ignores UDP (``first="tcp"`` swaps the two: what the check
    does for Zoom's web hosts), then ICMP datagram sockets (where
    net.ipv4.ping_group_range allows); macOS -> ICMP datagram sockets (no IP_RECVERR there);
    Windows -> IcmpSendEcho2 (iphlpapi, as WinMTR does).
    """
    if prefer not in ("auto", *METHODS):
        raise MethodUnavailable(f"unknown method {prefer!r}: use auto, udp, icmp or tcp")
    if platform == "win32":
        if prefer not in ("auto", "icmp"):
            raise MethodUnavailable(f"{prefer} is not available on Windows without administrator "
                                    "rights; use --method icmp (IcmpSendEcho2)")
        from roomprobe.net import trace_windows

        return Choice(trace_windows.IcmpSendEcho(), "IcmpSendEcho2 from iphlpapi: ICMP echo with a "
                      "TTL, no administrator rights needed (as WinMTR does)")
    if platform == "darwin":
        if prefer not in ("auto", "icmp"):
            raise MethodUnavailable(f"{prefer} needs IP_RECVERR (Linux only); on macOS use "
                                    "--method icmp (unprivileged ICMP datagram socket)")
        from roomprobe.net import trace_icmp

        try:
            darwin = trace_icmp.DarwinIcmp()
        except OSError as exc:
            raise MethodUnavailable(f"the ICMP datagram socket was refused: {exc.strerror or exc}") from None
        return Choice(darwin, "ICMP datagram socket: no administrator rights needed on macOS")
    from roomprobe.net import trace_linux

    reasons: list[str] = []
    # ``first``: the caller's guess of what the destination answers (a web host: tcp).
    order = ([first] + [m for m in ("udp", "tcp", "icmp") if m != first]) if prefer == "auto" else [prefer]
    made: list[tuple[Method, str]] = []
    for name in order:
        try:
            linux_method = trace_linux.make(name, port=port)
        except MethodUnavailable as exc:
            reasons.append(f"{name}: {exc}")
            continue
        made.append((linux_method, trace_linux.WHY[name]))
        if prefer != "auto" or len(made) == 2:
            break
    if not made:
        raise MethodUnavailable("; ".join(reasons))
    method, why = made[0]
    if reasons:
        why += " (" + "; ".join(reasons) + ")"
    return Choice(method, why, made[1] if len(made) > 1 else None)
