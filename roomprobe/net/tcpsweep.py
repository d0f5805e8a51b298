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
    sweep = _Sweep(endpoints, est, tries, watch, progress)
    try:
        while sweep.busy():
            sweep.launch(concurrency)
            sweep.take_answers()
            now = time.monotonic()
            sweep.expire_tries(now)
            sweep.end_watches(now)
    finally:
        sweep.close()
    return sweep.results


class _Sweep:
    """The event loop's state: the rooms in flight (their tries, oldest try first), the open
    connections being watched (in open order), and one Attempt per endpoint."""

    def __init__(self, endpoints: Sequence[tuple[str, int]], est: RttEstimator, tries: int,
                 watch: float, progress: Callable[[int], None] | None) -> None:
        self.endpoints, self.est, self.tries, self.watch = endpoints, est, tries, watch
        self.progress = progress
        self.results = [Attempt() for _ in endpoints]
        self.sel = selectors.DefaultSelector()
        self.inflight: OrderedDict[int, _Flight] = OrderedDict()  # room -> its tries, in last-try order
        self.watching: OrderedDict[int, tuple[socket.socket, float]] = OrderedDict()  # room -> watch end
        self.sources: dict[int, str | None] = {}
        self.nxt = self.done = 0

    def busy(self) -> bool:
        return self.nxt < len(self.endpoints) or bool(self.inflight or self.watching)

    def launch(self, concurrency: int) -> None:
        """Start the next rooms while fewer than ``concurrency`` are in flight or watched."""
        while self.nxt < len(self.endpoints) and len(self.inflight) + len(self.watching) < concurrency:
            i = self.nxt
            self.nxt += 1
            self.results[i].started = time.monotonic()
            self.inflight[i] = _Flight([], self.results[i].started)
            s = self.start_try(i, first=True)
            if s is not None:
                self.inflight[i].socks.append(s)

    def take_answers(self) -> None:
        """Wait until the oldest try or watch is due, judging every connect that ends meanwhile."""
        wait = self.est.wait()
        fronts = [f.try_started + wait for f in (next(iter(self.inflight.values()), None),) if f]
        fronts += [w[1] for w in (next(iter(self.watching.values()), None),) if w]
        pause = max(0.0, min(fronts) - time.monotonic()) if fronts else 0.0
        # (select() on Windows refuses empty sets: with nothing registered, nothing to wait for)
        for key, _ in (self.sel.select(pause) if self.sel.get_map() else ()):
            phase, i, t_try = key.data
            ready = key.fileobj
            assert isinstance(ready, socket.socket)
            if phase == "watch":
                after = after_open(ready)
                if after is not None:
                    self.watching.pop(i, None)
                    self.watched(i, ready, after)
            elif i in self.inflight:  # (else another try of this room already ended it)
                self.connect_ended(i, ready, t_try)

    def connect_ended(self, i: int, ready: socket.socket, t_try: float) -> None:
        code = ready.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code in PENDING:
            return
        n_tries = len(self.inflight[i].socks)
        self.drop_flight(i, keep=ready)
        self.sel.unregister(ready)
        self.judged(i, ready, code, time.monotonic() - t_try)
        if n_tries > 1:  # answered on the retransmission (or late, on the first try)
            self.results[i].extra["tries"] = n_tries

    def expire_tries(self, now: float) -> None:
        """Every try waits the same: from the front (oldest try), a silent try gets one more
        SYN from a new socket (the old one listens on), or the room is "no answer"."""
        wait = self.est.wait()
        while self.inflight:
            i, f = next(iter(self.inflight.items()))
            if f.try_started + wait > now:
                break
            if len(f.socks) < self.tries:  # (each try waits at most timeout / tries)
                f.try_started = now
                self.inflight.move_to_end(i)
                s = self.start_try(i, first=False)
                if s is not None:
                    f.socks.append(s)
                    continue
                if i not in self.inflight:  # the new try ended at once (judged)
                    continue
            self.silent(i, self.inflight.pop(i), now)

    def silent(self, i: int, f: _Flight, now: float) -> None:
        """Every try of room ``i`` stayed silent: a measured "no answer", with what it was based on."""
        for s in f.socks:
            self.sel.unregister(s)
        self.sources.pop(i, None)
        a = self.results[i]
        a.state, a.error = "filtered", "timeout"
        a.waited_s = round(now - a.started, 3)
        a.ms = round(a.waited_s * 1000, 1)
        a.extra = {"tries": len(f.socks), **self.est.facts()}
        for s in f.socks[1:]:
            s.close()
        self.finish(f.socks[0] if f.socks else None)

    def end_watches(self, now: float) -> None:
        """Watch ends are in open order: the peer held the connection, nothing to add."""
        while self.watching:
            i, (s, end) = next(iter(self.watching.items()))
            if end > now:
                break
            self.watching.popitem(last=False)
            self.watched(i, s, None)

    def start_try(self, i: int, first: bool) -> socket.socket | None:
        """A new socket and SYN for room ``i``; None when it ended at once (judged then) or,
        for a retransmission, when no socket could be had (the earlier try stands)."""
        addr, port = self.endpoints[i]
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        try:
            s = socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:
            if not first:
                return None
            self.drop_flight(i)
            self.results[i].state, self.results[i].error = "error", errname(exc.errno or 0)
            self.finish(None)
            return None
        icmperr.enable(s)
        s.setblocking(False)
        t_try = time.monotonic()
        code = s.connect_ex((addr, port))
        if i not in self.sources:
            self.sources[i] = source_of(s)
        if code in PENDING:
            self.sel.register(s, selectors.EVENT_WRITE, ("connect", i, t_try))
            return s
        self.drop_flight(i)
        self.judged(i, s, code, time.monotonic() - t_try)
        return None

    def drop_flight(self, i: int, keep: socket.socket | None = None) -> None:
        """Room ``i`` has its verdict: close the sockets of its other tries."""
        f = self.inflight.pop(i, None)
        if f is None:
            return
        for s in f.socks:
            if s is not keep:
                self.sel.unregister(s)
                s.close()

    def judged(self, i: int, sock: socket.socket | None, code: int, rtt_s: float) -> None:
        """The connect ended with SO_ERROR ``code``: record the verdict; watch it if open."""
        a = self.results[i]
        icmp = icmperr.read(sock) if sock is not None and code else None
        if icmp is not None:
            icmp["target"] = self.endpoints[i][0]
        verdict = judge(code, icmp, self.sources.pop(i, None))
        a.state, a.error = verdict.pop("state"), verdict.pop("error")
        a.extra = verdict
        a.waited_s = round(time.monotonic() - a.started, 3)
        a.ms = round(a.waited_s * 1000, 1)
        if a.state in ANSWERED:
            self.est.sample(rtt_s)
        if a.state == "open" and "after" not in verdict and sock is not None and self.watch > 0:
            self.sel.register(sock, selectors.EVENT_READ, ("watch", i, 0.0))
            self.watching[i] = (sock, time.monotonic() + self.watch)
            a.extra["watched_s"] = 0.0
            return
        self.finish(sock)

    def finish(self, sock: socket.socket | None) -> None:
        if sock is not None:
            sock.close()
        self.done += 1
        if self.progress is not None:
            self.progress(self.done)

    def watched(self, i: int, sock: socket.socket, after: str | None) -> None:
        extra = self.results[i].extra
        extra["after"] = after
        extra["watched_s"] = round(time.monotonic() - self.results[i].started - self.results[i].waited_s, 3)
        if after == "reset":
            extra["detail"] = "the handshake completed, then the peer reset the connection"
        elif after == "closed":
            extra["detail"] = "the handshake completed, then the peer closed the connection"
        self.sel.unregister(sock)
        self.finish(sock)

    def close(self) -> None:
        for f in self.inflight.values():
            for s in f.socks:
                s.close()
        for s, _end in self.watching.values():
            s.close()
        self.sel.close()


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
