"""A minimal STUN (RFC 5389) codec: one Binding request out, its response in.

A STUN answer proves a UDP path both ways, but only from a server that speaks STUN: Zoom's media
on UDP 8801 is Zoom's own protocol, and Zoom publishes no STUN host, so roomprobe sends STUN only
to servers known to answer (a control server, or the customer's own) and reads the ICMP error
behind a failure (``judge_error``) to tell "the packet arrived, nothing listens" from a block
(a port-unreachable in the name of a host known to listen there is a forged reject). We only need
the request and the parts of a response that prove it is the answer to *our* request (class,
method, transaction id, cookie) plus what it tells us (mapped address, server software), so this
is a few dozen lines rather than a dependency.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
import struct
import sys
import time
import zlib
from typing import Any

MAGIC_COOKIE = 0x2112A442
BINDING = 0x0001
# Message type = method bits interleaved with class bits C1 (0x100) and C0 (0x010).
CLASS_REQUEST, CLASS_INDICATION, CLASS_SUCCESS, CLASS_ERROR = 0x000, 0x010, 0x100, 0x110
ATTR_MAPPED_ADDRESS = 0x0001
ATTR_ERROR_CODE = 0x0009
ATTR_XOR_MAPPED_ADDRESS = 0x0020
ATTR_SOFTWARE = 0x8022
ATTR_FINGERPRINT = 0x8028
FINGERPRINT_XOR = 0x5354554E
HEADER = struct.Struct("!HHI12s")


class StunError(ValueError):
    """The datagram is not a STUN response to our request."""


def new_transaction_id() -> bytes:
    return os.urandom(12)


def binding_request(txid: bytes, *, fingerprint: bool = True) -> bytes:
    """A Binding request with ``txid``; with a FINGERPRINT so servers can tell it from media."""
    if len(txid) != 12:
        raise ValueError("a STUN transaction id is 12 bytes")
    if not fingerprint:
        return HEADER.pack(BINDING | CLASS_REQUEST, 0, MAGIC_COOKIE, txid)
    head = HEADER.pack(BINDING | CLASS_REQUEST, 8, MAGIC_COOKIE, txid)
    crc = (zlib.crc32(head) ^ FINGERPRINT_XOR) & 0xFFFFFFFF
    return head + struct.pack("!HHI", ATTR_FINGERPRINT, 4, crc)


def _address(value: bytes, xor: bool, txid: bytes) -> dict[str, Any]:
    if len(value) < 4:
        raise StunError("address attribute too short")
    family, port = value[1], struct.unpack("!H", value[2:4])[0]
    raw = value[4:]
    if xor:
        port ^= MAGIC_COOKIE >> 16
        key = struct.pack("!I", MAGIC_COOKIE) + txid
        raw = bytes(b ^ k for b, k in zip(raw, key, strict=False))
    if family == 0x01 and len(raw) == 4:
        addr = str(ipaddress.IPv4Address(raw))
    elif family == 0x02 and len(raw) == 16:
        addr = str(ipaddress.IPv6Address(raw))
    else:
        raise StunError(f"bad address family {family}")
    return {"address": addr, "port": port}


def parse_response(data: bytes, txid: bytes) -> dict[str, Any]:
    """Decode a Binding response to ``txid``; raises StunError for anything else.

    Returns ``{"class": "success"|"error", "mapped": {...}|None, "software": str|None,
    "error_code": int|None, "fingerprint_ok": bool|None}``.
    """
    if len(data) < HEADER.size:
        raise StunError("shorter than a STUN header")
    mtype, length, cookie, rtxid = HEADER.unpack_from(data)
    if mtype & 0xC000 or cookie != MAGIC_COOKIE:
        raise StunError("not a STUN message (bad leading bits or magic cookie)")
    if rtxid != txid:
        raise StunError("transaction id does not match our request")
    if length % 4 or HEADER.size + length > len(data):
        raise StunError("bad message length")
    method = mtype & ~0x0110
    klass = mtype & 0x0110
    if method != BINDING or klass not in (CLASS_SUCCESS, CLASS_ERROR):
        raise StunError(f"not a Binding response (type 0x{mtype:04x})")
    out: dict[str, Any] = {"class": "success" if klass == CLASS_SUCCESS else "error",
                           "mapped": None, "software": None, "error_code": None,
                           "fingerprint_ok": None}
    pos, end = HEADER.size, HEADER.size + length
    while pos + 4 <= end:
        atype, alen = struct.unpack_from("!HH", data, pos)
        value = data[pos + 4: pos + 4 + alen]
        if len(value) != alen:
            raise StunError("attribute runs past the message")
        if atype == ATTR_XOR_MAPPED_ADDRESS:
            out["mapped"] = _address(value, True, txid)
        elif atype == ATTR_MAPPED_ADDRESS and out["mapped"] is None:
            out["mapped"] = _address(value, False, txid)
        elif atype == ATTR_SOFTWARE:
            out["software"] = value.decode("utf-8", "replace").rstrip("\x00 ")
        elif atype == ATTR_ERROR_CODE and alen >= 4:
            out["error_code"] = value[2] * 100 + value[3]
        elif atype == ATTR_FINGERPRINT and alen == 4:
            expect = (zlib.crc32(data[:pos]) ^ FINGERPRINT_XOR) & 0xFFFFFFFF
            out["fingerprint_ok"] = struct.unpack("!I", value)[0] == expect
        pos += 4 + alen + (-alen % 4)
    return out


# ----------------------------------------------------------------------- one exchange on the wire

# What the answer (or its absence) proves, by errno and, on Linux, by the ICMP error itself.
_LOCAL_BLOCK = {errno.EPERM, errno.EACCES}
_IP_RECVERR, _IPV6_RECVERR = 11, 25  # Linux <linux/in.h>, <linux/in6.h>
_EE_ORIGIN_ICMP, _EE_ORIGIN_ICMP6 = 2, 3
_SOCK_EE = struct.Struct("=IBBBBII")  # struct sock_extended_err


def _icmp_meaning(v6: bool, icmp_type: int, code: int) -> str:
    """port-unreachable | admin-prohibited | net-unreachable | host-unreachable | other."""
    if v6:
        if icmp_type == 1:
            return {0: "net-unreachable", 1: "admin-prohibited", 3: "host-unreachable",
                    4: "port-unreachable"}.get(code, "other")
        return "other"
    if icmp_type == 3:
        if code in (9, 10, 13):
            return "admin-prohibited"
        return {0: "net-unreachable", 1: "host-unreachable", 3: "port-unreachable"}.get(code, "other")
    return "other"


def _read_icmp_error(sock: socket.socket, v6: bool) -> dict[str, Any] | None:
    """The ICMP error Linux queued for this socket (IP_RECVERR): kind and who sent it."""
    if sys.platform != "linux":  # IP_RECVERR / MSG_ERRQUEUE are Linux's
        return None
    try:
        _, ancdata, _, _ = sock.recvmsg(512, 512, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT)
    except (OSError, AttributeError):
        return None
    for _level, ctype, data in ancdata:
        if ctype not in (_IP_RECVERR, _IPV6_RECVERR) or len(data) < _SOCK_EE.size:
            continue
        _, origin, itype, code, _, _, _ = _SOCK_EE.unpack_from(data)
        if origin not in (_EE_ORIGIN_ICMP, _EE_ORIGIN_ICMP6):
            continue
        offender = None
        sa = data[_SOCK_EE.size:]
        with contextlib.suppress(ValueError, IndexError):
            if len(sa) >= 8 and struct.unpack_from("=H", sa)[0] == socket.AF_INET:
                offender = str(ipaddress.IPv4Address(sa[4:8]))
            elif len(sa) >= 24 and struct.unpack_from("=H", sa)[0] == socket.AF_INET6:
                offender = str(ipaddress.IPv6Address(sa[8:24]))
        return {"icmp": _icmp_meaning(origin == _EE_ORIGIN_ICMP6, itype, code),
                "icmp_type": itype, "icmp_code": code, "from": offender}
    return None


# A port-unreachable in the name of a host known to listen on that port: a firewall on the way
# rejected the packet (iptables REJECT and nftables ``reject`` forge the target's address).
FORGED_REJECT = "icmp-port-unreachable-known-listener"


def judge_error(exc: OSError, target: str, icmp: dict[str, Any] | None,
                listens: bool = False) -> tuple[str, str]:
    """(state, proof) for a socket error on a connected UDP socket to ``target``.

    ``listens``: the target is known to listen on that port (a STUN server on its STUN port,
    Zoom's media servers on 8801). An ICMP port-unreachable "from" such a host cannot be the
    host's own (it listens), so it is a reject forged on the way in its name: iptables' REJECT
    and nftables' ``reject`` answer with the TARGET's address.

    blocked/local         the OS refused to send (EPERM/EACCES: this device's own firewall)
    blocked/no-route      no route from this device (the error came with no ICMP behind it)
    open-no-stun/...      ICMP port-unreachable from the target itself, which is not known to
                          listen there: the packet ARRIVED, nothing listens on that port; the
                          path is open to that host
    blocked/icmp-port-unreachable-known-listener   the same ICMP from a host known to listen
                          there: a firewall rejected it in the host's name
    blocked/icmp-router   port-unreachable sent by someone else (a firewall rejecting en route)
    blocked/icmp-admin-prohibited, blocked/icmp-unreachable   a filter or a router said so
    error/errno           anything else
    """
    if exc.errno in _LOCAL_BLOCK:
        return "blocked", "local"
    if icmp is not None:
        kind, sender = icmp["icmp"], icmp.get("from")
        if kind == "port-unreachable":
            if sender is None or sender == target:
                if listens:
                    return "blocked", FORGED_REJECT
                return "open-no-stun", "icmp-port-unreachable-from-host"
            return "blocked", "icmp-router"
        if kind == "admin-prohibited":
            return "blocked", "icmp-admin-prohibited"
        if kind in ("net-unreachable", "host-unreachable"):
            return "blocked", "icmp-unreachable"
    if exc.errno == errno.ECONNREFUSED or exc.errno == getattr(errno, "WSAECONNRESET", -1):
        # No ICMP detail (not Linux): port-unreachable, in the destination host's name.
        if listens:
            return "blocked", FORGED_REJECT
        return "open-no-stun", "icmp-port-unreachable"
    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, getattr(errno, "WSAEHOSTUNREACH", -1),
                     getattr(errno, "WSAENETUNREACH", -1)):
        return "blocked", ("no-route" if icmp is None and sys.platform.startswith("linux")
                           else "icmp-unreachable")
    return "error", errno.errorcode.get(exc.errno or 0, "error")


def exchange(family: int, sockaddr: tuple, timeout: float, listens: bool = False) -> dict[str, Any]:
    """A Binding request with retransmits (RFC 5389: doubling interval) on a connected socket.

    ``listens``: the target is known to listen on that port (see ``judge_error``).

    Returns ``{"state", "proof", "error", "sends", "ms", "answer"?, "icmp"?}`` with state
    ``reachable`` (our answer came back), ``silent`` (nothing by the timeout: the caller decides
    what silence proves), or what ``judge_error`` says for an error.
    """
    t0 = time.monotonic()
    out: dict[str, Any] = {"proof": None, "error": None, "sends": 0}
    txid = new_transaction_id()
    request = binding_request(txid)
    deadline = t0 + timeout
    interval = max(0.05, timeout / 7)  # start short so one lost packet costs little
    v6 = family == socket.AF_INET6

    def ms() -> float:
        return round((time.monotonic() - t0) * 1000, 1)

    with socket.socket(family, socket.SOCK_DGRAM) as s:
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError):
                s.setsockopt(socket.IPPROTO_IPV6 if v6 else socket.IPPROTO_IP,
                             _IPV6_RECVERR if v6 else _IP_RECVERR, 1)
        try:
            s.connect(sockaddr)
            while True:
                now = time.monotonic()
                if now >= deadline:
                    return {**out, "state": "silent", "error": "timeout", "ms": ms()}
                s.send(request)
                out["sends"] += 1
                wait_until = min(deadline, now + interval)
                interval *= 2
                while (left := wait_until - time.monotonic()) > 0:
                    s.settimeout(left)
                    try:
                        data = s.recv(2048)
                    except TimeoutError:
                        break
                    try:
                        answer = parse_response(data, txid)
                    except StunError:
                        continue  # not our answer: keep listening
                    return {**out, "state": "reachable", "ms": ms(), "answer": answer}
        except OSError as exc:
            icmp = _read_icmp_error(s, v6)
            state, proof = judge_error(exc, sockaddr[0], icmp, listens)
            res = {**out, "state": state, "proof": proof, "ms": ms(), "known_listener": listens,
                   "error": errno.errorcode.get(exc.errno or 0, str(exc))}
            if icmp is not None:
                res["icmp"] = icmp
            return res
