"""The server side of the LAN bandwidth test, and a stand-in for the Zoom Rooms listener.

Runs on the other device (usually the room PC with Zoom Rooms stopped). It answers exactly the
speed-test protocol the bandwidth probe speaks and nothing else:

    GET  /__down?bytes=N   N bytes of zeros (N = 0 is the latency ping)
    POST /__up             reads and discards the body, answers {"bytes": N}
    POST /__check          only with ``serve --agent``: the room's own check, on a whitelisted
                           JSON request, one at a time (roomprobe/peer/agent.py)
    POST /__quality        a session of the UDP reflector: a fresh id and MAC key (with --tls
                           the reflector serves no other sessions)

Safe by default, because it listens on a customer network: it binds only to the address it is
given, every request must carry the session token (constant-time compare; printed on start
only when generated), requests are bounded in size, concurrent connections, pending ones per
source address and total bytes are capped, it exits after
its duration, and it never forwards anything: absolute-URI requests and CONNECT are refused, so
it cannot be used as a relay or proxy.

With ``zoom_port`` it also accepts (and holds, as the app would) TCP connections on that port, so
the controller side can prove the path to 9090 is open while the Zoom Rooms app is stopped.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from roomprobe.core.threads import start_guarded
from roomprobe.peer.agent import CHECK_PATH, MAX_BODY, Agent
from roomprobe.peer.speed import TOKEN_HEADER

QUALITY_PATH = "/__quality"  # POST: a session of the UDP reflector (its id and MAC key)

ZEROS = memoryview(b"\0" * (1024 * 1024))
_PLAIN_BODY = (b'{"error": "this roomprobe serve speaks TLS: give the client --peer-fingerprint '
               b'(printed by serve) so the token never crosses the network in clear"}')
PLAIN_TO_TLS = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n"
                b"Content-Length: " + str(len(_PLAIN_BODY)).encode() + b"\r\n\r\n" + _PLAIN_BODY)


@dataclass
class Limits:
    """Bounds of one serve session.

    ``max_clients`` counts sessions that presented the token; connections that have not yet
    sent a complete request head are counted separately (``max_pending``) and get
    ``header_timeout_s`` for it, so clients trickling a header byte a second cannot take the
    slots a real client needs. Pending connections are also capped per source address
    (``max_pending_per_source``), and when all ``max_pending`` are taken a newcomer displaces
    the oldest pending connection of the sources holding the most: one host re-opening slow
    connections as fast as the header deadline closes them can no longer lock every other
    client out. Connections that presented the token are never pending, so they are never
    displaced. Bytes are capped per client address per ``client_window_s`` (one check over a
    fast LAN must not starve the next client); a lifetime cap is optional.
    """

    max_clients: int = 16
    max_pending: int = 64
    max_pending_per_source: int = 8
    header_timeout_s: float = 2.0
    max_request_bytes: int = 256 * 1024 * 1024
    max_client_bytes: int | None = 30 * 1000**3
    client_window_s: float = 300.0
    max_total_bytes: int | None = None
    idle_timeout_s: float = 30.0


def source_of(client_address: Any) -> str:
    """Whose connection this is, for the pending caps: the client's address (an IPv4-mapped
    IPv6 address as IPv4). Not an IPv6 /64: on a LAN every host shares one /64, so a /64 cap
    would let one host lock out its neighbours; a host using many addresses is handled by
    displacement instead (SpeedServer._displace_for)."""
    host = str(client_address[0])
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


class SpeedServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr: tuple[str, int], token: str, limits: Limits, deadline: float,
                 agent: Agent | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.token = token
        self.tls = tls  # serve --tls: every connection is TLS (roomprobe/peer/servetls.py)
        self.reflector: Any = None  # the UDP reflector: POST /__quality grants its sessions
        self.tls_failed = 0  # handshakes that failed (a wrong client, a scanner, a pin check)
        self.plain_refused = 0  # plain HTTP sent to the TLS port: a one-line 400, nothing read
        self.agent = agent  # serve --agent: POST /__check runs the room's own check
        self.limits = limits
        self.deadline = deadline
        self.bytes_total = 0
        self.requests = 0
        self.rejected = 0
        self.head_timeouts = 0
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.slots = threading.BoundedSemaphore(limits.max_clients)
        self.pending: dict[Any, tuple[float, str]] = {}  # connection -> (head deadline, source)
        self.pending_per_source: dict[str, int] = {}
        self.displaced = 0  # pending connections closed to make room for another source's
        self.client_use: dict[str, deque[tuple[float, int]]] = {}
        self._stop = threading.Event()
        family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.address_family = family
        super().__init__(addr, Handler)
        self.reaper = start_guarded(self._reap, "serve-header-deadline")

    def process_request(self, request: Any, client_address: Any) -> None:
        """No slot yet: a connection first has ``header_timeout_s`` to send a request head."""
        src = source_of(client_address)
        evicted = None
        with self.lock:
            mine = self.pending_per_source.get(src, 0)
            admit = mine < self.limits.max_pending_per_source
            if admit and len(self.pending) >= self.limits.max_pending:
                evicted = self._displace_for(mine)
                admit = evicted is not None
            if admit:
                self.pending[request] = (time.monotonic() + self.limits.header_timeout_s, src)
                self.pending_per_source[src] = mine + 1
            else:
                self.rejected += 1
        if evicted is not None:
            with contextlib.suppress(OSError):
                evicted.shutdown(socket.SHUT_RDWR)
        if not admit:
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """With TLS, in this connection's own thread: the handshake (under the header deadline,
        whose reaper shuts a stalled one down), then the handler on the TLS socket. A client
        speaking plain HTTP to the TLS port gets one plain-text 400 saying so (its request,
        token included, has already crossed the network: the client was not asked for TLS)."""
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        try:
            request.settimeout(self.limits.header_timeout_s)
            first = request.recv(1, socket.MSG_PEEK)
            if not first:  # closed before a byte (a port scan, the header deadline)
                return
            if first.isalpha():  # "GET "/"POST": not a TLS ClientHello (0x16)
                with self.lock:
                    self.plain_refused += 1
                request.sendall(PLAIN_TO_TLS)
                return
            tls = self.tls.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
            with self.lock:  # the header deadline follows the connection to its TLS socket
                if request not in self.pending:
                    tls.close()
                    return
                self.pending[tls] = self.pending.pop(request)
        except OSError:
            return
        try:
            tls.do_handshake()
        except (OSError, ValueError):
            with self.lock:
                self.tls_failed += 1
            self.shutdown_request(tls)
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            self.shutdown_request(tls)


    def _displace_for(self, mine: int) -> Any:
        """(Lock held.) Make room for a newcomer whose source holds ``mine`` pending connections:
        the oldest pending connection among the sources holding the most, removed from the
        pending set, when they hold more than ``mine``; else None (the newcomer is refused).

        So a client with nothing pending always gets in, and the victim is the longest-waiting
        connection of the heaviest sources, never a fresh one (a real client's head arrives
        within milliseconds, a slow-header connection's never)."""
        most = max(self.pending_per_source.values(), default=0)
        if most <= mine:
            return None
        heavy = {src for src, n in self.pending_per_source.items() if n == most}
        victim = min((r for r, (_, src) in self.pending.items() if src in heavy),
                     key=lambda r: self.pending[r][0])
        self._forget(victim)
        self.displaced += 1
        return victim

    def _forget(self, request: Any) -> bool:
        """(Lock held.) Take ``request`` out of the pending set; False if it was not there."""
        entry = self.pending.pop(request, None)
        if entry is None:
            return False
        left = self.pending_per_source[entry[1]] - 1
        if left:
            self.pending_per_source[entry[1]] = left
        else:
            del self.pending_per_source[entry[1]]
        return True

    def head_arrived(self, request: Any) -> bool:
        """The request head is complete: the header deadline no longer applies.

        False if the deadline (or a displacement) had already closed the connection."""
        with self.lock:
            return self._forget(request)

    def _reap(self) -> None:
        """Shut down connections whose request head did not arrive in time (slowloris)."""
        while not self._stop.wait(0.1):
            now = time.monotonic()
            with self.lock:
                late = [r for r, (dl, _) in self.pending.items() if now > dl]
                for r in late:
                    self._forget(r)
                self.head_timeouts += len(late)
            for r in late:
                with contextlib.suppress(OSError):
                    r.shutdown(socket.SHUT_RDWR)

    def shutdown_request(self, request: Any) -> None:
        with self.lock:
            self._forget(request)
        super().shutdown_request(request)

    def server_close(self) -> None:
        self._stop.set()
        super().server_close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Kept, never printed: a client hanging up mid-transfer is how every test ends, and a
        traceback on the terminal of a room PC helps nobody."""
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        with self.lock:
            if len(self.errors) < 20:
                self.errors.append(f"{type(exc).__name__}: {exc}")

    def take(self, n: int, client: str) -> str | None:
        """Reserve ``n`` bytes for ``client``; None if granted, else why not (for the 503)."""
        now = time.monotonic()
        lim = self.limits
        with self.lock:
            if lim.max_total_bytes is not None and self.bytes_total + n > lim.max_total_bytes:
                return "the serve session's total byte budget (--total-mb) is used up"
            if lim.max_client_bytes is not None:
                use = self.client_use.setdefault(client, deque())
                while use and use[0][0] < now - lim.client_window_s:
                    use.popleft()
                if sum(k for _, k in use) + n > lim.max_client_bytes:
                    wait = lim.client_window_s - (now - use[0][0]) if use else lim.client_window_s
                    return (f"this client's byte budget for {lim.client_window_s:g} s is used up; "
                            f"try again in {max(1, round(wait))} s")
                use.append((now, n))
            self.bytes_total += n
            self.requests += 1
            return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SpeedServer
    server_version = "roomprobe-serve"

    def setup(self) -> None:
        self.has_slot = False
        super().setup()
        # Per connection (StreamRequestHandler.timeout is a class attribute): reads honour it at call time.
        self.connection.settimeout(self.server.limits.idle_timeout_s)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if self.has_slot:
                self.has_slot = False
                self.server.slots.release()

    def parse_request(self) -> bool:
        ok = super().parse_request()
        if not self.server.head_arrived(self.connection) and not self.has_slot:
            # The header deadline closed this connection (or it never was pending): drop it.
            self.close_connection = True
            return False
        return ok

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by design
        return

    def _reply(self, status: int, body: dict[str, Any], close: bool = False) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def _allowed(self, path: str) -> bool:
        if not self.path.startswith("/"):  # absolute URI: someone wants a proxy; we are none
            self._reply(405, {"error": "not a proxy"}, close=True)
            return False
        if time.monotonic() > self.server.deadline:
            self._reply(503, {"error": "session over"}, close=True)
            return False
        given = self.headers.get(TOKEN_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.server.token.encode()):
            with self.server.lock:
                self.server.rejected += 1
            self._reply(403, {"error": "missing or wrong session token"}, close=True)
            return False
        if path not in ("/__down", "/__up") and not (path == CHECK_PATH and self.server.agent) \
                and not (path == QUALITY_PATH and self.server.reflector is not None):
            self._reply(404, {"error": "no such endpoint"}, close=True)
            return False
        if not self.has_slot:  # the token is good: only now does the client take a slot
            if not self.server.slots.acquire(blocking=False):
                with self.server.lock:
                    self.server.rejected += 1
                self._reply(503, {"error": f"busy: {self.server.limits.max_clients} clients "
                                           "already connected; try again shortly"}, close=True)
                return False
            self.has_slot = True
        return True

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        parts = urlsplit(self.path)
        if not self._allowed(parts.path if self.path.startswith("/") else ""):
            return
        if parts.path != "/__down":
            self._reply(405, {"error": f"use POST {parts.path}"}, close=True)
            return
        try:
            n = int(parse_qs(parts.query).get("bytes", ["0"])[0])
        except ValueError:
            n = -1
        if not 0 <= n <= self.server.limits.max_request_bytes:
            self._reply(400, {"error": f"bytes must be 0..{self.server.limits.max_request_bytes}"},
                        close=True)
            return
        if not self._take(n):
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(n))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        left = n
        while left > 0:
            k = min(left, len(ZEROS))
            self.wfile.write(ZEROS[:k])
            left -= k

    def _take(self, n: int) -> bool:
        """Charge ``n`` bytes to this session's and this time window's caps; False (503 sent)
        when they would be exceeded."""
        why = self.server.take(n, str(self.client_address[0]))
        if why is not None:
            self._reply(503, {"error": why}, close=True)
            return False
        return True

    def do_POST(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        if not self._allowed(parts.path if self.path.startswith("/") else ""):
            return
        if parts.path == CHECK_PATH:
            self._check()
            return
        if parts.path == QUALITY_PATH:  # a reflector session for this token holder
            sid, key = self.server.reflector.grant()
            self._reply(200, {"session": sid.hex(), "key": key.hex()}, close=True)
            return
        if parts.path != "/__up":
            self._reply(405, {"error": "use GET /__down"}, close=True)
            return
        try:
            n = int(self.headers.get("Content-Length", "-1"))
        except ValueError:
            n = -1
        if not 0 <= n <= self.server.limits.max_request_bytes:
            self._reply(411 if n < 0 else 413, {"error": "bad or too large Content-Length"},
                        close=True)
            return
        if not self._take(n):
            return
        buf = memoryview(bytearray(1024 * 1024))  # reused: no allocation per read
        left = n
        while left > 0:
            got = self.rfile.readinto1(buf[: min(left, len(buf))])
            if not got:
                return
            left -= got
        self._reply(200, {"bytes": n})

    def _check(self) -> None:
        """serve --agent: the room's own check (roomprobe/peer/agent.py says what is allowed)."""
        agent = self.server.agent
        assert agent is not None  # _allowed let /__check through only with an agent
        try:
            n = int(self.headers.get("Content-Length", "-1"))
        except ValueError:
            n = -1
        if not 0 <= n <= MAX_BODY:
            self._reply(411 if n < 0 else 413,
                        {"error": "a Content-Length is required" if n < 0
                         else f"body larger than {MAX_BODY} bytes"}, close=True)
            return
        body = self.rfile.read(n)
        if len(body) < n:
            self.close_connection = True
            return
        status, reply = agent.handle(body)
        self._reply(status, reply, close=True)

    def _refuse(self) -> None:
        self._reply(405, {"error": "method not allowed; this is not a proxy"}, close=True)

    do_CONNECT = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = _refuse  # noqa: N815


STANDIN_HOLD_S = 10.0  # as long as a controller's probe watches (controller-port watches 0.5 s)
STANDIN_MAX_HELD = 64  # bounded: the oldest held connection is closed for a newcomer


def zoom_standin(bind: str, port: int, stop: threading.Event) -> socket.socket:
    """Listen on ``port`` in place of the stopped Zoom Rooms app: the path to 9090 proves open.

    Each connection is held open (up to ``STANDIN_HOLD_S``, at most ``STANDIN_MAX_HELD`` at
    once), as the app holds a controller's connection: one closed at once would read, rightly,
    as "open, then closed by the peer" (a service that drops the controller), not as open.
    Nothing is read or answered.
    """
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    lsock = socket.socket(family, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((bind, port))
    lsock.listen(16)
    lsock.settimeout(0.5)
    held: deque[tuple[float, socket.socket]] = deque()

    def release(expired_only: bool) -> None:
        now = time.monotonic()
        while held and (not expired_only or held[0][0] <= now or len(held) > STANDIN_MAX_HELD):
            with contextlib.suppress(OSError):
                held.popleft()[1].close()

    def loop() -> None:
        try:
            while not stop.is_set():
                release(expired_only=True)
                try:
                    conn, _ = lsock.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                held.append((time.monotonic() + STANDIN_HOLD_S, conn))
        finally:
            release(expired_only=False)

    start_guarded(loop, "zoom-standin")
    return lsock
