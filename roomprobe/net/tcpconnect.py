"""One TCP connect, classified the same way by every probe (and the sweep) that makes one.

open        the handshake completed. ``after`` says what the peer did at once:
            "reset" (it reset the connection it had just accepted: a service or an endpoint
            security agent that accepts and drops), "closed" (it closed it: FIN), "data" (it
            spoke first), or None (it held the connection for the whole watch, or nobody watched).
            A reset reported by the connect itself (ECONNRESET: Linux only says so after a
            completed handshake; a reset to our SYN is ECONNREFUSED) is "open", after "reset".
refused     a TCP reset came back to our SYN: the host is up and nothing listens. A firewall can
            forge that reset too (nftables ``reject with tcp reset``): nothing on the wire tells
            the two apart, so it stays ``refused``.
filtered    no answer before the timeout (``error`` "timeout"): something drops the SYN; or,
            with ``rejected`` set, a firewall rejected it with ICMP (read on Linux through
            IP_RECVERR, roomprobe/net/icmperr.py):
              admin-prohibited, host-prohibited, net-prohibited (firewalld's default reject),
              port-unreachable: a host's own TCP stack answers a closed port with a reset, never
              with ICMP, so an ICMP port-unreachable to a TCP SYN is a firewall's reject
              (iptables' REJECT default), even when it carries the target's own address.
unreachable no route / host down: ICMP net- or host-unreachable from a router, or from this host
            itself when the target did not answer ARP/ND (``no_neighbour``); without the error
            queue (Windows, macOS) only the errno is known and ``icmp`` is absent.
error       anything else (the errno name is kept); EPERM/EACCES with no ICMP behind them are this
            host's own firewall refusing to send (the callers say so).
"""

from __future__ import annotations

import errno
import selectors
import socket
import time
from typing import Any

from roomprobe.net import icmperr

REFUSED = {errno.ECONNREFUSED, getattr(errno, "WSAECONNREFUSED", -1)}
UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, getattr(errno, "EHOSTDOWN", -1),
               getattr(errno, "WSAEHOSTUNREACH", -1), getattr(errno, "WSAENETUNREACH", -1)}
# Reported by a connect whose handshake had completed (the peer then reset or closed it).
RESET_AFTER_OPEN = {errno.ECONNRESET, errno.EPIPE, getattr(errno, "WSAECONNRESET", -1),
                    getattr(errno, "WSAECONNABORTED", -1)}
# The error names (errname) of a connect this host's own firewall refused to send: EPERM from
# netfilter, EACCES from a socket policy. Nothing left the machine, so nothing was measured.
LOCAL_BLOCK = ("EPERM", "EACCES")
PENDING = {errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY, getattr(errno, "WSAEWOULDBLOCK", -1)}
WATCH_S = 0.5  # how long an open connection is watched for an at-once reset or close


def errname(code: int) -> str:
    return errno.errorcode.get(code, str(code))


def judge(code: int, icmp: dict[str, Any] | None, source: str | None) -> dict[str, Any]:
    """The verdict on a connect that ended with SO_ERROR ``code`` (0: it completed).

    ``icmp`` is what icmperr.read found on the socket's error queue (None: nothing there or not
    Linux); ``source`` is our own address for this connect (an ICMP from it means this host gave
    up on the neighbour). Returns ``{"state", "error", "after"?, "icmp"?, "rejected"?,
    "no_neighbour"?, "detail"?}``.
    """
    if code == 0:
        return {"state": "open", "error": None}
    name = errname(code)
    if code in RESET_AFTER_OPEN:
        return {"state": "open", "error": None, "after": "reset",
                "detail": f"the handshake completed, then the peer reset the connection ({name})"}
    if icmp is not None:
        kind, sender = icmp["icmp"], icmp.get("from")
        said = icmperr.describe(icmp)
        if kind in icmperr.PROHIBITED or kind in ("port-unreachable", "prot-unreachable"):
            forged = ", sent in the target's own name" if sender == icmp.get("target") else ""
            why = ("; a TCP stack answers a closed port with a reset, never with ICMP"
                   if kind == "port-unreachable" else "")
            return {"state": "filtered", "error": name, "icmp": icmp, "rejected": kind,
                    "detail": f"rejected by a firewall: {said}{forged}{why}"}
        if kind in icmperr.UNREACHABLE:
            if sender is not None and sender == source:
                what = "ND" if icmp.get("v6") else "ARP"
                return {"state": "unreachable", "error": name, "icmp": icmp, "no_neighbour": True,
                        "detail": f"no {what} answer: this host gave up on the neighbour ({said})"}
            return {"state": "unreachable", "error": name, "icmp": icmp,
                    "detail": f"a router could not deliver it: {said}"}
        return {"state": "error", "error": name, "icmp": icmp, "detail": said}
    if code in REFUSED:
        return {"state": "refused", "error": name}
    if code in UNREACHABLE:
        return {"state": "unreachable", "error": name}
    return {"state": "error", "error": name}


def source_of(sock: socket.socket) -> str | None:
    """Our own address for this connect (read once the connect has started)."""
    try:
        return str(sock.getsockname()[0])
    except OSError:
        return None


def after_open(sock: socket.socket) -> str | None:
    """What the peer did to an open connection so far, without waiting: "reset", "closed",
    "data", or None (nothing yet). The socket must be non-blocking."""
    try:
        data = sock.recv(1)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError as exc:
        return "reset" if exc.errno in RESET_AFTER_OPEN else errname(exc.errno or 0)
    return "data" if data else "closed"


def arp_proves_reject(error: str | None, neigh: dict[str, Any] | None) -> dict[str, Any] | None:
    """EHOSTUNREACH with no ICMP to read (Windows, macOS) from an on-link room whose ARP answer
    is in the neighbour table: the room is there, so an ICMP reject came back. The evidence
    update for controller-port and the sweep alike, or None when ARP proves nothing."""
    if neigh is None or not neigh.get("mac"):
        return None
    return {"state": "filtered", "rejected": "icmp",
            "detail": f"rejected: the OS reported {error} although the room answered ARP "
                      f"({neigh['mac']}), so an ICMP reject came back (this OS does not say which "
                      "ICMP or who sent it)"}


AFTER_WORDS = {"reset": "open, then reset by the peer", "closed": "open, then closed by the peer",
               "data": "open (the peer spoke first)"}


def connect_state(family: int, sockaddr: tuple, timeout: float, watch: float = 0.0) -> dict[str, Any]:
    """Connect once and close: ``{"state", "error" (errno name, "timeout" or None), "ms"}`` plus
    what ``judge`` adds. With ``watch`` > 0 an open connection is watched that long for an
    at-once reset or close (``after``, ``watched_s``)."""
    t0 = time.monotonic()
    with socket.socket(family, socket.SOCK_STREAM) as s, selectors.DefaultSelector() as sel:
        icmperr.enable(s)
        s.setblocking(False)
        code = s.connect_ex(sockaddr)
        source = source_of(s)
        if code in PENDING:
            sel.register(s, selectors.EVENT_WRITE)
            if not sel.select(max(0.0, timeout - (time.monotonic() - t0))):
                return {"state": "filtered", "error": "timeout",
                        "ms": round((time.monotonic() - t0) * 1000, 1)}
            code = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            sel.unregister(s)
        ms = round((time.monotonic() - t0) * 1000, 1)
        icmp = icmperr.read(s) if code else None
        if icmp is not None:
            icmp["target"] = str(sockaddr[0])
        out: dict[str, Any] = {**judge(code, icmp, source), "ms": ms}
        if out["state"] == "open" and "after" not in out and watch > 0:
            out.update(watch_open(s, sel, watch))
    return out


def watch_open(s: socket.socket, sel: selectors.BaseSelector, watch: float) -> dict[str, Any]:
    """Watch an open, non-blocking connection up to ``watch`` seconds: {"after", "watched_s"}."""
    t1 = time.monotonic()
    sel.register(s, selectors.EVENT_READ)
    after = None
    while after is None and (left := watch - (time.monotonic() - t1)) > 0:
        if sel.select(left):
            after = after_open(s)
    sel.unregister(s)
    return {"after": after, "watched_s": round(time.monotonic() - t1, 3)}
