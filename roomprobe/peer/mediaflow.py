"""Send call-shaped UDP flows to a ``roomprobe serve`` reflector and measure them per direction.

An audio-like flow (one small packet every 20 ms) and a video-like flow (a burst of up to
1200-byte packets per frame) run together from their own sockets, each marked with its DSCP.
Every reply carries the reflector's receive and send stamps, its own reply sequence and the TOS
byte the request arrived with, so upstream and downstream are told apart:

- upstream loss/duplicates/reordering/longest gap: counted by the reflector, asked for at the end
  (a STATS request); upstream jitter from (our send stamp, its receive stamp);
- downstream: gaps, repeats and order in the reflector's reply sequence as we receive it;
  downstream jitter from (its send stamp, our kernel receive stamp);
- RTT per reply, less the reflector's own holding time (as irtt does).

Also the path MTU (``probe_mtu``): DF-flagged echoes of decreasing size; "fragmentation needed"
shows as EMSGSIZE and a lower IP_MTU (Linux), and its absence while large echoes vanish is a
black hole.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import os
import selectors
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from roomprobe.net import udprecv
from roomprobe.peer import mediastats as ms
from roomprobe.peer import mediawire as mw


@dataclass(frozen=True)
class FlowSpec:
    """One flow: ``packets`` datagrams of ``size`` bytes every ``interval_s``."""

    name: str
    flow: int
    dscp: int
    size: int
    interval_s: float
    packets: int = 1


@dataclass
class Reply:
    seq: int
    t_send: int
    r_recv: int
    r_send: int
    r_seq: int
    r_tos: int | None
    t_recv: int
    tos: int | None


@dataclass
class FlowRecord:
    spec: FlowSpec
    sent: int = 0
    send_errors: int = 0
    replies: list[Reply] = field(default_factory=list)
    stats: dict[str, Any] | None = None
    marks_known: bool = False


class MediaError(Exception):
    """The flows could not be set up (no socket, no route): ``stage`` says where."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _recv(sock: socket.socket, key: bytes) -> tuple[mw.Head, bytes, int, int | None] | None:
    data, anc, _flags, _addr = udprecv.recvmsg(sock, mw.MAX_DATAGRAM + 1, mw.ANC_SIZE)
    t_recv = mw.stamp_from_ancillary(anc) or time.time_ns()
    if len(data) < mw.HEAD.size:
        return None
    kind = data[3]
    if kind not in (mw.KIND_ECHO_REPLY, mw.KIND_STATS_REPLY):
        return None
    head = mw.open_head(key, data, mw.reply_body_len(kind))
    if head is None:
        return None
    return head, data, t_recv, mw.tos_from_ancillary(anc)


def open_session(host: str, port: int, token: str, pin: str | None, timeout: float,
                 ) -> tuple[bytes, bytes]:
    """A reflector session granted over HTTPS (``POST /__quality`` to ``serve --tls``, the
    certificate pinned, or unpinned when ``pin`` is None by the user's choice): (id, key).

    Why: with TLS the reflector serves only such sessions, so no datagram is keyed by the token
    (a captured MAC cannot be used to guess a weak token offline). MediaError when refused."""
    import json

    from roomprobe.peer.speed import TOKEN_HEADER
    from roomprobe.peer.tls import PinMismatch, PinnedHTTPSConnection

    conn = PinnedHTTPSConnection(host, port, timeout=timeout, pin=pin)
    try:
        conn.request("POST", "/__quality", body=b"", headers={TOKEN_HEADER: token})
        resp = conn.getresponse()
        data = resp.read(4096)
    except PinMismatch as exc:
        raise MediaError("tls-pin", str(exc)) from None
    except (OSError, http.client.HTTPException) as exc:
        raise MediaError("session", f"could not open a session over HTTPS: {type(exc).__name__}: "
                                    f"{exc}") from None
    finally:
        conn.close()
    if resp.status == 403:
        raise MediaError("session", "the peer rejected our session token (check --peer-token)")
    try:
        got = json.loads(data)
        return bytes.fromhex(got["session"]), bytes.fromhex(got["key"])
    except (ValueError, KeyError, TypeError):
        raise MediaError("session", f"the peer answered HTTP {resp.status} without a session "
                                    "(a roomprobe serve older than this client?)") from None


def run_flows(host: str, port: int, token: str, specs: list[FlowSpec], duration_s: float,
              deadline: float, grant: tuple[bytes, bytes] | None = None) -> dict[str, FlowRecord]:
    """Run ``specs`` together for ``duration_s`` (never past ``deadline``, a monotonic time);
    in the granted session (id, key) when given, else keyed by the token."""
    key = grant[1] if grant else mw.session_key(token)
    session = grant[0] if grant else os.urandom(8)
    sel = selectors.DefaultSelector()
    records: dict[str, FlowRecord] = {}
    socks: dict[str, socket.socket] = {}
    try:
        for spec in specs:
            try:
                s = socket.socket(_family(host), socket.SOCK_DGRAM)
            except OSError as exc:
                raise MediaError("socket", f"cannot open a UDP socket: {exc.strerror or exc}") from None
            socks[spec.name] = s
            rec = FlowRecord(spec)
            # Both: the socket asked for the TOS byte, and this OS's receive call can deliver it.
            rec.marks_known = mw.enable_receive_marks(s) and udprecv.marks()
            mw.set_tos(s, spec.dscp << 2)
            try:
                s.connect((host, port))
            except OSError as exc:
                raise MediaError("connect", f"no route to {host}:{port}: {exc.strerror or exc}") from None
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, spec.name)
            records[spec.name] = rec
        start = time.monotonic()
        end = min(start + duration_s, deadline - 1.0)
        due = {spec.name: start for spec in specs}
        while True:
            now = time.monotonic()
            if now >= end:
                break
            for spec in specs:
                if now >= due[spec.name]:
                    _send_tick(socks[spec.name], key, session, spec, records[spec.name])
                    due[spec.name] += spec.interval_s
                    if due[spec.name] < now:  # we fell behind (a busy CPU): skip, don't burst
                        due[spec.name] = now + spec.interval_s
            wait = max(0.0, min(min(due.values()), end) - time.monotonic())
            _drain(sel, key, records, wait)
        # Let the last replies come home: three times the worst RTT seen, 0.2..1 s.
        rtts = [(r.t_recv - r.t_send) / 1e9 for rec in records.values() for r in rec.replies]
        linger = min(1.0, max(0.2, 3 * max(rtts, default=0.2)), max(0.0, deadline - time.monotonic() - 0.8))
        stop = time.monotonic() + linger
        while time.monotonic() < stop:
            _drain(sel, key, records, stop - time.monotonic())
        for spec in specs:
            _ask_stats(socks[spec.name], sel, key, session, spec, records, deadline)
    finally:
        sel.close()
        for s in socks.values():
            s.close()
    return records


def _send_tick(sock: socket.socket, key: bytes, session: bytes, spec: FlowSpec, rec: FlowRecord) -> None:
    for _ in range(spec.packets):
        t = time.time_ns()
        body = mw.Head(mw.KIND_ECHO, spec.flow, spec.dscp << 2, spec.size, session, rec.sent, t).pack()
        rec.sent += 1
        try:
            sock.send(mw.seal(key, body, spec.size))
        except (BlockingIOError, InterruptedError):
            rec.send_errors += 1  # the socket buffer is full: that packet is lost at our end
        except OSError:
            rec.send_errors += 1  # ICMP unreachable reported back, or no route: counted, not fatal


def _drain(sel: selectors.BaseSelector, key: bytes, records: dict[str, FlowRecord], wait: float) -> None:
    for sk, _ in sel.select(timeout=max(0.0, wait)):
        name = sk.data
        while True:
            try:
                got = _recv(sk.fileobj, key)  # type: ignore[arg-type]
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break  # an ICMP error surfaced on the socket: the loss figures will show it
            if got is None:
                continue
            head, data, t_recv, tos = got
            if head.kind != mw.KIND_ECHO_REPLY:
                continue
            r_recv, r_send, r_seq, r_tos, r_flags, _ = mw.ECHO_EXTRA.unpack_from(data, mw.HEAD.size)
            records[name].replies.append(Reply(head.seq, head.t_send_ns, r_recv, r_send, r_seq,
                                               r_tos if r_flags & 1 else None, t_recv, tos))


def _ask_stats(sock: socket.socket, sel: selectors.BaseSelector, key: bytes, session: bytes,
               spec: FlowSpec, records: dict[str, FlowRecord], deadline: float) -> None:
    rec = records[spec.name]
    for attempt in range(3):
        left = deadline - time.monotonic() - 0.3
        if left <= 0:
            return
        body = mw.Head(mw.KIND_STATS, spec.flow, spec.dscp << 2, 128, session, rec.sent,
                       time.time_ns()).pack()
        with contextlib.suppress(OSError):
            sock.send(mw.seal(key, body, 128))
        stop = time.monotonic() + min(left, 0.3 * (attempt + 1))
        while time.monotonic() < stop:
            if not sel.select(timeout=stop - time.monotonic()):
                continue
            while True:
                try:
                    got = _recv(sock, key)
                except (BlockingIOError, InterruptedError, OSError):
                    break
                if got is None:
                    continue
                head, data, t_recv, tos = got
                if head.kind == mw.KIND_ECHO_REPLY:  # a straggler: still counts
                    r_recv, r_send, r_seq, r_tos, r_flags, _ = mw.ECHO_EXTRA.unpack_from(data, mw.HEAD.size)
                    rec.replies.append(Reply(head.seq, head.t_send_ns, r_recv, r_send, r_seq,
                                             r_tos if r_flags & 1 else None, t_recv, tos))
                    continue
                v = mw.STATS_EXTRA.unpack_from(data, mw.HEAD.size)
                tos_counts = {v[i]: v[i + 1] for i in range(6, 14, 2) if v[i + 1]}
                rec.stats = {"received": v[0], "duplicates": v[1], "reordered": v[2],
                             "longest_gap": v[3], "replies": v[4], "capped": v[5], "tos": tos_counts}
                return


# ---------------------------------------------------------------------------- analysis


def _mark(sent_dscp: int, tos_counts: dict[int, int], known: bool, why: str | None = None) -> dict[str, Any]:
    """What happened to the DSCP mark in one direction: kept, bleached, re-marked, unknown."""
    total = sum(tos_counts.values())
    if not known or not total:
        return {"sent": sent_dscp, "received": None, "verdict": "unknown", **({"why": why} if why else {})}
    dscp_counts: dict[int, int] = {}
    for tos, n in tos_counts.items():
        dscp_counts[tos >> 2] = dscp_counts.get(tos >> 2, 0) + n
    main = max(dscp_counts, key=lambda d: dscp_counts[d])
    ecn = sorted({tos & 3 for tos in tos_counts})
    if main == sent_dscp:
        verdict = "kept"
    elif main == 0 and sent_dscp != 0:
        verdict = "bleached"
    else:
        verdict = "re-marked"
    return {"sent": sent_dscp, "received": main, "received_all": dict(sorted(dscp_counts.items())),
            "ecn": ecn, "verdict": verdict}


def _direction(loss: int, expected: int, gap: int, dups: int, reordered: int,
               pairs: list[tuple[int, int]], rtt_ms: list[float]) -> dict[str, Any]:
    mean_j, last_j, ipdv = ms.rfc3550_jitter(pairs)
    loss_pct = round(100.0 * loss / expected, 2) if expected else None
    return {"expected": expected, "lost": loss, "loss_pct": loss_pct, "longest_loss_burst": gap,
            "duplicates": dups, "reordered": reordered,
            "jitter_ms": None if mean_j is None else round(mean_j, 2),
            "jitter_last_ms": None if last_j is None else round(last_j, 2),
            "ipdv_mean_ms": None if ipdv is None else round(ipdv, 2),
            "delay_variation": ms.delay_variation(pairs),
            "samples": len(pairs)}


def analyse(rec: FlowRecord) -> dict[str, Any]:
    """Per-direction figures of one flow (see the module docstring for how each is derived)."""
    spec, st = rec.spec, rec.stats
    out: dict[str, Any] = {"flow": spec.name, "dscp": spec.dscp, "size": spec.size,
                           "sent": rec.sent, "send_errors": rec.send_errors,
                           "replies": len(rec.replies), "complete": st is not None}
    rtts = sorted((r.t_recv - r.t_send - max(0, r.r_send - r.r_recv)) / 1e6 for r in rec.replies)
    out["rtt_ms"] = {"p50": _r(ms.percentile(rtts, 50)), "p95": _r(ms.percentile(rtts, 95)),
                     "max": _r(max(rtts, default=None)), "min": _r(min(rtts, default=None))}
    by_rseq = sorted({r.r_seq: r for r in rec.replies}.values(), key=lambda r: r.r_seq)
    up_pairs = [(r.t_send, r.r_recv) for r in by_rseq]
    if st is None:
        out["up"] = None
        out["stats_missing"] = True
    else:
        up_lost = max(0, rec.sent - st["received"])
        out["up"] = _direction(up_lost, rec.sent, st["longest_gap"], st["duplicates"],
                               st["reordered"], up_pairs, rtts)
        up_known = bool(st["tos"]) or any(r.r_tos is not None for r in rec.replies)
        out["up"]["dscp"] = _mark(spec.dscp, st["tos"], up_known, None if up_known else
                                  "the peer reported no marks (its OS or socket cannot read them)")
        out["capped"] = st["capped"]
    # Downstream: the reflector numbered its replies 1..N in the order it sent them.
    seen: set[int] = set()
    dups = reordered = 0
    highest = 0
    down_pairs: list[tuple[int, int]] = []
    for r in rec.replies:  # arrival order
        if r.r_seq in seen:
            dups += 1
            continue
        seen.add(r.r_seq)
        if r.r_seq < highest:
            reordered += 1
        highest = max(highest, r.r_seq)
        down_pairs.append((r.r_send, r.t_recv))
    sent_down = st["replies"] if st is not None else highest
    down_lost = max(0, sent_down - len(seen))
    gap = ms.longest_run_missing(seen, 1, sent_down) if sent_down else 0
    out["down"] = _direction(down_lost, sent_down, gap, dups, reordered, down_pairs, rtts)
    tos_down: dict[int, int] = {}
    for r in rec.replies:
        if r.tos is not None:
            tos_down[r.tos] = tos_down.get(r.tos, 0) + 1
    out["down"]["dscp"] = _mark(spec.dscp, tos_down, rec.marks_known,
                                None if udprecv.marks() else udprecv.NOT_MEASURABLE)
    return out


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


# ---------------------------------------------------------------------------- path MTU


def interface_mtu(source: str) -> int | None:
    """The MTU of the interface holding the address ``source`` (psutil); None when not found.

    Why not the socket's IP_MTU: on a connected socket that is the route's path MTU, which the
    kernel caches from an earlier ICMP "fragmentation needed" (for ten minutes on Linux). Taken
    as "local", a second run would compare the path with itself and find nothing reduced.
    """
    import psutil

    with contextlib.suppress(Exception):  # psutil can fail on odd interfaces: unknown, not fatal
        for name, addrs in psutil.net_if_addrs().items():
            if any(a.address.split("%")[0] == source for a in addrs):
                st = psutil.net_if_stats().get(name)
                return st.mtu if st is not None and st.mtu > 0 else None
    return None


def probe_mtu(host: str, port: int, token: str, top: int, floor: int, wait_s: float,
              deadline: float, grant: tuple[bytes, bytes] | None = None) -> dict[str, Any]:
    """Largest IP packet (bytes, DF set) that makes the round trip, and how the path said no.

    Linux only (IP_MTU_DISCOVER); elsewhere ``{"supported": False}``. Binary search between
    ``floor`` and ``top`` (or the outgoing interface's MTU, if lower) to the byte, two tries each:
    ``largest_ok`` passed and ``smallest_failed`` (``largest_ok + 1`` when the search finished)
    was refused or vanished. ``local_mtu`` is the interface's MTU, never the route's cached path
    MTU (``route_mtu``): a lower route value is itself evidence of a reduced path, learnt earlier.
    """
    if not sys.platform.startswith("linux"):
        return {"supported": False, "reason": "DF probing needs Linux (IP_MTU_DISCOVER)"}
    fam = _family(host)
    key, session = (grant[1], grant[0]) if grant else (mw.session_key(token), os.urandom(8))
    level = socket.IPPROTO_IPV6 if fam == socket.AF_INET6 else socket.IPPROTO_IP
    opt_disc = getattr(socket, "IPV6_MTU_DISCOVER", 23) if fam == socket.AF_INET6 else mw.IP_MTU_DISCOVER
    opt_mtu = getattr(socket, "IPV6_MTU", 24) if fam == socket.AF_INET6 else mw.IP_MTU
    sock = socket.socket(fam, socket.SOCK_DGRAM)
    out: dict[str, Any] = {"supported": True, "tried": []}
    try:
        sock.setsockopt(level, opt_disc, mw.IP_PMTUDISC_DO)
        sock.connect((host, port))
        route = sock.getsockopt(level, opt_mtu)
        local = interface_mtu(sock.getsockname()[0]) or route
        out.update(local_mtu=local, route_mtu=route)
        hi_try = min(top, local)
        probe = _DfProbe(sock, key, session, 48 if fam == socket.AF_INET6 else 28, wait_s, deadline)
        lo, hi = _search_mtu(probe, hi_try, floor, lambda: sock.getsockopt(level, opt_mtu), out["tried"])
        if lo is None:
            out.update(largest_ok=None, icmp_frag_needed=probe.icmp, path_mtu_reported=None,
                       black_hole=False)
            return out
        reported = sock.getsockopt(level, opt_mtu)
        out.update(largest_ok=lo, smallest_failed=hi if hi <= hi_try else None,
                   icmp_frag_needed=probe.icmp, learnt_earlier=route < local,
                   path_mtu_reported=reported if reported < local else None,
                   black_hole=bool(lo < hi_try and not probe.icmp and reported >= local))
        return out
    except OSError as exc:
        out.update(error=exc.strerror or str(exc))
        return out
    finally:
        sock.close()


class _DfProbe:
    """Sealed echo requests of one exact IP size on a connected DF socket: did one come back?"""

    def __init__(self, sock: socket.socket, key: bytes, session: bytes, overhead: int, wait_s: float,
                 deadline: float) -> None:
        self.sock, self.overhead, self.wait_s, self.deadline = sock, overhead, wait_s, deadline
        self.key, self.session = key, session
        self.icmp = False  # the path said "too big" (EMSGSIZE: an ICMP, now or learnt earlier)
        self.seq = 0

    def attempt(self, size: int) -> str:
        """ok | lost (two tries, no echo) | emsgsize | error | deadline."""
        for _ in range(2):
            if time.monotonic() + self.wait_s > self.deadline:
                return "deadline"
            self.seq += 1
            body = mw.Head(mw.KIND_ECHO, mw.FLOW_MTU, 0, size - self.overhead, self.session, self.seq,
                           time.time_ns()).pack()
            try:
                self.sock.send(mw.seal(self.key, body, size - self.overhead))
                if self._echoed():
                    return "ok"
            except OSError as exc:
                if exc.errno == errno.EMSGSIZE:
                    self.icmp = True
                    return "emsgsize"
                return "error"
        return "lost"

    def _echoed(self) -> bool:
        """The echo of the last request within ``wait_s`` (OSError passes to the caller)."""
        stop = time.monotonic() + self.wait_s
        while time.monotonic() < stop:
            self.sock.settimeout(max(0.01, stop - time.monotonic()))
            try:
                got = _recv(self.sock, self.key)
            except TimeoutError:
                return False
            if got and got[0].kind == mw.KIND_ECHO_REPLY and got[0].seq == self.seq:
                return True
        return False


def _search_mtu(probe: _DfProbe, hi_try: int, floor: int, path_mtu: Callable[[], int],
                tried: list[list[Any]]) -> tuple[int | None, int]:
    """(largest size that passed or None, smallest that failed): ``hi_try`` first, then
    ``floor``, then between them to the byte while the deadline allows."""
    first = probe.attempt(hi_try)
    tried.append([hi_try, first])
    if first == "ok":
        return hi_try, hi_try + 1
    r = probe.attempt(floor)
    tried.append([floor, r])
    if r != "ok":
        return None, hi_try
    lo, hi = floor, hi_try
    while hi - lo > 1 and time.monotonic() + 2 * probe.wait_s < probe.deadline:
        # The kernel learnt the path MTU (from an ICMP, now or earlier): test exactly
        # that, then one byte above it; else halve.
        pmtu = path_mtu() if probe.icmp else 0
        if lo < pmtu < hi:
            mid = pmtu
        elif pmtu == lo and lo + 1 < hi:
            mid = lo + 1
        else:
            mid = (lo + hi) // 2
        r = probe.attempt(mid)
        tried.append([mid, r])
        if r == "ok":
            lo = mid
        elif r == "deadline":
            break
        else:
            hi = mid
    return lo, hi
