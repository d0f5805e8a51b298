"""ICMP echo probes on macOS: one unprivileged ICMP datagram socket, answers parsed from bytes.

Why one socket and byte parsing here (not Linux's error queue): macOS has no IP_RECVERR, but
its ``SOCK_DGRAM``/``IPPROTO_ICMP`` socket (no administrator rights) delivers the ICMP messages
that concern the echo requests it sent, time exceeded and unreachable included, each with its
IP header in front (as icmplib reads them). We set the TTL before each send and match an answer
to its probe by the sequence number: in the echo reply itself, or in the original echo header
that a time-exceeded or unreachable message quotes.

:func:`parse` is pure and tested on real byte layouts; :class:`DarwinIcmp` takes the socket
factory and clock as arguments so the tests drive it with a fake socket.
"""

from __future__ import annotations

import ipaddress
import os
import select
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from roomprobe.net.traceroute import FRAG_NEEDED, REACHED, TIME_EXCEEDED, UNREACHABLE, Reply

IP_TTL = socket.IP_TTL  # 4 on macOS (2 on Linux): the platform's own constant
ECHO_REPLY, DEST_UNREACH, ECHO_REQUEST, TIME_EXCEEDED_T = 0, 3, 8, 11


@dataclass
class Answer:
    """One ICMP message as it concerns our probes."""

    kind: str
    source: str  # who sent it
    ident: int
    seq: int
    code: int = 0
    mtu: int | None = None
    quoted_dest: str | None = None  # for errors: the destination of the probe it quotes


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def echo_request(ident: int, seq: int, size: int) -> bytes:
    """An ICMP echo request whose IP packet is ``size`` bytes (20 IP + 8 ICMP + payload)."""
    payload = bytes(max(0, size - 28))
    head = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident & 0xFFFF, seq & 0xFFFF)
    return head[:2] + struct.pack("!H", checksum(head + payload)) + head[4:] + payload


def _ip_header(data: bytes) -> tuple[int, str, str] | None:
    """(header length, source, destination) of an IPv4 header at the start of ``data``."""
    if len(data) < 20 or data[0] >> 4 != 4:
        return None
    ihl = (data[0] & 0x0F) * 4
    if ihl < 20 or len(data) < ihl:
        return None
    return ihl, str(ipaddress.IPv4Address(data[12:16])), str(ipaddress.IPv4Address(data[16:20]))


def parse(data: bytes, *, with_ip_header: bool = True, source: str | None = None) -> Answer | None:
    """An ICMP message as received on a datagram socket (macOS: with the IP header in front;
    Linux: without, ``source`` from recvfrom). None when it is nothing of ours to read."""
    if with_ip_header:
        ip = _ip_header(data)
        if ip is None:
            return None
        ihl, source, _dst = ip
        data = data[ihl:]
    if len(data) < 8 or source is None:
        return None
    itype, code = data[0], data[1]
    if itype == ECHO_REPLY:
        ident, seq = struct.unpack_from("!HH", data, 4)
        return Answer(REACHED, source, ident, seq)
    if itype not in (TIME_EXCEEDED_T, DEST_UNREACH):
        return None
    inner = _ip_header(data[8:])
    if inner is None:
        return None
    ihl, _src, qdst = inner
    quoted = data[8 + ihl:]
    if len(quoted) < 8 or quoted[0] != ECHO_REQUEST:
        return None
    ident, seq = struct.unpack_from("!HH", quoted, 4)
    if itype == TIME_EXCEEDED_T:
        return Answer(TIME_EXCEEDED, source, ident, seq, code, quoted_dest=qdst)
    if code == 4:
        mtu = struct.unpack_from("!H", data, 6)[0]
        return Answer(FRAG_NEEDED, source, ident, seq, code, mtu=mtu or 0, quoted_dest=qdst)
    kind = REACHED if source == qdst and code in (2, 3) else UNREACHABLE
    return Answer(kind, source, ident, seq, code, quoted_dest=qdst)


def _icmp_socket() -> socket.socket:
    return socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)


class DarwinIcmp:
    """Every TTL of a round from one ICMP datagram socket; answers matched by sequence."""

    name = "icmp"

    def __init__(self, sock_factory: Callable[[], Any] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wait_readable: Callable[[Any, float], bool] | None = None) -> None:
        self._sock = (sock_factory or _icmp_socket)()
        self._sock.setblocking(False)
        self._clock = clock
        self._ready = wait_readable or (lambda s, t: bool(select.select([s], [], [], t)[0]))
        self._ident = os.getpid() & 0xFFFF
        self._seq = 0

    def round(self, dest: str, ttls: Sequence[int], wait: float, size: int) -> list[Reply]:
        sent: dict[int, tuple[int, float]] = {}  # seq -> (ttl, time sent)
        replies: dict[int, Reply] = {}
        for ttl in ttls:
            self._seq = (self._seq + 1) & 0xFFFF
            self._sock.setsockopt(socket.IPPROTO_IP, IP_TTL, ttl)
            sent[self._seq] = (ttl, self._clock())
            try:
                self._sock.sendto(echo_request(self._ident, self._seq, size), (dest, 0))
            except OSError:
                del sent[self._seq]
        end = self._clock() + wait
        while len(replies) < len(sent):
            left = end - self._clock()
            if left <= 0 or not self._ready(self._sock, left):
                break
            try:
                data, _addr = self._sock.recvfrom(4096)
            except (BlockingIOError, InterruptedError):
                continue
            now = self._clock()
            ans = parse(data)
            if ans is None or ans.seq not in sent or (ans.quoted_dest not in (None, dest)):
                continue
            ttl, t_sent = sent[ans.seq]
            if ttl not in replies:
                replies[ttl] = Reply(ttl, ans.source, round((now - t_sent) * 1000.0, 3), ans.kind,
                                     ans.code, ans.mtu)
            reached = [t for t, r in replies.items() if r.kind in (REACHED, UNREACHABLE)]
            if reached and all(t in replies for t in ttls if t <= min(reached)):
                break
        return list(replies.values())

    def close(self) -> None:
        self._sock.close()
