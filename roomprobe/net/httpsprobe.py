"""One HTTPS request, the way the Zoom client makes it, with every phase timed.

urllib hides where a request failed; a diagnosis needs to know whether the name did not resolve,
the TCP connect was dropped, the TLS handshake was refused or intercepted, or the server (or a
filter in front of it) answered with an error. So this does it by hand with sockets and ssl:
resolve, connect (to the proxy the caller's ``route_of(url)`` names, then HTTP CONNECT through it:
net/tunnel, the one CONNECT client),
TLS handshake, request, first byte. Each phase is timed, and the first one that fails is named.

The route comes from the caller (``roomprobe.proxy.resolver.route_for`` in the probes): this module
measures a path, it does not choose one, so the wire stays below the proxy room.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

from roomprobe.core.proxyurl import ProxyURL, ProxyURLError, parse_proxy_url
from roomprobe.net import tlstrust
from roomprobe.net.tlsverdict import ssl_context, verdict_of
from roomprobe.net.tunnel import TunnelRefused, error_state, ms_since, open_path, proxy_port
from roomprobe.net.wire import read_head


class RouteLike(Protocol):
    """What ``fetch`` needs of a route (``roomprobe.proxy.sources.Route``)."""

    @property
    def proxy(self) -> str | None: ...
    @property
    def via(self) -> str: ...
    @property
    def error(self) -> str | None: ...
    @property
    def chain(self) -> Sequence[str | None]: ...


class PhaseError(Exception):
    """A phase failed: ``phase`` is where, ``state`` is a stable kebab-case word for how."""

    def __init__(self, phase: str, state: str, detail: str) -> None:
        super().__init__(f"{phase}: {state}: {detail}")
        self.phase, self.state, self.detail = phase, state, detail


def _status(head: bytes) -> int | None:
    parts = head.split(b"\r\n", 1)[0].split()
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
        return int(parts[1])
    return None


# Failures that mean "this entry of the chain cannot be used at all": the next entry is tried,
# as browsers do with "PROXY a; PROXY b; DIRECT". A proxy that answered with a status (407, 403)
# or a path that reached TLS gave its answer: that is the result, not a reason to fall back.
_FALLBACK_PHASES = ("resolve", "connect")
_FALLBACK_PROXY_STATES = ("timeout", "refused", "unreachable", "reset", "error", "bad-answer")


def _falls_back(res: dict[str, Any]) -> bool:
    return not res["ok"] and (res["phase"] in _FALLBACK_PHASES or (
        res["phase"] == "proxy" and res["state"] in _FALLBACK_PROXY_STATES))


def fetch(url: str, *, route_of: Callable[[str], RouteLike], timeout: float, ca_file: str | None = None,
          progress: dict[str, Any] | None = None) -> dict[str, Any]:
    """GET ``url`` along the route ``route_of(url)`` names; never raises for network trouble.

    Returns ``{"url", "proxy", "ok", "phase", "state", "detail", "status", "timings", "tls",
    "chain", "tried"}``: ``phase``/``state`` name the first phase that failed (None when the
    request completed), ``status`` is the HTTP status code, ``timings`` has
    resolve/connect/proxy/tls/first_byte ms, ``trust`` (once TLS starts) names the trust store
    that judged the chain (net.tlstrust). The route's fallback chain (a PAC file's ``PROXY a;
    PROXY b; DIRECT``) is walked in order as browsers do: ``chain`` lists it (``DIRECT`` for a
    direct entry), ``proxy`` is the entry the result came from (None: direct), ``tried`` the
    entries that could not be used before it (each with its phase, state and detail).
    ``progress`` (optional) gets ``{"phase": ...}`` as each phase starts, so a caller that stops
    waiting at its deadline can say where the request was stuck (``deadline_result``).
    """
    progress = progress if progress is not None else {}
    # One deadline for the whole request, the route lookup (a PAC file evaluated in a child
    # process) and every entry of the chain included: the caller stops waiting after ``timeout``.
    deadline = time.monotonic() + timeout
    progress["phase"] = "proxy-lookup"
    chosen = route_of(url)
    chain = list(chosen.chain) or [chosen.proxy]
    base: dict[str, Any] = {"url": url, "chain": [e or "DIRECT" for e in chain], "tried": []}
    if chosen.via == "invalid":  # a proxy setting that is no usable URL: name it, never raise
        return {**base, "proxy": chosen.proxy, "ok": False, "phase": "proxy", "state": "bad-setting",
                "detail": chosen.error, "status": None, "timings": {}, "tls": None}
    for i, entry in enumerate(chain):
        res = _attempt(url, entry, deadline, ca_file, progress)
        if i + 1 < len(chain) and _falls_back(res) and time.monotonic() < deadline:
            base["tried"].append({"proxy": entry or "DIRECT", "phase": res["phase"], "state": res["state"],
                                  "detail": res["detail"]})
            continue
        return {**base, **res}
    raise AssertionError("unreachable: a chain has at least one entry")


def _attempt(url: str, proxy_url: str | None, deadline: float, ca_file: str | None,
             progress: dict[str, Any]) -> dict[str, Any]:
    """One try of ``url`` through ``proxy_url`` (None: direct) until ``deadline``: the path
    (resolve/connect, or the proxy's tunnel), the TLS handshake judged against the trust store,
    then the HTTP status line; a failure names the phase it happened in."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 443
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    proxy: ProxyURL | None = None
    timings: dict[str, float] = {}
    out: dict[str, Any] = {"proxy": proxy_url, "ok": False, "phase": None, "state": None,
                           "detail": None, "status": None, "timings": timings, "tls": None}
    sock: socket.socket | None = None

    def handshake(ctx: ssl.SSLContext) -> ssl.SSLSocket:
        """TLS over a fresh path (a strict-check retry needs a new connection)."""
        nonlocal sock
        if sock is None:
            sock = _open_path(host, port, proxy, deadline, timings, progress)
        progress["phase"] = "tls"
        sock.settimeout(_left(deadline))
        raw, sock = sock, None  # a failed handshake leaves nothing to reuse
        try:
            return ctx.wrap_socket(raw, server_hostname=host)
        except BaseException:
            raw.close()
            raise

    try:
        proxy = _parsed_proxy(proxy_url, host)
        sock = _open_path(host, port, proxy, deadline, timings, progress)
        progress["phase"] = "tls"
        ctx = ssl_context(ca_file)
        out["trust"] = tlstrust.describe(ca_file or None)
        t0 = time.monotonic()
        try:
            tls, strict_note = tlstrust.judged(ctx, handshake)
        except ssl.SSLCertVerificationError as exc:
            raise PhaseError("tls", verdict_of(exc), tlstrust.reason(exc)) from None
        except ssl.SSLError as exc:
            raise PhaseError("tls", "handshake-failed", exc.reason or str(exc)) from None
        except OSError as exc:
            raise PhaseError("tls", error_state(exc), str(exc) or type(exc).__name__) from None
        sock = tls
        timings["tls_ms"] = ms_since(t0)
        out["tls"] = _tls_summary(tls, strict_note)
        progress["phase"] = "http"
        out["status"] = _http_status(tls, f"GET {path} HTTP/1.1\r\nHost: {parts.netloc.rsplit('@', 1)[-1]}\r\n"
                                     "User-Agent: roomprobe\r\nAccept: */*\r\nConnection: close\r\n\r\n",
                                     timings)
        out["ok"] = True
    except PhaseError as exc:
        out.update(phase=exc.phase, state=exc.state, detail=exc.detail)
    finally:
        if sock is not None:
            sock.close()
    return out


def _parsed_proxy(proxy_url: str | None, host: str) -> ProxyURL | None:
    """The one proxy URL parser (the last @, as curl): never urlsplit's first /."""
    if not proxy_url:
        return None
    try:
        return parse_proxy_url(proxy_url)
    except ProxyURLError as exc:  # the message never quotes the value (a password)
        raise PhaseError("proxy", "bad-setting",
                         f"the proxy set for {host} is unusable ({exc}): fix the proxy "
                         "setting (environment, OS or PAC)") from None


def _left(deadline: float) -> float:
    return max(0.05, deadline - time.monotonic())


def _open_path(host: str, port: int, proxy: ProxyURL | None, deadline: float,
               timings: dict[str, float], progress: dict[str, Any]) -> socket.socket:
    """A connection to host:port (directly or tunnelled through the proxy), ready for TLS; a
    failure is named by the phase it happened in (the one CONNECT client: net/tunnel)."""
    if proxy is not None and not proxy.scheme.startswith("http"):  # SOCKS: the proxy probe's
        raise PhaseError("proxy", "not-tested", f"{proxy.scheme}:// proxies are not tested "
                         "by this probe; the proxy probe checks them")
    try:
        return open_path(host, port, proxy, lambda: _left(deadline), timings=timings, progress=progress)
    except socket.gaierror as exc:
        name = proxy.host if proxy is not None else host
        raise PhaseError("resolve", "unresolved", f"{name}: {exc.strerror or exc}") from None
    except TunnelRefused as exc:
        line = exc.head.split(b"\r\n", 1)[0].decode("latin-1")[:200]
        raise PhaseError("proxy", f"http-{exc.code}" if exc.code else "bad-answer",
                         line or "connection closed") from None
    except OSError as exc:
        if progress.get("phase") == "proxy":
            raise PhaseError("proxy", error_state(exc), f"CONNECT {host}:{port}: {exc}") from None
        to = proxy_port(proxy) if proxy is not None else port
        raise PhaseError("connect", error_state(exc), f"{progress.get('addr')}:{to}: {exc}") from None


def _tls_summary(tls: ssl.SSLSocket, strict_note: str | None) -> dict[str, Any]:
    """Version, cipher and issuer of the handshake (the issuer names an inspecting proxy)."""
    cert = tls.getpeercert() or {}
    rdns = cert.get("issuer", ())  # ((("commonName", "X"),), ...): tuple-valued in getpeercert
    issuer = dict(x[0] for x in rdns if isinstance(x[0], tuple)) if isinstance(rdns, tuple) else {}
    out: dict[str, Any] = {"version": tls.version(), "cipher": (tls.cipher() or (None,))[0],
                           "issuer": issuer.get("commonName") or issuer.get("organizationName")}
    if strict_note:
        out["note"] = strict_note
    return out


def _http_status(tls: ssl.SSLSocket, request: str, timings: dict[str, float]) -> int:
    """The status code of the answer to ``request``, timing its first byte."""
    t0 = time.monotonic()
    try:
        tls.sendall(request.encode())
        first = tls.recv(1)
        timings["first_byte_ms"] = ms_since(t0)
        head = first + read_head(tls) if first else b""
    except OSError as exc:
        raise PhaseError("http", error_state(exc), str(exc) or type(exc).__name__) from None
    status = _status(head)
    if status is None:
        raise PhaseError("http", "bad-answer", head[:80].decode("latin-1") or "connection closed")
    return status


SILENT_PHASES = ("resolve", "connect", "proxy", "tls", "http")


def silent_result(url: str, progress: dict[str, Any] | None, waited: float) -> dict[str, Any] | None:
    """The result for a fetch still stuck in a network phase after its caller waited out the
    fetch's whole ``timeout`` (``waited`` seconds): a measured "no answer" in that phase, state
    ``timeout``, with the seconds waited. Name resolution cannot be given a timeout, so a silent
    resolver shows up here, as the phase ``resolve``. None when it was stuck elsewhere (the proxy
    lookup runs our own code): that proves nothing about the network (``deadline_result``)."""
    stuck = (progress or {}).get("phase")
    if stuck not in SILENT_PHASES:
        return None
    host = urlsplit(url).hostname or url
    what = {"resolve": f"the resolver did not answer for {host}",
            "connect": "the TCP connect got no answer",
            "proxy": "the proxy did not answer the CONNECT",
            "tls": "the TLS handshake got no answer", "http": "no HTTP answer came"}[stuck]
    return {"url": url, "proxy": None, "ok": False, "phase": stuck, "state": "timeout",
            "detail": f"{what}: silent for {waited:.1f} s, the whole wait", "status": None,
            "timings": {}, "tls": None, "waited_s": round(waited, 2)}


def deadline_result(url: str, progress: dict[str, Any] | None = None) -> dict[str, Any]:
    """The result for a fetch its caller stopped waiting for: NOT ok, phase ``deadline``.

    A request cut short proves nothing either way (e.g. a silent resolver outlasts the probe's
    deadline), so it must never count as working; ``detail`` says which phase it was stuck in.
    """
    stuck = (progress or {}).get("phase") or "start"
    return {"url": url, "proxy": None, "ok": False, "phase": "deadline", "state": "timeout",
            "detail": f"no result before the deadline (still in {stuck})", "status": None,
            "timings": {}, "tls": None, "stuck_in": stuck}
