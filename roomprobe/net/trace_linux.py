"""Linux: probes with a TTL, answers read from the socket's error queue (IP_RECVERR), no root.

Why this works unprivileged: with ``IP_RECVERR`` the kernel queues every ICMP error that
concerns a socket (time exceeded from a router, port unreachable from the destination,
fragmentation needed with the next-hop MTU) on that socket, with the address of the router that
sent it. One socket per probe, so the socket says which TTL the answer belongs to, even when
routers quote too little of the original packet to match it.

* ``udp``: a datagram to a high port (traceroute's 33434 upward): routers answer time exceeded,
  the destination port unreachable; media to Zoom is UDP, so this is the path media takes.
* ``icmp``: ICMP echo over an unprivileged ICMP datagram socket (allowed when this user's group
  is inside ``net.ipv4.ping_group_range``): the destination answers echo reply.
* ``tcp``: a non-blocking connect to port 443 with a TTL: routers answer time exceeded, the
  destination SYN-ACK or RST (either proves it answered); what passes a web-only firewall.

Every probe socket sets ``IP_MTU_DISCOVER=IP_PMTUDISC_PROBE``: DF is set and the kernel's cached
path MTU is ignored, so a full-size probe reaches the router whose link is smaller and that
router's "fragmentation needed" names its MTU.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import select
import socket
import struct
import sys
import time
from collections.abc import Sequence
from typing import Any

from roomprobe.net.trace_icmp import echo_request
from roomprobe.net.traceroute import (
    FRAG_NEEDED,
    REACHED,
    TIME_EXCEEDED,
    UNREACHABLE,
    MethodUnavailable,
    Reply,
)

IP_RECVERR = 11  # <linux/in.h>
IP_MTU_DISCOVER = 10
IP_PMTUDISC_PROBE = 3
IP_TTL = 2
IP_MTU = 14
MSG_ERRQUEUE = 0x2000
MSG_DONTWAIT = 0x40
SO_EE_ORIGIN_LOCAL = 1
SO_EE_ORIGIN_ICMP = 2
SOCK_EE = struct.Struct("=IBBBBII")  # struct sock_extended_err
IP_HDR = 20
UDP_HDR = 8
ICMP_HDR = 8

WHY = {
    "udp": "UDP with IP_RECVERR: no administrator rights needed; the protocol Zoom media uses",
    "icmp": "ICMP echo over an unprivileged ICMP datagram socket (net.ipv4.ping_group_range allows it)",
    "tcp": "TCP connects to port 443 with IP_RECVERR: what a web-only firewall lets through",
}


def parse_errqueue(ancdata: Sequence[tuple[int, int, bytes]]) -> dict[str, Any] | None:
    """The ICMP error in one MSG_ERRQUEUE read: {origin, type, code, info, offender, errno}.

    ``info`` is the next-hop MTU for "fragmentation needed" (ee_info). Pure: tested on bytes.
    """
    for level, ctype, data in ancdata:
        if level != socket.IPPROTO_IP or ctype != IP_RECVERR or len(data) < SOCK_EE.size:
            continue
        ee_errno, origin, itype, code, _pad, info, _data = SOCK_EE.unpack_from(data)
        offender = None
        sa = data[SOCK_EE.size:]
        if len(sa) >= 8 and struct.unpack_from("=H", sa)[0] == socket.AF_INET:
            offender = str(ipaddress.IPv4Address(sa[4:8]))
        return {"errno": ee_errno, "origin": origin, "type": itype, "code": code, "info": info,
                "offender": offender}
    return None


def classify(err: dict[str, Any], dest: str) -> tuple[str, int | None, int | None]:
    """(kind, icmp code, mtu) of a queued error. Port/protocol unreachable from the destination
    itself means the probe arrived; any other unreachable ends the path there."""
    if err["origin"] == SO_EE_ORIGIN_LOCAL:
        if err["errno"] == errno.EMSGSIZE:
            return FRAG_NEEDED, None, int(err["info"]) or None
        return "", None, None
    if err["type"] == 11:
        return TIME_EXCEEDED, err["code"], None
    if err["type"] == 3:
        if err["code"] == 4:
            return FRAG_NEEDED, 4, int(err["info"]) or 0
        if err["code"] in (2, 3) and err["offender"] == dest:
            return REACHED, err["code"], None
        return UNREACHABLE, err["code"], None
    return "", None, None


class LinuxProbes:
    """UDP, ICMP or TCP probes, one socket each, answers from the error queue."""

    def __init__(self, proto: str, port: int) -> None:
        self.name = proto
        self.port = port
        self._seq = 0

    def _socket(self) -> socket.socket:
        if self.name == "udp":
            return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if self.name == "icmp":
            return socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
        return socket.socket(socket.AF_INET, socket.SOCK_STREAM)

    def round(self, dest: str, ttls: Sequence[int], wait: float, size: int) -> list[Reply]:
        assert sys.platform != "win32"  # this module is Linux only (IP_RECVERR, MSG_ERRQUEUE)
        socks: dict[int, tuple[int, socket.socket, float]] = {}  # fd -> (ttl, sock, sent at)
        replies: dict[int, Reply] = {}
        try:
            for ttl in ttls:
                self._seq += 1
                s = self._socket()
                try:
                    s.setblocking(False)
                    s.setsockopt(socket.IPPROTO_IP, IP_TTL, ttl)
                    s.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
                    s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE)
                    sent = self._send(s, dest, size)
                except OSError as exc:
                    s.close()
                    if exc.errno == errno.EMSGSIZE:  # bigger than this host's own link
                        replies[ttl] = Reply(ttl, None, None, FRAG_NEEDED, mtu=None)
                        continue
                    raise
                socks[s.fileno()] = (ttl, s, sent)
            end = time.monotonic() + wait
            pending = dict(socks)
            while pending:
                left = end - time.monotonic()
                if left <= 0:
                    break
                want_w = [fd for fd in pending if self.name == "tcp"]
                r, w, _ = select.select(list(pending), want_w, [], left)
                now = time.monotonic()
                for fd in set(r) | set(w):
                    ttl, s, sent = pending[fd]
                    reply = self._read(s, dest, ttl, (now - sent) * 1000.0)
                    if reply is not None:
                        replies[ttl] = reply
                        del pending[fd]
                if self._complete(replies, ttls):
                    break
        finally:
            for _ttl, s, _t in socks.values():
                with contextlib.suppress(OSError):
                    s.close()
        return list(replies.values())

    @staticmethod
    def _complete(replies: dict[int, Reply], ttls: Sequence[int]) -> bool:
        """Every TTL up to where the path ends has answered: no reason to wait longer."""
        ends = [t for t, r in replies.items() if r.kind in (REACHED, UNREACHABLE)]
        if not ends:
            return len(replies) == len(ttls)
        return all(t in replies for t in ttls if t <= min(ends))

    def _send(self, s: socket.socket, dest: str, size: int) -> float:
        if self.name == "tcp":
            rc = s.connect_ex((dest, self.port))
            if rc not in (0, errno.EINPROGRESS):
                raise OSError(rc, os.strerror(rc))
            return time.monotonic()
        if self.name == "udp":
            payload = bytes(max(0, size - IP_HDR - UDP_HDR))
            s.connect((dest, self.port))
            t = time.monotonic()
            s.send(payload)
            return t
        t = time.monotonic()  # the kernel fills the identifier (and the checksum) on datagram sockets
        s.sendto(echo_request(0, self._seq, size), (dest, 0))
        return t

    def _read(self, s: socket.socket, dest: str, ttl: int, rtt_ms: float) -> Reply | None:
        if sys.platform == "win32":  # never here (make() refuses): recvmsg is not on Windows
            return None
        try:
            _data, anc, _flags, _addr = s.recvmsg(512, 1024, MSG_ERRQUEUE | MSG_DONTWAIT)
        except BlockingIOError:
            anc = None
        except OSError:
            anc = None
        if anc:
            err = parse_errqueue(anc)
            if err is not None:
                kind, code, mtu = classify(err, dest)
                if kind:
                    return Reply(ttl, err["offender"], round(rtt_ms, 3), kind, code, mtu)
        if self.name == "tcp":
            soerr = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if soerr in (0, errno.ECONNREFUSED):
                return Reply(ttl, dest, round(rtt_ms, 3), REACHED)
            return None  # a soft error: wait for the queue or the deadline
        try:
            data = s.recv(2048, MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return None  # the error queue already told what it could
        if self.name == "icmp" and (len(data) < 1 or data[0] != 0):
            return None  # not an echo reply
        return Reply(ttl, dest, round(rtt_ms, 3), REACHED)

    def local_mtu(self, dest: str) -> int | None:
        """The MTU the kernel would use towards ``dest`` (IP_MTU on a connected socket)."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((dest, self.port))
            return int(s.getsockopt(socket.IPPROTO_IP, IP_MTU)) or None

    def close(self) -> None:
        pass


def make(name: str, *, port: int = 33434) -> LinuxProbes:
    """A Linux method by name, after checking the OS lets this user open its socket."""
    if name not in ("udp", "icmp", "tcp"):
        raise MethodUnavailable(f"unknown method {name!r}")
    if sys.platform == "win32" or not hasattr(socket, "IPPROTO_ICMP"):
        raise MethodUnavailable("Linux only")
    probes = LinuxProbes(name, 443 if name == "tcp" and port == 33434 else port)
    try:
        s = probes._socket()
    except PermissionError as exc:
        if name == "icmp":
            raise MethodUnavailable(
                "ICMP datagram sockets are not allowed for this user (net.ipv4.ping_group_range "
                f"does not include its group): {exc.strerror}") from None
        raise MethodUnavailable(f"socket refused: {exc.strerror}") from None
    except OSError as exc:
        raise MethodUnavailable(f"socket refused: {exc.strerror or exc}") from None
    s.close()
    return probes
