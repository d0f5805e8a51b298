"""The ICMP error behind a failed connect, read from Linux's socket error queue (IP_RECVERR).

Why: the errno alone cannot tell a firewall's reject from a dead host. Linux maps ICMP
host-prohibited and admin-prohibited (firewalld's default ``reject``) to EHOSTUNREACH, the same
errno as "no ARP answer", and ICMP port-unreachable to ECONNREFUSED, the same as a TCP reset.
With IP_RECVERR set before the connect, the kernel also queues the ICMP message itself: its
type, code and the address that sent it, which is what the verdict needs.

Only Linux has the error queue (MSG_ERRQUEUE). Elsewhere ``enable`` does nothing and ``read``
returns None: callers then judge from the errno alone and must say the ICMP was not readable.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import sys
from typing import Any

_IP_RECVERR, _IPV6_RECVERR = 11, 25  # <linux/in.h>, <linux/in6.h>
_SOL_IP, _SOL_IPV6 = 0, 41
_EE_ORIGIN_ICMP, _EE_ORIGIN_ICMP6 = 2, 3
_SOCK_EE = struct.Struct("=IBBBBII")  # struct sock_extended_err, then the offender's sockaddr

# ICMPv4 destination unreachable (type 3) and ICMPv6 (type 1) codes, in nftables' words
V4_NAMES = {0: "net-unreachable", 1: "host-unreachable", 2: "prot-unreachable",
            3: "port-unreachable", 9: "net-prohibited", 10: "host-prohibited",
            13: "admin-prohibited"}
V6_NAMES = {0: "no-route", 1: "admin-prohibited", 3: "addr-unreachable", 4: "port-unreachable",
            5: "policy-fail", 6: "reject-route"}
# A filter said no: never a dead host, never ARP.
PROHIBITED = {"net-prohibited", "host-prohibited", "admin-prohibited", "policy-fail",
              "reject-route"}
# "I could not deliver it": a router's (or this host's own, when ARP/ND got no answer).
UNREACHABLE = {"net-unreachable", "host-unreachable", "no-route", "addr-unreachable"}


def available() -> bool:
    """Whether this OS can tell which ICMP error ended a connect."""
    return sys.platform.startswith("linux")


def enable(sock: socket.socket) -> bool:
    """Ask the kernel to queue ICMP errors on ``sock`` (before connecting); False if it cannot."""
    if not sys.platform.startswith("linux"):
        return False
    v6 = sock.family == socket.AF_INET6
    try:
        sock.setsockopt(_SOL_IPV6 if v6 else _SOL_IP, _IPV6_RECVERR if v6 else _IP_RECVERR, 1)
    except OSError:
        return False
    return True


def parse(ancdata: list[tuple[int, int, bytes]]) -> dict[str, Any] | None:
    """The first ICMP error among recvmsg's control messages (bytes as the kernel lays them out).

    Returns ``{"icmp": name, "icmp_type", "icmp_code", "from": sender address or None, "v6"}``.
    """
    for level, ctype, data in ancdata:
        if (level, ctype) not in ((_SOL_IP, _IP_RECVERR), (_SOL_IPV6, _IPV6_RECVERR)):
            continue
        if len(data) < _SOCK_EE.size:
            continue
        _errno, origin, itype, code, _pad, _info, _data = _SOCK_EE.unpack_from(data)
        if origin not in (_EE_ORIGIN_ICMP, _EE_ORIGIN_ICMP6):
            continue  # a local error (EMSGSIZE and the like): no ICMP behind it
        v6 = origin == _EE_ORIGIN_ICMP6
        unreach = (v6 and itype == 1) or (not v6 and itype == 3)
        names = V6_NAMES if v6 else V4_NAMES
        name = names.get(code, f"code-{code}") if unreach else f"type-{itype}-code-{code}"
        return {"icmp": name, "icmp_type": itype, "icmp_code": code,
                "from": _offender(data[_SOCK_EE.size:]), "v6": v6}
    return None


def _offender(sa: bytes) -> str | None:
    """SO_EE_OFFENDER: the sockaddr right after the extended error (sockaddr_in / sockaddr_in6)."""
    with contextlib.suppress(ValueError, IndexError, struct.error):
        fam = struct.unpack_from("=H", sa)[0]
        if fam == socket.AF_INET and len(sa) >= 8:
            return str(ipaddress.IPv4Address(sa[4:8]))
        if fam == socket.AF_INET6 and len(sa) >= 24:
            return str(ipaddress.IPv6Address(sa[8:24]))
    return None


def read(sock: socket.socket) -> dict[str, Any] | None:
    """The ICMP error the kernel queued for ``sock`` (after a failed connect), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        _, ancdata, _, _ = sock.recvmsg(1, 512, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT)
    except OSError:
        return None
    return parse(ancdata)


def describe(icmp: dict[str, Any]) -> str:
    """'ICMP admin-prohibited from 10.0.0.20' (what the report names as the proof)."""
    return f"ICMP{'v6' if icmp.get('v6') else ''} {icmp['icmp']} from {icmp.get('from') or 'an unknown sender'}"
