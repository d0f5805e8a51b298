"""The media-quality wire format shared by the quality probe and the reflector in ``roomprobe serve``.

Why a format of our own rather than RTP: the reflector must prove what it saw (its receive time,
the order packets arrived in, the DSCP/ECN byte they carried) without trusting the client, and it
must never be usable as an amplifier or an open reflector on a customer LAN. So every datagram
carries a truncated HMAC keyed by the ``roomprobe serve`` session token (the token itself never
goes on the wire), a reply is never larger than its request (the client pads requests to the
reply's size), and a request whose declared length differs from its real length is dropped.

Layout (network byte order). Every datagram starts with HEAD and ends with a 16-byte MAC over
everything before it except padding (padding is zeros and is not echoed byte for byte)::

    HEAD  magic "RQ", version, kind, flow, tos, length(2), session(8), seq(4), t_send_ns(8)  = 28
    ECHO  HEAD + r_recv_ns(8) r_send_ns(8) r_seq(4) r_tos(1) r_flags(1) pad(2)               = 52
    STATS HEAD + received(4) dups(4) reordered(4) longest_gap(4) replies(4) capped(4)
               + 4 x (tos(1) count(4))                                                       = 72

A request's ``tos`` asks the reflector to mark its replies with that TOS byte (DSCP<<2), so both
directions carry the mark under test; ``r_tos`` is the TOS byte the request arrived with.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import socket
import struct
import sys
from dataclasses import dataclass

MAGIC = b"RQ"
VERSION = 1
KIND_ECHO, KIND_ECHO_REPLY, KIND_STATS, KIND_STATS_REPLY = 1, 2, 3, 4
FLOW_AUDIO, FLOW_VIDEO, FLOW_MTU = 0, 1, 2
FLOWS = (FLOW_AUDIO, FLOW_VIDEO, FLOW_MTU)
MAC_LEN = 16

HEAD = struct.Struct("!2sBBBBH8sIQ")
ECHO_EXTRA = struct.Struct("!QQIBBH")
STATS_EXTRA = struct.Struct("!IIIIII" + "BI" * 4)
ECHO_LEN = HEAD.size + ECHO_EXTRA.size + MAC_LEN  # 68: the smallest echo request
STATS_LEN = HEAD.size + STATS_EXTRA.size + MAC_LEN  # 88: the smallest stats request
MAX_DATAGRAM = 9000  # jumbo frames at most; anything larger is dropped unread

# Linux socket options Python does not always name.
IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
IP_PMTUDISC_DO = getattr(socket, "IP_PMTUDISC_DO", 2)
IP_MTU = getattr(socket, "IP_MTU", 14)
IP_RECVTOS = getattr(socket, "IP_RECVTOS", 13 if sys.platform.startswith("linux") else None)
IPV6_RECVTCLASS = getattr(socket, "IPV6_RECVTCLASS", 66 if sys.platform.startswith("linux") else None)
IPV6_TCLASS = getattr(socket, "IPV6_TCLASS", 67 if sys.platform.startswith("linux") else None)
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35 if sys.platform.startswith("linux") else None)


def session_key(token: str) -> bytes:
    """The HMAC key for a session token: the token never travels in a datagram."""
    return hashlib.sha256(b"roomprobe-reflector-v1\0" + token.encode()).digest()


def mac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()[:MAC_LEN]


@dataclass(frozen=True)
class Head:
    kind: int
    flow: int
    tos: int
    length: int
    session: bytes
    seq: int
    t_send_ns: int

    def pack(self) -> bytes:
        return HEAD.pack(MAGIC, VERSION, self.kind, self.flow, self.tos & 0xFF, self.length,
                         self.session, self.seq & 0xFFFFFFFF, self.t_send_ns & 0xFFFFFFFFFFFFFFFF)


def seal(key: bytes, body: bytes, length: int) -> bytes:
    """``body`` + MAC, zero-padded to ``length`` bytes (the MAC sits right after the body)."""
    out = body + mac(key, body)
    if length < len(out):
        raise ValueError(f"datagram of {length} bytes cannot hold {len(out)}")
    return out + bytes(length - len(out))


def open_head(key: bytes, data: bytes, body_len: int) -> Head | None:
    """The verified head of ``data`` (whose authenticated body is ``body_len`` bytes), or None.

    None for anything not ours: short, wrong magic or version, a declared length that is not
    the real one (a spoofed size), or a MAC that does not match (wrong token).
    """
    if len(data) < body_len + MAC_LEN or data[:2] != MAGIC:
        return None
    magic, version, kind, flow, tos, length, session, seq, t_send = HEAD.unpack_from(data)
    if version != VERSION or length != len(data):
        return None
    if not hmac.compare_digest(mac(key, data[:body_len]), data[body_len:body_len + MAC_LEN]):
        return None
    return Head(kind, flow, tos, length, session, seq, t_send)


def request_body_len(kind: int) -> int:
    """How many leading bytes of a request the MAC covers: the head only."""
    return HEAD.size


def reply_body_len(kind: int) -> int:
    return HEAD.size + (ECHO_EXTRA.size if kind == KIND_ECHO_REPLY else STATS_EXTRA.size)


def tos_from_ancillary(ancdata: list[tuple[int, int, bytes]]) -> int | None:
    """The TOS/traffic-class byte from recvmsg ancillary data (IP_TOS or IPV6_TCLASS), if any."""
    for level, ctype, cdata in ancdata:
        if level == socket.IPPROTO_IP and ctype in (socket.IP_TOS, IP_RECVTOS) and cdata:
            return cdata[0]
        if level == getattr(socket, "IPPROTO_IPV6", 41) and ctype == IPV6_TCLASS and len(cdata) >= 4:
            return int.from_bytes(cdata[:4], sys.byteorder) & 0xFF
    return None


def stamp_from_ancillary(ancdata: list[tuple[int, int, bytes]]) -> int | None:
    """The kernel's receive time (SO_TIMESTAMPNS, CLOCK_REALTIME ns), if the socket asked for it."""
    for level, ctype, cdata in ancdata:
        if level == socket.SOL_SOCKET and ctype == SO_TIMESTAMPNS and len(cdata) >= 16:
            sec, nsec = struct.unpack("@qq", cdata[:16])
            return sec * 1_000_000_000 + nsec
    return None


def enable_receive_marks(sock: socket.socket) -> bool:
    """Ask the kernel for each datagram's TOS byte and receive time; False where TOS is unknowable."""
    ok = False
    v6 = sock.family == socket.AF_INET6
    try:
        if v6 and IPV6_RECVTCLASS is not None:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVTCLASS, 1)
            ok = True
        elif not v6 and IP_RECVTOS is not None:
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVTOS, 1)
            ok = True
    except OSError:
        ok = False
    if SO_TIMESTAMPNS is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    return ok


def set_tos(sock: socket.socket, tos: int) -> bool:
    """Mark what this socket sends with ``tos`` (DSCP<<2 | ECN); False where the OS refuses."""
    try:
        if sock.family == socket.AF_INET6:
            if IPV6_TCLASS is None:
                return False
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_TCLASS, tos)
        else:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
        return True
    except OSError:
        return False


ANC_SIZE = socket.CMSG_SPACE(16) + socket.CMSG_SPACE(4) + 64 if hasattr(socket, "CMSG_SPACE") else 0
