"""The LAN link to a ``roomprobe serve`` peer, shared by the probes that use it (bandwidth, quality):
how ``--peer`` is spelled, and one lock for the link.

Why: the runner starts the link-loading probes together (after the quick ones), and the
bandwidth test saturates the link on purpose. A quality measurement taken while it runs would
report the bandwidth test's own queue as jitter and loss. Probes that send to the peer hold
``PEER_LINK`` while they do.
"""

from __future__ import annotations

import threading

from roomprobe.core.targets import BadScope, ip_literal

PEER_LINK = threading.Lock()


def split_peer(peer: str, default_port: int) -> tuple[str, int]:
    """``ADDR``, ``ADDR:PORT`` or ``[V6]:PORT``, ``default_port`` where none is written; raises
    ValueError with the reason."""
    host, port = parse_peer(peer)
    return host, default_port if port is None else port


def parse_peer(peer: str) -> tuple[str, int | None]:
    """``ADDR``, ``ADDR:PORT`` or ``[V6]:PORT``: the host and the port written (None: none was,
    so the caller's own default applies); raises ValueError with the reason."""
    peer = peer.strip()
    if peer.startswith("["):
        host, _, rest = peer[1:].partition("]")
        port_s: str | None = rest.removeprefix(":") or None
    elif peer.count(":") == 1:
        host, port_s = peer.split(":")
    else:
        host, port_s = peer, None
    shown = peer if len(peer) <= 80 else peer[:77] + "..."
    # isascii: '²'.isdigit() is True but int('²') raises with Python's own message.
    if not host or (port_s is not None and (not (port_s.isascii() and port_s.isdigit()) or len(port_s) > 5
                                            or not 0 < int(port_s) < 65536)):
        raise ValueError(f"--peer {shown!r} is not ADDR or ADDR:PORT (PORT a number from 1 "
                         "to 65535)")
    from roomprobe.core.proxyurl import host_problem

    problem = host_problem(host)  # control characters, bytes that are no UTF-8, a 64-char label
    if problem:
        raise ValueError(f"--peer {shown!r}: {problem.replace('its host', 'the host')}")
    if "%" in host:  # a scoped IPv6 literal: the scope must be an interface name or index
        try:
            ip_literal(host)
        except BadScope as exc:
            raise ValueError(f"--peer: {exc}") from None
        except ValueError:
            raise ValueError(f"--peer {shown!r} is not ADDR or ADDR:PORT") from None
    return host, None if port_s is None else int(port_s)
