"""Small pieces of HTTP/1.1 on raw sockets, shared by the probes that speak it by hand (they
time every phase and talk CONNECT to proxies, which an HTTP library would hide)."""

from __future__ import annotations

import socket
import ssl


def read_head(sock: socket.socket | ssl.SSLSocket, limit: int = 65536) -> bytes:
    """Read until the end of the HTTP head (a blank line), the peer closes, or ``limit`` bytes."""
    buf = b""
    while b"\r\n\r\n" not in buf and len(buf) < limit:
        chunk = sock.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf


def head_line(head: bytes, limit: int = 120) -> str:
    """The status line of an HTTP head as evidence text, with credentials redacted.

    A proxy that echoes our request back (some error pages do) would otherwise put our
    ``Proxy-Authorization: Basic ...`` into the report; only the first line is kept, and it
    goes through the same redaction as every other string we store.
    """
    from roomprobe.core.redact import redact_text

    return redact_text(head.split(b"\r\n", 1)[0].decode("latin-1", "replace"))[:limit]
