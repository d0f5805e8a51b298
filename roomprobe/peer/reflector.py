"""The UDP reflector of ``roomprobe serve``: the far end of the quality probe.

It echoes each authenticated datagram with what it saw: the time it arrived (kernel timestamp),
the order it arrived in (its own reply sequence, so the client can tell upstream loss from
downstream loss) and the TOS byte (DSCP/ECN) it carried, and on request it reports per flow how
many datagrams arrived, duplicates, late (reordered) ones and the longest run of missing ones.

It listens on a customer network, so it is built not to be abused (tested in
tests/test_quality_unit.py and, replayed from the wire, tests/test_lab_listeners.py):

- nothing is answered without the session token's MAC (wrong token: silence, counted);
- a reply is never larger than its request (requests too small to hold the reply are dropped),
  so it cannot amplify; a declared length that differs from the real one is dropped;
- a session (one flow of one client's session id) is bound to the address it came from
  first (ip, port): a captured datagram replayed from anywhere else is dropped and takes no
  slot; a session id that was used once is never opened again (the reflector remembers the
  last ``max_remembered``), and a datagram that would open a session must carry a send time
  (``t_send_ns``, inside the MAC) within ``max_skew_s`` of the reflector's clock. So a replay is
  answered neither while its session lives, nor after it expired, nor after it was forgotten;
- per session: a byte cap, a packet-rate and byte-rate cap (token buckets), a lifetime cap and a
  sequence-number cap (which bounds its bitmaps); sessions at most ``max_sessions``, idle ones
  expire. Memory is therefore bounded by ``max_sessions`` x flows x ``max_seq``/8 bytes.
- one thread, one socket, a blocking receive with a short timeout: a flood costs CPU for as
  long as it lasts, and the reflector answers the next legitimate session afterwards.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

from roomprobe.core.threads import start_guarded
from roomprobe.net import udprecv
from roomprobe.peer import mediawire as mw


@dataclass(frozen=True)
class ReflectorLimits:
    """Bounds of the reflector (per session unless named otherwise)."""

    max_sessions: int = 8
    session_s: float = 120.0  # a session's lifetime from its first datagram
    idle_s: float = 15.0  # a silent session is forgotten after this
    max_bytes: int = 200 * 1000**2  # received plus sent
    max_pps: float = 4000.0
    max_bytes_per_s: float = 6_000_000.0  # 48 Mbit/s: ten times a room's video
    burst_s: float = 0.25  # the token buckets hold this many seconds of the rates
    max_seq: int = 65536  # sequence numbers above this are refused (bounds the bitmaps)
    # Freshness: a datagram opening a session must be sent within this many seconds of the
    # reflector's own clock (the two devices' clocks may differ by up to this much) ...
    max_skew_s: float = 3600.0
    # ... and a session id is opened once: the last this many are remembered (about 100 bytes
    # each), far more than legitimate checks open within max_skew_s.
    max_remembered: int = 65536


class Bucket:
    """A token bucket: ``rate`` per second, holding at most ``rate * burst_s``."""

    def __init__(self, rate: float, burst_s: float, now: float) -> None:
        self.rate, self.cap = rate, max(1.0, rate * burst_s)
        self.level, self.t = self.cap, now

    def take(self, n: float, now: float) -> bool:
        self.level = min(self.cap, self.level + (now - self.t) * self.rate)
        self.t = now
        if self.level < n:
            return False
        self.level -= n
        return True


@dataclass
class FlowState:
    """What arrived on one flow of one session."""

    seen: bytearray
    received: int = 0
    dups: int = 0
    reordered: int = 0
    highest: int = -1
    replies: int = 0
    capped: int = 0
    tos: Counter = field(default_factory=Counter)

    def note(self, seq: int, tos: int | None) -> None:
        byte, bit = divmod(seq, 8)
        if self.seen[byte] & (1 << bit):
            self.dups += 1
            return
        self.seen[byte] |= 1 << bit
        self.received += 1
        if seq < self.highest:
            self.reordered += 1
        self.highest = max(self.highest, seq)
        if tos is not None and (tos in self.tos or len(self.tos) < 16):
            self.tos[tos] += 1

    def longest_gap(self, sent: int) -> int:
        """The longest run of sequence numbers in [0, sent) that never arrived."""
        best = run = 0
        for seq in range(min(sent, len(self.seen) * 8)):
            if self.seen[seq >> 3] & (1 << (seq & 7)):
                run = 0
            else:
                run += 1
                best = max(best, run)
        return best


@dataclass
class Session:
    addr: tuple  # (ip, port) its first datagram came from: the only address it answers
    started: float
    last: float
    pps: Bucket
    bps: Bucket
    bytes: int = 0
    flows: dict[int, FlowState] = field(default_factory=dict)

    def flow(self, flow: int, max_seq: int) -> FlowState:
        if flow not in self.flows:
            self.flows[flow] = FlowState(bytearray((max_seq + 7) // 8))
        return self.flows[flow]


@dataclass
class Counters:
    """What the reflector did, for ``roomprobe serve``'s closing line and the tests."""

    echoed: int = 0
    rejected: int = 0  # not ours: wrong token, spoofed length, malformed, too small
    capped: int = 0  # over a session's caps
    refused_sessions: int = 0  # no free session slot
    replays: int = 0  # authentic but replayed: another address, a used session id, stale
    sessions: int = 0


class Reflector:
    """Bind with ``Reflector(bind, port, token)``; ``start()`` runs it in a thread, ``close()`` stops."""

    def __init__(self, bind: str, port: int, token: str,
                 limits: ReflectorLimits | None = None) -> None:
        self.key = mw.session_key(token)
        # serve --tls: only sessions granted over the authenticated HTTPS channel (POST
        # /__quality, fresh random key per session) are served; the token's own key is refused,
        # so a captured datagram says nothing about the token (grant()).
        self.require_grant = False
        self.grants: dict[bytes, tuple[bytes, float]] = {}  # session id -> (key, expiry)
        self.grant_lock = threading.Lock()
        self.limits = limits or ReflectorLimits()
        family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.sock.bind((bind, port))
        except OSError:
            self.sock.close()
            raise
        self.marks = mw.enable_receive_marks(self.sock)
        self.sock.settimeout(0.25)
        self.sessions: dict[tuple[bytes, int], Session] = {}  # (session id, flow) -> Session
        self.opened: OrderedDict[tuple[bytes, int], None] = OrderedDict()  # ids used once
        self.counters = Counters()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self._tos = -1

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def start(self) -> None:
        self.thread = start_guarded(self._loop, "reflector")

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=2)
        with contextlib.suppress(OSError):
            self.sock.close()

    def _loop(self) -> None:
        bufsize = mw.MAX_DATAGRAM + 1
        while not self.stop.is_set():
            try:
                data, anc, flags, addr = udprecv.recvmsg(self.sock, bufsize, mw.ANC_SIZE)
            except (TimeoutError, BlockingIOError, InterruptedError):
                self._expire(time.monotonic())
                continue
            except OSError:
                if self.stop.is_set():
                    return
                continue  # e.g. an ICMP error queued by an earlier send: not fatal
            try:
                self.handle(data, anc, flags, addr)
            except Exception:  # one bad datagram must never stop the reflector
                self.counters.rejected += 1

    def _expire(self, now: float) -> None:
        lim = self.limits
        for key, s in list(self.sessions.items()):
            if now - s.last > lim.idle_s or now - s.started > lim.session_s + lim.idle_s:
                del self.sessions[key]

    def _session(self, head: mw.Head, addr: tuple, now: float, wall_ns: int) -> Session | None:
        """The session this authentic datagram belongs to, or None (dropped, counted).

        A session is one flow of one session id (the quality probe sends each flow from its
        own socket), bound to the address of its first datagram. A replay of a captured
        datagram (same id and flow, from anywhere else, or after the session ended) gets no
        answer and takes no slot."""
        key = (head.session, head.flow)
        source = tuple(addr[:2])
        s = self.sessions.get(key)
        if s is not None:
            if s.addr != source:
                self.counters.replays += 1
                return None
            return s
        lim = self.limits
        if key in self.opened or abs(wall_ns - head.t_send_ns) > lim.max_skew_s * 1e9:
            self.counters.replays += 1  # a used session id, or not sent recently
            return None
        if len(self.sessions) >= lim.max_sessions:
            self._expire(now)
            if len(self.sessions) >= lim.max_sessions:
                self.counters.refused_sessions += 1
                return None
        s = Session(source, now, now, Bucket(lim.max_pps, lim.burst_s, now),
                    Bucket(lim.max_bytes_per_s, lim.burst_s, now))
        self.sessions[key] = s
        self.opened[key] = None
        while len(self.opened) > lim.max_remembered:
            self.opened.popitem(last=False)
        self.counters.sessions += 1
        return s

    def grant(self, ttl_s: float | None = None) -> tuple[bytes, bytes]:
        """A new session (id, key) for a client that presented the token over HTTPS; valid for a
        session's lifetime. At most 4 x max_sessions grants are kept (the oldest go first)."""
        import os

        sid, key = os.urandom(8), os.urandom(32)
        ttl = ttl_s if ttl_s is not None else self.limits.session_s + self.limits.idle_s
        with self.grant_lock:
            now = time.monotonic()
            for old in [k for k, (_key, end) in self.grants.items() if end < now]:
                del self.grants[old]
            while len(self.grants) >= 4 * self.limits.max_sessions:
                del self.grants[next(iter(self.grants))]
            self.grants[sid] = (key, now + ttl)
        return sid, key

    def _key_for(self, data: bytes) -> bytes | None:
        """The MAC key of this datagram's session: a granted one, else (without TLS) the
        token's; None when the reflector must not answer it."""
        sid = data[8:16]  # HEAD: magic(2) version kind flow tos length(2), then the session id
        with self.grant_lock:
            granted = self.grants.get(sid)
        if granted is not None and granted[1] >= time.monotonic():
            return granted[0]
        return None if self.require_grant else self.key

    def handle(self, data: bytes, anc: list, flags: int, addr: tuple) -> None:
        """Answer one datagram (or drop it); public so the tests can drive it directly."""
        now = time.monotonic()
        recv_ns = mw.stamp_from_ancillary(anc) or time.time_ns()
        if flags & getattr(socket, "MSG_TRUNC", 0) or len(data) > mw.MAX_DATAGRAM:
            self.counters.rejected += 1
            return
        key = self._key_for(data)
        head = mw.open_head(key, data, mw.HEAD.size) if key is not None else None
        need = {mw.KIND_ECHO: mw.ECHO_LEN, mw.KIND_STATS: mw.STATS_LEN}
        if key is None or head is None or head.kind not in need or len(data) < need[head.kind] \
                or head.flow not in mw.FLOWS:
            self.counters.rejected += 1
            return
        s = self._session(head, addr, now, time.time_ns())
        if s is None:
            return
        lim = self.limits
        flow = s.flow(head.flow, lim.max_seq)
        over = (now - s.started > lim.session_s or s.bytes + 2 * len(data) > lim.max_bytes
                or head.seq >= lim.max_seq or not s.pps.take(1, now)
                or not s.bps.take(2 * len(data), now))
        s.last = now
        if over:
            flow.capped += 1
            self.counters.capped += 1
            return
        s.bytes += 2 * len(data)
        tos = mw.tos_from_ancillary(anc)
        if head.kind == mw.KIND_ECHO:
            flow.note(head.seq, tos)
            flow.replies += 1
            body = mw.Head(mw.KIND_ECHO_REPLY, head.flow, head.tos, len(data), head.session,
                           head.seq, head.t_send_ns).pack()
            send_ns = time.time_ns()
            body += mw.ECHO_EXTRA.pack(recv_ns, send_ns, flow.replies, 0xFF if tos is None else tos,
                                       0 if tos is None else 1, 0)
        else:
            pairs = flow.tos.most_common(4)
            pairs += [(0, 0)] * (4 - len(pairs))
            body = mw.Head(mw.KIND_STATS_REPLY, head.flow, head.tos, len(data), head.session,
                           head.seq, head.t_send_ns).pack()
            body += mw.STATS_EXTRA.pack(flow.received, flow.dups, flow.reordered,
                                        flow.longest_gap(head.seq), flow.replies, flow.capped,
                                        *[x for p in pairs for x in p])
        self._mark(head.tos)
        reply = mw.seal(key, body, len(data))  # same size as the request: no amplification
        try:
            self.sock.sendto(reply, addr)
            self.counters.echoed += 1
        except OSError:
            pass

    def _mark(self, tos: int) -> None:
        if tos != self._tos:
            mw.set_tos(self.sock, tos)
            self._tos = tos

    def memory_bound(self) -> int:
        """The most bytes the session bitmaps can hold (for the hostile-client test)."""
        return self.limits.max_sessions * len(mw.FLOWS) * (self.limits.max_seq + 7) // 8
