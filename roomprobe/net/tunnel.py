"""One way through to ``host:port``: a TCP connect, directly or tunnelled through a proxy.

Three measurements go through proxies: the cloud probe's HTTPS requests (httpsprobe), the proxy
probe's CONNECT and TLS checks (roomprobe.proxy.sources.checks) and the bandwidth streams
(roomprobe.peer.speed). They ask a proxy the same question, so it is asked here, one way:
``CONNECT host:port`` with ``Proxy-Authorization: Basic`` built from the proxy URL's credentials
(HTTP), or a SOCKS5 CONNECT (RFC 1928, user and password per RFC 1929).

Each caller words a failure in its own report fields, so this module raises what happened and
leaves the wording to them: the socket's own ``OSError`` (with ``progress["phase"]`` saying where
it happened: ``resolve``, ``connect`` or ``proxy``), or ``TunnelRefused`` when the proxy answered
without opening the tunnel. ``error_state`` and ``classify_answer`` are the shared vocabulary.
The credentials go on the wire only: no message here quotes them.
"""

from __future__ import annotations

import base64
import errno
import socket
import time
from collections.abc import Callable
from typing import Any

from roomprobe.core.proxyurl import ProxyURL
from roomprobe.net.tcpconnect import REFUSED, UNREACHABLE
from roomprobe.net.wire import read_head

# A CONNECT answer is a status line and a few headers; more than this is no proxy talking.
ANSWER_LIMIT = 16384
_DEFAULT_PORTS = {"https": 443, "socks5": 1080, "socks5h": 1080, "socks4": 1080, "socks4a": 1080,
                  "socks": 1080}


class TunnelRefused(ConnectionError):
    """The proxy answered the CONNECT without opening the tunnel.

    ``kind`` is ``classify_answer``'s word (auth-required, forbidden, refused-other, garbage,
    closed), ``code`` the HTTP status (None when there was none), ``head`` the raw answer
    (callers redact it before showing it: a proxy may echo the request back)."""

    def __init__(self, kind: str, code: int | None, head: bytes, *, socks: bool = False) -> None:
        super().__init__(f"{'SOCKS ' if socks else ''}proxy answered CONNECT with {code or kind}")
        self.kind, self.code, self.head = kind, code, head


def ms_since(t0: float) -> float:
    return round((time.monotonic() - t0) * 1000, 1)


def error_state(exc: OSError) -> str:
    """How a socket call failed, as a stable kebab-case word for reports."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    if exc.errno in REFUSED:
        return "refused"
    if exc.errno in UNREACHABLE:
        return "unreachable"
    if exc.errno in (errno.ECONNRESET, getattr(errno, "WSAECONNRESET", -1)):
        return "reset"
    return "error"


def proxy_port(proxy: ProxyURL) -> int:
    """The port a proxy URL names, else its scheme's usual one (8080 for HTTP, as curl)."""
    return proxy.port or _DEFAULT_PORTS.get(proxy.scheme, 8080)


def credentials(proxy: ProxyURL) -> str | None:
    """``user:password`` from the proxy URL (already unquoted), None when it names no user."""
    return None if proxy.username is None else f"{proxy.username}:{proxy.password or ''}"


def basic_auth(cred: str) -> str:
    """The ``Proxy-Authorization`` value for ``user:password``."""
    return "Basic " + base64.b64encode(cred.encode()).decode()


def classify_answer(head: bytes) -> tuple[str, int | None]:
    """The CONNECT answer: ok | auth-required | forbidden | refused-other | garbage | closed."""
    if not head:
        return "closed", None
    parts = head.split(b"\r\n", 1)[0].split()
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return "garbage", None
    code = int(parts[1])
    if 200 <= code < 300:
        return "ok", code
    # 401 is what some proxies (tinyproxy) send for wrong credentials, 407 for missing ones.
    return {407: "auth-required", 401: "auth-required", 403: "forbidden"}.get(code, "refused-other"), code


def ask_connect(sock: socket.socket, target: str, cred: str | None) -> bytes:
    """Send ``CONNECT target`` (``host:port``) on ``sock`` and return the proxy's answer head."""
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}", "User-Agent: roomprobe"]
    if cred is not None:
        lines.append("Proxy-Authorization: " + basic_auth(cred))
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return read_head(sock, limit=ANSWER_LIMIT)


def socks5(sock: socket.socket, host: str, port: int, cred: str | None) -> str:
    """A SOCKS5 CONNECT on ``sock``: ``ok`` or why not, in ``classify_answer``'s words."""
    methods = b"\x00\x02" if cred else b"\x00"
    sock.sendall(b"\x05" + bytes([len(methods)]) + methods)
    hello = _recv_exact(sock, 2)
    if len(hello) < 2 or hello[0] != 5:
        return "garbage" if hello else "closed"
    if hello[1] == 0x02 and cred:
        user, _, pw = cred.partition(":")
        u, p = user.encode()[:255], pw.encode()[:255]
        sock.sendall(b"\x01" + bytes([len(u)]) + u + bytes([len(p)]) + p)
        auth = _recv_exact(sock, 2)
        if len(auth) < 2 or auth[1] != 0:
            return "auth-required"
    elif hello[1] == 0xFF or hello[1] == 0x02:
        return "auth-required"
    elif hello[1] != 0:
        return "garbage"
    sock.sendall(b"\x05\x01\x00" + _socks_address(host) + port.to_bytes(2, "big"))
    reply = _recv_exact(sock, 4)
    if len(reply) < 4 or reply[0] != 5:
        return "garbage" if reply else "closed"
    if reply[1] != 0:
        return {2: "forbidden"}.get(reply[1], "refused-other")
    rest = {1: 4, 4: 16}.get(reply[3])
    if rest is None:
        n = _recv_exact(sock, 1)
        rest = n[0] if n else 0
    _recv_exact(sock, rest + 2)
    return "ok"


def _socks_address(host: str) -> bytes:
    """An IPv4 literal as four bytes, anything else as a name the proxy resolves."""
    name = b"\x03" + bytes([len(host.encode()[:255])]) + host.encode()[:255]
    if host.count(".") == 3 and host.replace(".", "").isdigit():
        try:
            return b"\x01" + socket.inet_aton(host)
        except OSError:
            return name
    return name


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def tcp_connect(host: str, port: int, left: Callable[[], float],
                timings: dict[str, float] | None = None,
                progress: dict[str, Any] | None = None) -> socket.socket:
    """Resolve ``host`` and connect to its addresses in the resolver's order until one takes
    (as ``socket.create_connection``: a dual-stack name whose IPv6 path is broken still works),
    each try with ``left()`` seconds. Times both steps (``resolve_ms``, ``connect_ms``). Raises
    ``socket.gaierror``, or the first try's ``OSError`` with ``progress["addr"]`` its address."""
    timings = timings if timings is not None else {}
    progress = progress if progress is not None else {}
    t0 = time.monotonic()
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    timings["resolve_ms"] = ms_since(t0)
    first: tuple[str, OSError] | None = None
    for family, _, _, _, sockaddr in infos:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(left())
        t0 = time.monotonic()
        try:
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            first = first or (str(sockaddr[0]), exc)
            continue
        except BaseException:
            sock.close()
            raise
        timings["connect_ms"] = ms_since(t0)
        progress["addr"] = str(sockaddr[0])
        return sock
    if first is None:
        raise OSError(f"{host}: the resolver returned no address")
    progress["addr"] = first[0]
    raise first[1]


def open_path(host: str, port: int, proxy: ProxyURL | None, left: Callable[[], float], *,
              timings: dict[str, float] | None = None,
              progress: dict[str, Any] | None = None) -> socket.socket:
    """A TCP connection to ``host:port``, directly or through ``proxy`` (HTTP CONNECT or SOCKS5).

    ``left()`` is the timeout for each step (the time left before the caller's deadline).
    ``progress["phase"]`` names the step under way (resolve, connect, proxy) so a caller can
    word a failure, or a wait it gave up on; ``timings`` gets resolve/connect/proxy ms.
    Raises ``socket.gaierror``, the socket's ``OSError`` or ``TunnelRefused``.
    """
    timings = timings if timings is not None else {}
    progress = progress if progress is not None else {}
    if proxy is None:
        progress["phase"] = "resolve"
        return tcp_connect(host, port, left, timings, progress)
    progress["phase"] = "connect"
    sock = tcp_connect(proxy.host, proxy_port(proxy), left, timings, progress)
    progress["phase"] = "proxy"
    try:
        sock.settimeout(left())
        t0 = time.monotonic()
        _through(sock, proxy, host, port)
        timings["proxy_ms"] = ms_since(t0)
    except BaseException:
        sock.close()
        raise
    return sock


def _through(sock: socket.socket, proxy: ProxyURL, host: str, port: int) -> None:
    """Ask the proxy on ``sock`` for a tunnel to host:port; TunnelRefused when it says no."""
    cred = credentials(proxy)
    if proxy.scheme.startswith("socks5"):
        kind = socks5(sock, host, port, cred)
        if kind != "ok":
            raise TunnelRefused(kind, None, b"", socks=True)
        return
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    head = ask_connect(sock, target, cred)
    kind, code = classify_answer(head)
    if kind != "ok":
        raise TunnelRefused(kind, code, head)
