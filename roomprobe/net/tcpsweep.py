"""Many TCP connects at once, with silence judged from the round trips measured (nmap's way).

Why: a sweep of a thousand rooms used to give every silent room the whole ``--timeout``
(2.5 s), while ``nmap -T4`` decides "filtered" from the round-trip times it measures. Here the
rooms that answer (a SYN-ACK or a reset, each an unambiguous sample: every try is its own
socket) teach the estimator of RFC 6298 / nmap: ``srtt`` and ``rttvar``; a try that stays
silent for ``srtt + 4 * rttvar`` (at least ``FLOOR_S``, at most half the ``--timeout``) gets
ONE retransmission: a second SYN from a new socket, while the first stays open (a late answer
to it still counts). Only when both stay silent is the room "no answer" (``filtered``,
``error`` "timeout"), with the tries, the per-try wait and the RTT it was based on in the
evidence. Before any room has answered, a try waits ``INITIAL_S`` (RFC 6298's initial RTO).

ICMP errors are not RTT samples: a router's host-unreachable comes after its own ARP gave up
(seconds), and ICMP is rate-limited by every sender; neither measures the path's round trip.

An open connection is then watched ``watch`` seconds (tcpconnect.WATCH_S) for an at-once reset
or close (``after``). The watch runs in the same event loop as every other connect: it overlaps
the silent rooms' tries (which end about 2 x the per-try wait after their start), so it adds
little to a sweep's wall time; it still holds a ``--concurrency`` slot so descriptors stay
bounded.

One thread, non-blocking sockets, ``selectors`` (select() on Windows, so at most ~500
descriptors there). No Unix-only API: ``resource`` is imported only where it exists.
"""

from __future__ import annotations

import selectors
import socket
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from roomprobe.net import icmperr
from roomprobe.net.tcpconnect import PENDING, WATCH_S, after_open, errname, judge, source_of

FLOOR_S = 0.25  # the shortest wait per try (nmap -T4: 0.1 s; kept higher for loaded hosts)
INITIAL_S = 1.0  # per try, before any room has answered (RFC 6298's initial RTO)
TRIES = 2  # one retransmission before "no answer", as nmap does at -T4 for a quiet network
ANSWERED = ("open", "refused")  # verdicts whose timing is a round trip to the room


@dataclass
class Attempt:
    """One room's connect outcome, in tcpconnect.connect_state's shape."""

    state: str = "filtered"
    error: str | None = "timeout"
    ms: float = 0.0
    started: float = 0.0
    waited_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "error": self.error, "ms": self.ms, **self.extra}


class RttEstimator:
    """srtt/rttvar of RFC 6298 (nmap's estimator too) over the rooms that answered; ``wait()``
    is how long one try waits for an answer."""

    def __init__(self, ceiling: float, floor: float = FLOOR_S, initial: float = INITIAL_S) -> None:
        self.ceiling = ceiling
        self.floor = min(floor, ceiling)
        self.initial = initial
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.samples = 0
        self._wait = min(ceiling, max(self.floor, initial))

    def sample(self, rtt: float) -> None:
        rtt = max(0.0, rtt)
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt
        self.samples += 1
        self._wait = min(self.ceiling, max(self.floor, self.srtt + 4 * self.rttvar))

    def wait(self) -> float:
        return self._wait

    def facts(self) -> dict[str, Any]:
        """What a silent room's evidence says the wait was based on."""
        return {"wait_s": round(self._wait, 3), "rtt_samples": self.samples,
                "srtt_ms": None if self.srtt is None else round(self.srtt * 1000, 2),
                "rttvar_ms": None if self.srtt is None else round(self.rttvar * 1000, 2)}


@dataclass
class _Flight:
    """A room whose connect is in flight: its sockets (one per try) and the last try's start."""

    socks: list[socket.socket]
    try_started: float


def connect_all(endpoints: Sequence[tuple[str, int]], timeout: float, concurrency: int,
                progress: Callable[[int], None] | None = None, watch: float = WATCH_S,
                rtt: RttEstimator | None = None, tries: int = TRIES) -> list[Attempt]:
    """Connect to every (address, port), at most ``concurrency`` rooms at a time; a room is
    silent ("filtered", "timeout") after ``tries`` silent tries of ``rtt.wait()`` each, never
    longer than ``timeout`` in all. Returns one Attempt per endpoint, in order.

    Each verdict is tcpconnect.judge's (the ICMP behind a failure read on Linux); an open
    connection is then watched for ``watch`` seconds for an at-once reset or close (``after``).
    """
    tries = max(1, tries)
    est = rtt if rtt is not None else RttEstimator(ceiling=timeout / tries)
    est.ceiling = min(est.ceiling, timeout / tries)
    est.floor = min(est.floor, est.ceiling)
    est._wait = min(est._wait, est.ceiling)
    results = [Attempt() for _ in endpoints]
    sel = selectors.DefaultSelector()
    inflight: OrderedDict[int, _Flight] = OrderedDict()  # room -> its tries, in last-try order
    watching: OrderedDict[int, tuple[socket.socket, float]] = OrderedDict()  # room -> watch end
    sources: dict[int, str | None] = {}
    nxt = done = 0

    def start_try(i: int, first: bool) -> socket.socket | None:
        """A new socket and SYN for room ``i``; None when it ended at once (judged then) or,
        for a retransmission, when no socket could be had (the earlier try stands)."""
        addr, port = endpoints[i]
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        try:
            s = socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:
            if not first:
                return None
            drop_flight(i)
            results[i].state, results[i].error = "error", errname(exc.errno or 0)
            finish(None)
            return None
        icmperr.enable(s)
        s.setblocking(False)
        t_try = time.monotonic()
        code = s.connect_ex((addr, port))
        if i not in sources:
            sources[i] = source_of(s)
        if code in PENDING:
            sel.register(s, selectors.EVENT_WRITE, ("connect", i, t_try))
            return s
        drop_flight(i)
        judged(i, s, code, time.monotonic() - t_try)
        return None

    def drop_flight(i: int, keep: socket.socket | None = None) -> None:
        """Room ``i`` has its verdict: close the sockets of its other tries."""
        f = inflight.pop(i, None)
        if f is None:
            return
        for s in f.socks:
            if s is not keep:
                sel.unregister(s)
                s.close()

    def judged(i: int, sock: socket.socket | None, code: int, rtt_s: float) -> None:
        """The connect ended with SO_ERROR ``code``: record the verdict; watch it if open."""
        a = results[i]
        icmp = icmperr.read(sock) if sock is not None and code else None
        if icmp is not None:
            icmp["target"] = endpoints[i][0]
        verdict = judge(code, icmp, sources.pop(i, None))
        a.state, a.error = verdict.pop("state"), verdict.pop("error")
        a.extra = verdict
        a.waited_s = round(time.monotonic() - a.started, 3)
        a.ms = round(a.waited_s * 1000, 1)
        if a.state in ANSWERED:
            est.sample(rtt_s)
        if a.state == "open" and "after" not in verdict and sock is not None and watch > 0:
            sel.register(sock, selectors.EVENT_READ, ("watch", i, 0.0))
            watching[i] = (sock, time.monotonic() + watch)
            a.extra["watched_s"] = 0.0
            return
        finish(sock)

    def finish(sock: socket.socket | None) -> None:
        nonlocal done
        if sock is not None:
            sock.close()
        done += 1
        if progress is not None:
            progress(done)

    def watched(i: int, sock: socket.socket, after: str | None) -> None:
        extra = results[i].extra
        extra["after"] = after
        extra["watched_s"] = round(time.monotonic() - results[i].started - results[i].waited_s, 3)
        if after == "reset":
            extra["detail"] = "the handshake completed, then the peer reset the connection"
        elif after == "closed":
            extra["detail"] = "the handshake completed, then the peer closed the connection"
        sel.unregister(sock)
        finish(sock)

    try:
        while nxt < len(endpoints) or inflight or watching:
            while nxt < len(endpoints) and len(inflight) + len(watching) < concurrency:
                i = nxt
                nxt += 1
                results[i].started = time.monotonic()
                inflight[i] = _Flight([], results[i].started)
                s = start_try(i, first=True)
                if s is not None:
                    inflight[i].socks.append(s)
            wait = est.wait()
            fronts = [f.try_started + wait for f in (next(iter(inflight.values()), None),) if f]
            fronts += [w[1] for w in (next(iter(watching.values()), None),) if w]
            pause = max(0.0, min(fronts) - time.monotonic()) if fronts else 0.0
            # (select() on Windows refuses empty sets: with nothing registered, nothing to wait for)
            for key, _ in (sel.select(pause) if sel.get_map() else ()):
                phase, i, t_try = key.data
                ready = key.fileobj
                assert isinstance(ready, socket.socket)
                if phase == "watch":
                    after = after_open(ready)
                    if after is not None:
                        watching.pop(i, None)
                        watched(i, ready, after)
                    continue
                if i not in inflight:  # another try of this room already ended it
                    continue
                code = ready.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code in PENDING:
                    continue
                n_tries = len(inflight[i].socks)
                drop_flight(i, keep=ready)
                sel.unregister(ready)
                judged(i, ready, code, time.monotonic() - t_try)
                if n_tries > 1:  # answered on the retransmission (or late, on the first try)
                    results[i].extra["tries"] = n_tries
            now = time.monotonic()
            wait = est.wait()
            while inflight:  # every try waits the same: expire from the front (oldest try)
                i, f = next(iter(inflight.items()))
                if f.try_started + wait > now:
                    break
                if len(f.socks) < tries:  # (each try waits at most timeout / tries)
                    f.try_started = now  # one more SYN, from a new socket; the old one listens on
                    inflight.move_to_end(i)
                    s = start_try(i, first=False)
                    if s is not None:
                        f.socks.append(s)
                        continue
                    if i not in inflight:  # the new try ended at once (judged)
                        continue
                inflight.pop(i)
                for s in f.socks:
                    sel.unregister(s)
                sources.pop(i, None)
                a = results[i]
                a.state, a.error = "filtered", "timeout"
                a.waited_s = round(now - a.started, 3)
                a.ms = round(a.waited_s * 1000, 1)
                a.extra = {"tries": len(f.socks), **est.facts()}
                for s in f.socks[1:]:
                    s.close()
                finish(f.socks[0] if f.socks else None)
            while watching:  # watch ends are in open order: the peer held it, nothing to add
                i, (s, end) = next(iter(watching.items()))
                if end > now:
                    break
                watching.popitem(last=False)
                watched(i, s, None)
    finally:
        for f in inflight.values():
            for s in f.socks:
                s.close()
        for s, _end in watching.values():
            s.close()
        sel.close()
    return results


def max_concurrency(wanted: int, per_room: int = TRIES) -> int:
    """At most ``wanted`` rooms at once, within the process's open-file limit (each room may
    hold ``per_room`` sockets: one per try) and select()'s 512 on Windows, leaving room for the
    files the rest of the run needs."""
    if sys.platform == "win32":  # no ``resource``; select() handles 512 descriptors
        return max(1, min(wanted, 500 // per_room))
    try:
        import resource  # Unix only
    except ImportError:  # an odd build without it: as on Windows
        return max(1, min(wanted, 500 // per_room))
    need = wanted * per_room + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    limit = wanted if soft == resource.RLIM_INFINITY else (soft - 64) // per_room
    return max(1, min(wanted, limit))
