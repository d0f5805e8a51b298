"""One UDP receive for the quality flows and the serve reflector, on every OS.

Both need, per datagram, the TOS byte it arrived with (the DSCP verdict) and the kernel's receive
time, which only ``recvmsg`` ancillary data carries. ``socket.recvmsg`` does not exist on Windows
(WSARecvMsg is not exposed by Python), so there this falls back to ``recvfrom``: loss, RTT and
jitter are measured the same way (receive time taken in user space at return), and the TOS byte
is reported as not known, never guessed (``MARKS`` is False: callers say "DSCP not measurable on
this OS" instead of judging it). One flag, one place: the tests force the fallback on Linux by
setting ``RECVMSG = False`` and run the real flows through it.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

# True where socket.recvmsg exists (Linux, macOS, the BSDs); False on Windows.
RECVMSG: bool = sys.platform != "win32" and hasattr(socket.socket, "recvmsg")

NOT_MEASURABLE = "not measurable on this OS (its sockets do not report the TOS byte a datagram arrived with)"


def marks() -> bool:
    """Whether a received datagram's TOS byte (DSCP) can be known on this OS at all."""
    return RECVMSG


Ancillary = list[tuple[int, int, bytes]]


def recvmsg(sock: socket.socket, bufsize: int, ancbufsize: int) -> tuple[bytes, Ancillary, int, Any]:
    """``sock.recvmsg(bufsize, ancbufsize)`` where it exists; else ``recvfrom`` with no ancillary data.

    Same 4-tuple either way (data, ancillary items, flags, address), so the callers' parsing of
    TOS and timestamps simply finds nothing on the fallback. A datagram longer than ``bufsize``
    comes back cut to ``bufsize`` (recvmsg also sets MSG_TRUNC) or raises OSError (Windows'
    WSAEMSGSIZE): callers size the buffer one byte above the longest datagram they accept.
    """
    if sys.platform != "win32" and RECVMSG:
        return sock.recvmsg(bufsize, ancbufsize)
    data, addr = sock.recvfrom(bufsize)
    return data, [], 0, addr
