"""The measuring engine of the bandwidth probe: steady-state throughput and latency under load.

Speed-test CLIs that divide bytes by wall time under-report fast links 2-3x: TCP slow start, the
connection set-up and the last partial request all count as time with few bytes. This engine
measures the way iperf3 does instead:

* several parallel TCP streams per direction, each sending back-to-back HTTP requests whose
  payload ramps up (so per-request gaps vanish on fast links);
* a sampler adds up the bytes every 100 ms; the first ``omit_s`` seconds (slow start, buffers
  filling) are dropped and the rate is taken over the remaining, steady window only;
* upload counts bytes the peer acknowledged, not bytes handed to the kernel: on Linux the bytes
  still in the socket's send queue (SIOCOUTQ) are subtracted, so a deep send buffer on a slow
  link does not inflate the figure;
* a direction stops early once its steady rate is stable, otherwise at its time cap;
* a separate small connection on the same path measures request round trips while idle and
  while each direction is loaded: median, jitter and the added latency (buffer bloat).

The protocol is the public speed-test style (``GET <down_url>?bytes=N``, ``POST <up_url>``), which
``roomprobe serve`` answers too. HTTP(S) goes through the proxy the system would use for the URL.
"""

from __future__ import annotations

import contextlib
import http.client
import select
import socket
import ssl
import statistics
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from roomprobe.core.proxyurl import ProxyURL, parse_proxy_url
from roomprobe.net import tlstrust
from roomprobe.net.tunnel import TunnelRefused, basic_auth, credentials, open_path, proxy_port
from roomprobe.peer.tls import PinMismatch, PinnedHTTPSConnection
from roomprobe.proxy.resolver import route_for
from roomprobe.proxy.sources import proxy_problem

TOKEN_HEADER = "X-Roomprobe-Token"
CHUNK = 256 * 1024
SEND_CHUNK = 1024 * 1024  # send() takes what fits (the socket has a timeout), so stop stays prompt
SAMPLE_S = 0.1


class EndpointError(Exception):
    """The endpoint could not be used at all (connect, TLS, proxy or HTTP status)."""

    def __init__(self, message: str, *, status: int | None = None, stage: str = "connect",
                 unusable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.stage = stage
        # True: this route could not be used at all (no connection, a silent or broken proxy),
        # so the next entry of a PAC chain is tried; an answer (HTTP status, the proxy's 407 on
        # CONNECT) is the result, as httpsprobe does for the cloud.
        self.unusable = unusable


class ProxySettingError(EndpointError):
    """The proxy the system would use for the URL is not a usable proxy address.

    ``setting`` names it (``https_proxy``, "proxy server", a PAC answer) and ``where`` says where
    it lives (the environment, the registry key, the PAC file), so the message tells the user
    exactly what to fix. ``shown`` is the value with any credentials removed.
    """

    def __init__(self, problem: str, *, setting: str, where: str, shown: str,
                 unsupported: bool = False) -> None:
        super().__init__(f"the proxy setting {setting} ({where}) = {shown!r} {problem}",
                         stage="proxy-setting")
        self.problem, self.setting, self.where, self.shown = problem, setting, where, shown
        self.unsupported = unsupported


def redact_proxy(value: str) -> str:
    """A proxy value for messages: ``user:password@`` cut out without parsing (it may not parse),
    then the shared rule (roomprobe.core.redact) for the rest: a PAC URL's ``?token=`` too."""
    from roomprobe.core.redact import redact_text

    value = value.strip()[:200]
    scheme, sep, rest = value.partition("://")
    if not sep:
        scheme, rest = "", value
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return redact_text(f"{scheme}{sep}{rest}")


def _problem(proxy: str) -> tuple[str, bool] | None:
    """Why ``proxy`` cannot be used for the measurement, and whether it is merely unsupported:
    a usable proxy URL (the shared rule, the one the proxy and cloud probes use) of a kind the
    measurement does not speak (it speaks to HTTP proxies only, as Zoom does for its web traffic).
    """
    problem = proxy_problem(proxy, speaks=("http",), why="as Zoom does for its web traffic")
    return None if problem is None else (problem, proxy_problem(proxy) is None)


def _raw_proxy(url: str) -> str | None:
    """The proxy value as set (before the resolver judged it), for the message; never raises."""
    try:
        from roomprobe.proxy.resolver import effective_source

        src = effective_source()
        scheme = urlsplit(url).scheme
        return None if src is None else (src.proxies.get(scheme) or src.proxies.get("all"))
    except Exception:
        return None


def _where_set(url: str) -> tuple[str, str]:
    """(setting, where it lives) for the proxy the system uses for ``url``; never raises."""
    try:
        from roomprobe.proxy.resolver import effective_source
        from roomprobe.proxy.sources.env import variables

        src = effective_source()
        if src is None:
            return "proxy", "system settings"
        if src.name == "env":
            found = variables()
            scheme = urlsplit(url).scheme
            name = found.get(scheme, found.get("all", ("", "")))[0]
            return (name or f"{scheme}_proxy"), "environment variable"
        if src.pac_url:
            return "the PAC file's answer", f"{src.origin}, PAC {redact_proxy(src.pac_url)}"
        return "proxy server", src.origin
    except Exception as exc:  # naming the place must never hide the problem itself
        return "proxy", f"system settings (could not tell which: {type(exc).__name__})"


def system_proxy(url: str) -> str | None:
    """The proxy the system would use for ``url`` (None: direct), checked before any traffic.

    Raises ProxySettingError naming the setting and where it lives when the value is not a
    usable proxy address (``https_proxy=http://127.0.0.1:abc``), instead of a crash deep in a
    stream thread; and when the proxy settings cannot be read at all.
    """
    route = route_for(url)  # never raises; "invalid" when the setting is no proxy URL
    proxy = route.proxy if route.via != "invalid" else _raw_proxy(url) or "?"
    if proxy is None:  # only a valid route has no proxy: direct
        return None
    problem = _problem(proxy)
    if problem is None and route.via == "invalid":  # unreadable settings, or a PAC's odd answer
        problem = (f"could not be used ({route.error or 'invalid'})", False)
    if problem is not None:
        setting, where = _where_set(url)
        raise ProxySettingError(problem[0], setting=setting, where=where,
                                shown=redact_proxy(proxy), unsupported=problem[1])
    return proxy


@dataclass
class Endpoint:
    """Where to measure: download and upload URLs, extra headers (the serve token), timeout."""

    down_url: str
    up_url: str
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 3.0
    use_proxy: bool = True
    # A roomprobe serve peer over TLS (https URLs): its certificate's SHA-256 fingerprint, or
    # tls_unpinned when the user asked by name for TLS without a checked certificate.
    pin: str | None = None
    tls_unpinned: bool = False
    # Entries of the route's fallback chain that could not be used, before the one in _proxy.
    tried: list[dict[str, str]] = field(default_factory=list)
    _proxy: list[str | None] = field(default_factory=list, repr=False)

    def proxy(self) -> str | None:
        """The proxy for these URLs, decided once (every stream must take the same path): the
        system's first choice until :func:`open_endpoint` settles on a later chain entry.

        Raises ProxySettingError on an unusable proxy setting (see :func:`system_proxy`).
        """
        if not self.use_proxy:
            return None
        if not self._proxy:
            self._proxy.append(system_proxy(self.down_url))
        return self._proxy[0]

    def chain(self) -> list[str | None]:
        """The entries to try in order: the first choice, then the rest of a PAC file's
        ``PROXY a; PROXY b; DIRECT`` (None is DIRECT). Entries that are no usable proxy address
        (a SOCKS answer, a bad port) are left out; the first one is checked by :meth:`proxy`."""
        first = self.proxy()
        if not self.use_proxy:
            return [first]
        route = route_for(self.down_url)
        rest = route.chain[1:] if route.via != "invalid" and route.chain[:1] == [first] else []
        return [first, *(e for e in rest if e is None or _problem(e) is None)]

    def settle(self, proxy: str | None) -> None:
        """Every later stream takes ``proxy`` (the chain entry that answered)."""
        self._proxy[:] = [proxy]


class TunnelledHTTPS(http.client.HTTPSConnection):
    """HTTPS through a proxy's CONNECT tunnel, opened by the one CONNECT client (net/tunnel).

    A refusal keeps the words http.client's own tunnel used ("Tunnel connection failed: 407
    ...", a closed or garbled answer), which the bandwidth evidence has always shown."""

    def __init__(self, host: str, port: int, proxy: ProxyURL, *, timeout: float,
                 context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self.via, self.tls, self.wait = proxy, context, timeout

    def connect(self) -> None:
        try:
            raw = open_path(self.host, self.port, self.via, lambda: self.wait)
        except TunnelRefused as exc:
            raise _as_http_client(exc) from None
        with contextlib.suppress(OSError):
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.sock = self.tls.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


def _as_http_client(exc: TunnelRefused) -> Exception:
    """A refused tunnel as http.client words it."""
    if exc.code is not None:
        reason = exc.head.split(b"\r\n", 1)[0].decode("iso-8859-1").split(None, 2)[2:]
        return OSError(f"Tunnel connection failed: {exc.code} {''.join(reason).strip()}")
    if exc.kind == "closed":
        return http.client.RemoteDisconnected("Remote end closed connection without response")
    first = exc.head[:exc.head.find(b"\n") + 1 or None]  # the line as read, its ending included
    return http.client.BadStatusLine(first.decode("iso-8859-1"))


class Client:
    """One persistent HTTP/1.1 connection to the endpoint, direct or through the system proxy."""

    def __init__(self, url: str, timeout: float, proxy: str | None, *, pin: str | None = None,
                 tls_unpinned: bool = False) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise EndpointError(f"not an http(s) URL: {url}", stage="config")
        self.scheme, self.host = parts.scheme, parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.absolute = False
        via = parse_proxy_url(proxy) if proxy else None  # the last @, as curl reads it
        cred = credentials(via) if via is not None else None
        # plain http goes to the proxy as an absolute-form request carrying the credentials
        self.extra = {} if self.scheme == "https" or cred is None else {"Proxy-Authorization": basic_auth(cred)}
        if self.scheme == "https" and (pin is not None or tls_unpinned):
            # a roomprobe serve peer: its pinned certificate, checked before the token is sent
            self.conn: http.client.HTTPConnection = PinnedHTTPSConnection(
                self.host, self.port, timeout=timeout, pin=pin)
        elif self.scheme == "https" and via is not None:
            self.conn = TunnelledHTTPS(self.host, self.port, via, timeout=timeout,
                                       context=tlstrust.client_context())
        elif self.scheme == "https":
            self.conn = http.client.HTTPSConnection(self.host, self.port, timeout=timeout,
                                                    context=tlstrust.client_context())
        elif via is not None:
            self.conn = http.client.HTTPConnection(via.host, proxy_port(via), timeout=timeout)
            self.absolute = True
        else:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def target(self, url: str) -> str:
        """The request target: the absolute URL through an HTTP proxy, else path and query."""
        if self.absolute:
            return url
        parts = urlsplit(url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    @property
    def sock(self) -> socket.socket | None:
        return self.conn.sock

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()


_ABORT = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() resets and drops unsent data


def quiet(sock: socket.socket) -> None:
    """Stop a stream so the link goes quiet at once.

    Why: a plain close (or shutdown) leaves what the kernel still holds in the send buffer
    (megabytes, with autotuning) flowing out after the measurement has ended; on a thin link
    that takes seconds and starves whatever is measured next (seen: the next check's DNS
    timing out behind a finished upload). Linger 0 makes the close a reset that drops it.
    """
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _ABORT)
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def with_bytes(url: str, n: int) -> str:
    return f"{url}{'&' if '?' in url else '?'}bytes={n}"


def _queued(sock: socket.socket | None, request: str) -> int:
    if sock is None or not sys.platform.startswith("linux"):
        return 0
    try:
        import fcntl
        import struct
        import termios

        raw = fcntl.ioctl(sock.fileno(), getattr(termios, request), b"\0\0\0\0")
        return int(struct.unpack("i", raw)[0])
    except (OSError, ValueError):
        return 0


def unacked(sock: socket.socket | None) -> int:
    """Bytes written but not yet acknowledged by the peer (Linux SIOCOUTQ); 0 where unknown."""
    return _queued(sock, "TIOCOUTQ")


def unread(sock: socket.socket | None) -> int:
    """Bytes that arrived but our reader has not taken yet (Linux SIOCINQ); 0 where unknown."""
    return _queued(sock, "FIONREAD")


# A kept-alive connection the server or proxy closed between requests (tinyproxy does after each).
STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


def ping_once(client: Client, ep: Endpoint) -> float:
    """One tiny request round trip on ``client``'s connection, in milliseconds."""
    for attempt in (1, 2):
        t0 = time.monotonic()
        reused = client.sock is not None
        try:
            client.conn.request("GET", client.target(with_bytes(ep.down_url, 0)),
                                headers={**ep.headers, **client.extra})
            resp = client.conn.getresponse()
            resp.read()
            break
        except STALE:
            client.close()
            if attempt == 2 or not reused:
                raise
    if resp.status != 200:
        raise EndpointError(f"HTTP {resp.status} {resp.reason}", status=resp.status, stage="http")
    return (time.monotonic() - t0) * 1000


def open_endpoint(ep: Endpoint) -> tuple[Client, float]:
    """Connect and make one request: proves the endpoint answers before any load is sent.

    The route's fallback chain is walked as browsers do: an entry that cannot be used at all
    (refused, unreachable, silent, a proxy that breaks the connection) hands over to the next and
    is listed in ``ep.tried``; the first entry that answers is the path every stream then takes.
    """
    chain = ep.chain()
    for i, proxy in enumerate(chain):
        ep.settle(proxy)  # the streams follow this entry, and so does the evidence of its error
        try:
            return _open_via(ep, proxy)
        except EndpointError as exc:
            if not (exc.unusable and i + 1 < len(chain)):
                raise
            ep.tried.append({"proxy": redact_proxy(proxy) if proxy else "DIRECT", "error": str(exc)})
    raise AssertionError("unreachable: a chain has at least one entry")


def _open_via(ep: Endpoint, proxy: str | None) -> tuple[Client, float]:
    client = Client(ep.down_url, ep.timeout, proxy, pin=ep.pin, tls_unpinned=ep.tls_unpinned)
    try:
        ping_once(client, ep)  # connection set-up (TCP, TLS, proxy) is not a latency sample
        return client, ping_once(client, ep)
    except EndpointError:
        client.close()
        raise
    except (OSError, http.client.HTTPException) as exc:
        client.close()
        kind = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
        # http.client reports a proxy's refusal of CONNECT as "Tunnel connection failed: 407 ...":
        # that is the proxy's answer, not an entry that cannot be used.
        # A TLS failure is the endpoint's (or an inspecting proxy's) answer too.
        answered = str(exc).startswith("Tunnel connection failed") or isinstance(exc, ssl.SSLError)
        if isinstance(exc, PinMismatch):  # not this peer: nothing was sent, nothing measured
            raise EndpointError(str(exc), stage="tls-pin") from None
        raise EndpointError(f"{kind}: {exc}" if str(exc) else kind,
                            unusable=not answered) from None


# -- statistics ---------------------------------------------------------------------------------
def steady_rate(samples: list[tuple[float, int]], omit_s: float) -> tuple[float | None, float]:
    """Mbps over the window after the first ``omit_s`` seconds of traffic, and that window's length.

    ``samples`` are (seconds, cumulative bytes). Time starts at the first sample with bytes, so a
    slow connect does not eat the warm-up allowance.
    """
    first = next((i for i, (_, b) in enumerate(samples) if b > 0), None)
    if first is None:
        return None, 0.0
    t_start = samples[max(0, first - 1)][0]
    start = next((s for s in samples if s[0] >= t_start + omit_s), None)
    end = samples[-1]
    if start is None or end[0] - start[0] < 2 * SAMPLE_S:
        return None, 0.0
    seconds = end[0] - start[0]
    return (end[1] - start[1]) * 8 / seconds / 1e6, seconds


def is_stable(samples: list[tuple[float, int]], omit_s: float, min_steady_s: float,
              tolerance: float) -> bool:
    """True when the steady window is long enough and its second half agrees with the whole."""
    whole, seconds = steady_rate(samples, omit_s)
    if whole is None or seconds < min_steady_s or whole <= 0:
        return False
    t_half = samples[-1][0] - seconds / 2
    half = [s for s in samples if s[0] >= t_half]
    recent, _ = steady_rate(half, 0.0) if len(half) > 2 else (None, 0.0)
    if recent is None:
        return False
    return abs(recent - whole) / whole <= tolerance


def latency_stats(rtts: list[float]) -> dict[str, Any]:
    """Median and jitter (mean absolute difference of consecutive samples, as RTP does), in ms."""
    if not rtts:
        return {"samples": 0, "median_ms": None, "jitter_ms": None}
    diffs = [abs(b - a) for a, b in zip(rtts, rtts[1:], strict=False)]
    return {"samples": len(rtts), "median_ms": round(statistics.median(rtts), 1),
            "jitter_ms": round(statistics.fmean(diffs), 1) if diffs else 0.0,
            "min_ms": round(min(rtts), 1), "max_ms": round(max(rtts), 1)}


# -- load generation ----------------------------------------------------------------------------
@dataclass
class _Load:
    """Shared state of one direction's streams: counters, current sockets, errors, stop flag."""

    streams: int
    counts: list[int] = field(default_factory=list)
    socks: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Socket timeout while a body moves: past the direction's end (stop shuts sockets down).
    # One stream starved for seconds on a tail-drop link (TCP backing off) is not a failure
    # while the others fill the link; a silence of the whole direction is (see run_direction).
    hold: float = 30.0

    def __post_init__(self) -> None:
        self.counts = [0] * self.streams
        self.socks = [None] * self.streams

    def delivered(self, upload: bool) -> int:
        with self.lock:  # a stream detaching its socket moves bytes between the two terms
            socks = list(self.socks)
            total = sum(self.counts)
            if upload:
                total -= sum(unacked(s) for s in socks)
            else:  # what crossed the link, even if a reader thread has not been scheduled yet
                total += sum(unread(s) for s in socks)
        return max(0, total)

    def detach(self, i: int, upload: bool) -> None:
        """Stream ``i`` lets go of its socket; an upload takes back what the peer never acked.

        Without this, an upload stream that fails (a send timing out on a congested link) or is
        stopped would leave its unacknowledged send queue counted as delivered the moment its
        socket is forgotten: a jump of up to a send buffer in one sample, which over a 2 Mbit/s
        link read as 2.47 Mbps.
        """
        with self.lock:
            sock = self.socks[i]
            if upload and sock is not None:
                self.counts[i] -= unacked(sock)
            self.socks[i] = None


def _sizes(first: int, cap: int) -> Iterator[int]:
    """Payload sizes doubling up to ``cap``: small first (slow links), large later (fewer gaps)."""
    size = first
    while True:
        yield size
        size = min(cap, size * 2)


def _download_stream(ep: Endpoint, load: _Load, i: int, first: int, cap: int) -> None:
    client = Client(ep.down_url, ep.timeout, ep.proxy(), pin=ep.pin, tls_unpinned=ep.tls_unpinned)
    try:
        for size in _sizes(first, cap):
            if load.stop.is_set():
                return
            reused = client.sock is not None
            try:
                client.conn.request("GET", client.target(with_bytes(ep.down_url, size)),
                                    headers={**ep.headers, **client.extra})
                load.socks[i] = client.sock
                _hold(client.sock, load)
                resp = client.conn.getresponse()
            except STALE:
                if not reused:
                    raise
                client.close()  # closed between requests: reconnect and go on
                continue
            if resp.status != 200:
                load.errors.append(f"download HTTP {resp.status}")
                return
            while not load.stop.is_set():
                # read1: whatever has arrived (one recv), so counting and stopping stay prompt
                n = len(resp.read1(CHUNK))
                if not n:
                    break
                load.counts[i] += n
            if load.stop.is_set():
                return
            resp.read()  # read1 leaves a finished response open; this closes it for reuse
    except (OSError, http.client.HTTPException) as exc:
        if not load.stop.is_set():
            load.errors.append(f"download {type(exc).__name__}: {exc}")
    finally:
        load.socks[i] = None
        client.close()


def _post_headers(client: Client, ep: Endpoint, size: int) -> None:
    client.conn.putrequest("POST", client.target(ep.up_url), skip_accept_encoding=True)
    for k, v in {**ep.headers, **client.extra, "Content-Type": "application/octet-stream",
                 "Content-Length": str(size)}.items():
        client.conn.putheader(k, v)
    client.conn.endheaders()


def _hold(sock: socket.socket | None, load: _Load) -> None:
    """Connected with the connect timeout; while the body moves, wait as long as the run does."""
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.settimeout(load.hold)


def _drain(sock: socket.socket, load: _Load) -> None:
    """Wait while the peer acknowledges the body still queued in our socket.

    The last send() returns once the tail of the body is in the kernel, which on a slow link
    can hold seconds of data (the send buffer grows with the window): on a 2 Mbit/s link,
    400 KB queued in each of four streams takes 6.4 s to leave. Asking for the answer at once,
    under a 3 s socket timeout, timed out on a healthy link and cut the stream (and, before
    ``_Load.detach``, counted its queue as delivered). So wait here, in small steps, until the
    queue is empty, the peer answers early (an error status, a close) or the run stops; a
    silence of the whole direction is caught by run_direction's watchdog. Linux; elsewhere the
    queue is unknown (0) and the answer is awaited under the socket timeout.
    """
    while unacked(sock) > 0 and not load.stop.is_set():
        if select.select([sock], [], [], 0.02)[0]:
            return


def _upload_stream(ep: Endpoint, load: _Load, i: int, first: int, cap: int) -> None:
    payload = memoryview(b"\0" * SEND_CHUNK)
    client = Client(ep.up_url, ep.timeout, ep.proxy(), pin=ep.pin, tls_unpinned=ep.tls_unpinned)
    try:
        for size in _sizes(first, cap):
            if load.stop.is_set():
                return
            reused, sent = client.sock is not None, 0
            try:
                _post_headers(client, ep, size)
                sock = client.sock
                assert sock is not None
                load.socks[i] = sock
                _hold(sock, load)
                while sent < size and not load.stop.is_set():
                    n = sock.send(payload[: min(SEND_CHUNK, size - sent)])
                    load.counts[i] += n
                    sent += n
                if load.stop.is_set():
                    return
                _drain(sock, load)
                if load.stop.is_set():
                    return
                resp = client.conn.getresponse()  # the peer answers once it has the whole body
                resp.read()
            except STALE:
                if not reused:
                    raise
                with load.lock:
                    load.socks[i] = None
                    load.counts[i] -= sent  # written into a connection that was already gone
                client.close()
                continue
            load.detach(i, upload=True)
            if resp.status != 200:
                load.errors.append(f"upload HTTP {resp.status}")
                return
    except (OSError, http.client.HTTPException) as exc:
        if not load.stop.is_set():
            load.errors.append(f"upload {type(exc).__name__}: {exc}")
    finally:
        load.detach(i, upload=True)  # before close: the kernel still knows what is unacked
        client.close()


@dataclass
class Settings:
    """How to measure; the probe fills these from its options."""

    streams: int = 4
    omit_s: float = 1.0
    min_steady_s: float = 2.0
    tolerance: float = 0.04
    first_bytes: int = 256 * 1024
    max_request_bytes: int = 64 * 1024 * 1024
    ping_interval_s: float = 0.1
    idle_s: float = 1.0


class Pinger:
    """Round trips on its own connection, all the time, labelled by the phase they fell in."""

    def __init__(self, client: Client, ep: Endpoint, interval: float) -> None:
        self.client, self.ep, self.interval = client, ep, interval
        self.samples: list[tuple[float, float]] = []  # (time the reply came, rtt ms)
        self.lost = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="bw-ping")

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                rtt = ping_once(self.client, self.ep)
                self.samples.append((time.monotonic(), rtt))
            except (OSError, http.client.HTTPException, EndpointError):
                self.lost += 1
                self.client.close()
                self.client = Client(self.ep.down_url, self.ep.timeout, self.ep.proxy(),
                                     pin=self.ep.pin, tls_unpinned=self.ep.tls_unpinned)
            self.stop.wait(self.interval)

    def between(self, t0: float, t1: float) -> list[float]:
        return [rtt for t, rtt in list(self.samples) if t0 <= t <= t1]


def run_direction(ep: Endpoint, upload: bool, seconds: float, st: Settings,
                  progress: Callable[[str, float | None], None] | None = None) -> dict[str, Any]:
    """Load one direction for at most ``seconds``; returns steady Mbps, bytes and the window."""
    load = _Load(st.streams, hold=seconds + 2 * ep.timeout + 2.0)
    target = _upload_stream if upload else _download_stream
    threads = [threading.Thread(target=target, daemon=True, name=f"bw-{i}",
                                args=(ep, load, i, st.first_bytes, st.max_request_bytes))
               for i in range(st.streams)]
    t0 = time.monotonic()
    for th in threads:
        th.start()
    samples: list[tuple[float, int]] = [(0.0, 0)]
    stable = False
    name = "up" if upload else "down"
    moved_at = 0.0  # when the delivered count last grew: the whole-direction watchdog
    while True:
        time.sleep(SAMPLE_S)
        now = time.monotonic() - t0
        samples.append((now, load.delivered(upload)))
        if samples[-1][1] > samples[-2][1]:
            moved_at = now
        elif now - moved_at > max(ep.timeout, 2 * SAMPLE_S):
            load.errors.append(f"{'upload' if upload else 'download'} stalled: no data for "
                               f"{now - moved_at:.1f} s")
            break
        if progress and len(samples) % 3 == 0:
            progress(name, steady_rate(samples, st.omit_s)[0])
        if is_stable(samples, st.omit_s, st.min_steady_s, st.tolerance):
            stable = True
            break
        if now >= seconds or (len(load.errors) >= st.streams and load.delivered(upload) == 0):
            break
        if load.errors and all(not th.is_alive() for th in threads):
            break
    load.stop.set()
    for sock in list(load.socks):  # unblock streams waiting in send/recv: the link must go quiet
        if sock is not None:
            quiet(sock)
    mbps, window = steady_rate(samples, st.omit_s)
    if mbps is None and samples[-1][1] > 0 and samples[-1][0] > 0:
        mbps = samples[-1][1] * 8 / samples[-1][0] / 1e6  # too short for a steady window
    join_until = time.monotonic() + 1.0
    for th in threads:
        th.join(timeout=max(0.0, join_until - time.monotonic()))
    wall = time.monotonic() - t0
    first = next((i for i, (_, b) in enumerate(samples) if b > 0), None)
    omit_until = (samples[max(0, first - 1)][0] + st.omit_s) if first is not None else None
    return {"mbps": round(mbps, 2) if mbps is not None else None, "bytes": int(sum(load.counts)),
            "seconds": round(wall, 2), "steady_seconds": round(window, 2), "stable": stable,
            "streams": st.streams, "errors": sorted(set(load.errors))[:5],
            "_window": (t0 + (omit_until or 0.0), t0 + samples[-1][0])}


def measure(ep: Endpoint, budget_s: float, st: Settings,
            progress: Callable[[str, float | None], None] | None = None) -> dict[str, Any]:
    """Idle latency, then download and upload each under load, within ``budget_s`` in total.

    Raises EndpointError when the endpoint does not answer a first small request.
    """
    t_start = time.monotonic()
    client, _ = open_endpoint(ep)
    pinger = Pinger(client, ep, st.ping_interval_s)
    pinger.thread.start()
    try:
        if progress:
            progress("idle latency", None)
        time.sleep(min(st.idle_s, budget_s * 0.1))
        idle = latency_stats(pinger.between(t_start, time.monotonic()))
        each = max(1.0, (budget_s - (time.monotonic() - t_start)) / 2)
        down = run_direction(ep, False, each, st, progress)
        left = budget_s - (time.monotonic() - t_start)
        up = run_direction(ep, True, max(1.0, left), st, progress)
    finally:
        pinger.stop.set()
        pinger.thread.join(timeout=1.0)
        pinger.client.close()
    out: dict[str, Any] = {"idle": idle, "ping_lost": pinger.lost}
    for name, res in (("download", down), ("upload", up)):
        w0, w1 = res.pop("_window")
        out[name] = {**res, "loaded": latency_stats(pinger.between(w0, w1))}
    out["seconds"] = round(time.monotonic() - t_start, 2)
    out["bytes"] = down["bytes"] + up["bytes"]
    return out
