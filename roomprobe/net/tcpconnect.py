"""One TCP connect, classified the same way by every probe that makes one.

open        the handshake completed
refused     a reset came back: the host is up, nothing listens (or a firewall rejects with RST)
filtered    no answer before the timeout: something drops the SYN
unreachable no route / host down (ICMP, or the OS gave up resolving its neighbour)
error       anything else (the errno name is kept)
"""

from __future__ import annotations

import errno
import socket
import time
from typing import Any

REFUSED = {errno.ECONNREFUSED, getattr(errno, "WSAECONNREFUSED", -1)}
UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, getattr(errno, "EHOSTDOWN", -1),
               getattr(errno, "WSAEHOSTUNREACH", -1), getattr(errno, "WSAENETUNREACH", -1)}


def connect_state(family: int, sockaddr: tuple, timeout: float) -> dict[str, Any]:
    """Connect once and close: {"state", "error" (errno name, "timeout" or None), "ms"}."""
    t0 = time.monotonic()
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(sockaddr)
            state, err = "open", None
        except TimeoutError:
            state, err = "filtered", "timeout"
        except OSError as exc:
            err = errno.errorcode.get(exc.errno or 0, str(exc))
            state = ("refused" if exc.errno in REFUSED else
                     "unreachable" if exc.errno in UNREACHABLE else "error")
    return {"state": state, "error": err, "ms": round((time.monotonic() - t0) * 1000, 1)}
