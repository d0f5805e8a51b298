"""``roomprobe exporter``: a multi-target exporter in the blackbox_exporter idiom.

Prometheus drives it: ``GET /probe?target=ADDR&module=NAME`` runs one module against one target
and answers its metrics; Prometheus does the scheduling, retries, high availability (two servers
scraping the same exporter), federation and service discovery (``/sd``). The endpoints:

    /probe    one module, one target (fleet/exporter_probe.py), within the scrape's timeout
    /metrics  the exporter itself: probes by module and outcome, durations, rejections,
              in-flight probes, connections, authentication failures, build info
    /sd       the inventory as Prometheus http_sd JSON (fleet/sd.py)
    /         a short page naming the modules

Timeouts, as blackbox_exporter computes them (prober/handler.go, getTimeout): the scrape's
``X-Prometheus-Scrape-Timeout-Seconds`` (120 s when absent or 0) minus ``--timeout-offset``
(0.5 s); the module's ``timeout`` when that is smaller, or when the difference is negative.
A header that is not a number is refused (400 here; blackbox answers 500).

Bounds, because it listens for months on a monitoring VLAN: at most ``max_probes`` probes run at
once and at most ``max_queue`` wait for a slot (each no longer than its own budget); past that
a 503. Connections are capped in all and per source address, each has ``read_timeout`` to send
its request head in all, and with a web config (fleet/webconfig.py) the TLS handshake and the basic-auth
check come before anything is parsed or run. Bad requests are one line and a 400.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import math
import socket
import ssl
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from roomprobe.fleet.exporter_modules import Module
from roomprobe.fleet.webconfig import WebConfig

TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"
DEFAULT_SCRAPE_TIMEOUT = 120.0  # blackbox_exporter's, when Prometheus sends no header
OUTCOMES = ("success", "failure", "deadline", "error")
MAX_QUERY = 2048
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Settings:
    """What one exporter enforces (the command's flags, checked)."""

    modules: Mapping[str, Module]
    inventory: list[Any] = field(default_factory=list)  # sweep.Room rows (for /sd and room-agent)
    web: WebConfig = field(default_factory=WebConfig)
    timeout_offset: float = 0.5
    max_probes: int = 16
    max_queue: int = 64
    max_connections: int = 256
    max_per_source: int = 32
    read_timeout: float = 10.0


class BadRequest(ValueError):
    """One line for a 400."""


def probe_timeout(header: str | None, module_timeout: float, offset: float) -> float:
    """blackbox_exporter's budget: the scrape's timeout minus the offset, capped by the module's.

    Raises BadRequest when the header is not a finite non-negative number."""
    scrape = 0.0
    if header is not None and header.strip():
        try:
            scrape = float(header.strip())
        except ValueError:
            raise BadRequest(f"{TIMEOUT_HEADER} {header.strip()[:40]!r} is not a number of "
                             "seconds") from None
        if not math.isfinite(scrape) or scrape < 0:
            raise BadRequest(f"{TIMEOUT_HEADER} must be a non-negative number of seconds")
    if scrape == 0:
        scrape = DEFAULT_SCRAPE_TIMEOUT
    most = scrape - offset
    if 0 < module_timeout < most or most < 0:
        return module_timeout
    return most


class Stats:
    """The exporter's own metrics, in a registry of its own (never the process-wide default)."""

    def __init__(self, modules: Mapping[str, Module]) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        from roomprobe import __version__

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        Gauge("roomprobe_exporter_build_info", "roomprobe's version and Python's (value always 1).",
              ["version", "python"], registry=r).labels(
                  __version__, ".".join(map(str, sys.version_info[:3]))).set(1)
        self.probes = Counter("roomprobe_exporter_probes", "Probes run, by module and outcome "
                              "(success, failure: measured not OK, deadline, error).",
                              ["module", "outcome"], registry=r)
        self.duration = Histogram("roomprobe_exporter_probe_duration_seconds",
                                  "How long probes took, by module.", ["module"], registry=r,
                                  buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120))
        self.rejected = Counter("roomprobe_exporter_probes_rejected", "Probe requests refused "
                                "before running: bad_request (400), busy (503).", ["reason"],
                                registry=r)
        self.in_flight = Gauge("roomprobe_exporter_probes_in_flight", "Probes running now.",
                               registry=r)
        self.waiting = Gauge("roomprobe_exporter_probes_waiting", "Probes waiting for a slot.",
                             registry=r)
        self.http = Counter("roomprobe_exporter_http_requests", "HTTP requests by handler and "
                            "status code.", ["handler", "code"], registry=r)
        self.auth_failures = Counter("roomprobe_exporter_auth_failures", "Requests refused for "
                                     "missing or wrong credentials (401).", registry=r)
        self.refused = Counter("roomprobe_exporter_connections_refused", "Connections closed "
                               "before a request: too_many (in all), per_source, tls (failed "
                               "handshake, e.g. plain HTTP to the TLS port).", ["reason"],
                               registry=r)
        self.connections = Gauge("roomprobe_exporter_connections_open", "Connections open now.",
                                 registry=r)
        self.errors = Counter("roomprobe_exporter_errors", "Internal errors (a probe's bug, a "
                              "handler's): each one is a bug to report.", registry=r)
        for name in modules:  # every module's series exist from the start (rate() needs them)
            for o in OUTCOMES:
                self.probes.labels(name, o)
        for reason in ("bad_request", "busy"):
            self.rejected.labels(reason)
        for reason in ("too_many", "per_source", "tls"):
            self.refused.labels(reason)


class ProbeSlots:
    """At most ``size`` probes at once and ``queue`` waiting; a wait never outlasts its budget."""

    def __init__(self, size: int, queue: int) -> None:
        self.sem = threading.BoundedSemaphore(size)
        self.queue = queue
        self.lock = threading.Lock()
        self.waiting = 0

    def acquire(self, wait_s: float) -> bool:
        if self.sem.acquire(blocking=False):
            return True
        with self.lock:
            if self.waiting >= self.queue:
                return False
            self.waiting += 1
        try:
            return self.sem.acquire(timeout=max(0.0, wait_s))
        finally:
            with self.lock:
                self.waiting -= 1

    def release(self) -> None:
        self.sem.release()


class ExporterServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr: tuple[str, int], settings: Settings) -> None:
        self.settings = settings
        self.stats = Stats(settings.modules)
        self.slots = ProbeSlots(settings.max_probes, settings.max_queue)
        self.ssl_ctx: ssl.SSLContext | None = settings.web.ssl_context()
        self.inventory = {(r.address, r.port): r for r in settings.inventory}
        self.sd_body = json.dumps(_sd_groups(settings.inventory)).encode()
        self.lock = threading.Lock()
        self.per_source: dict[str, int] = {}
        self.sources: dict[int, str] = {}
        self.errors: list[str] = []
        self.heads: dict[Any, float] = {}  # connection -> deadline for its request head
        self._stop = threading.Event()
        self.address_family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        super().__init__(addr, Handler)
        from roomprobe.core.threads import start_guarded

        self.reaper = start_guarded(self._reap, "exporter-head-deadline")

    # ---------------------------------------------------------------- connections

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = self.socket.accept()
        if self.ssl_ctx is not None:
            # The handshake happens in the connection's own thread (finish_request): a client
            # that never completes it must not hold up accept().
            sock = self.ssl_ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def process_request(self, request: Any, client_address: Any) -> None:
        src = str(client_address[0])
        s = self.settings
        with self.lock:
            total = sum(self.per_source.values())
            reason = ("too_many" if total >= s.max_connections else
                      "per_source" if self.per_source.get(src, 0) >= s.max_per_source else None)
            if reason is None:
                self.per_source[src] = self.per_source.get(src, 0) + 1
                self.sources[id(request)] = src
        if reason is not None:
            self.stats.refused.labels(reason).inc()
            with contextlib.suppress(OSError):
                request.close()
            return
        self.stats.connections.inc()
        super().process_request(request, client_address)

    def expect_head(self, request: Any) -> None:
        """A request head is due: it has ``read_timeout`` in all (not per read), so a client
        trickling a byte at a time cannot hold its connection for ever."""
        with self.lock:
            self.heads[request] = time.monotonic() + self.settings.read_timeout

    def head_done(self, request: Any) -> None:
        with self.lock:
            self.heads.pop(request, None)

    def _reap(self) -> None:
        while not self._stop.wait(0.25):
            now = time.monotonic()
            with self.lock:
                late = [r for r, dl in self.heads.items() if now > dl]
                for r in late:
                    del self.heads[r]
            for r in late:
                with contextlib.suppress(OSError, ValueError):
                    r.shutdown(socket.SHUT_RDWR)

    def server_close(self) -> None:
        self._stop.set()
        super().server_close()

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(self.settings.read_timeout)
        self.expect_head(request)  # the TLS handshake counts against it too
        if isinstance(request, ssl.SSLSocket):
            try:
                request.do_handshake()
            except (ssl.SSLError, OSError, ValueError):
                # plain HTTP to the TLS port, a wrong client certificate, a scanner: refused
                self.stats.refused.labels("tls").inc()
                return
        super().finish_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.lock:
            self.heads.pop(request, None)
            src = self.sources.pop(id(request), None)
            if src is not None:
                left = self.per_source.get(src, 1) - 1
                if left <= 0:
                    self.per_source.pop(src, None)
                else:
                    self.per_source[src] = left
        if src is not None:
            self.stats.connections.dec()
        with contextlib.suppress(OSError, ValueError):
            super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Counted and kept (the last few), never printed: a client hanging up is normal."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, ssl.SSLError)):
            return
        self.stats.errors.inc()
        with self.lock:
            self.errors = [*self.errors[-9:], f"{type(exc).__name__}: {str(exc)[:200]}"]

    # ---------------------------------------------------------------- probes

    def run_probe(self, module: Module, target: Any, budget: float, timeout_s: float) -> Any:
        """Run the probe in a guarded thread; wait at most ``budget`` (+ a grace for the
        metrics). ``timeout_s`` is the scrape's budget before any wait for a slot. The slot is
        given back when the probe really ends, not at the deadline, so a probe stuck past its
        budget still counts against ``max_probes``."""
        from roomprobe.core.threads import start_guarded
        from roomprobe.fleet import exporter_probe as ep

        st = self.stats

        def work() -> Any:
            st.in_flight.inc()
            try:
                return ep.run(module, target, budget)
            finally:
                st.in_flight.dec()
                self.slots.release()

        t0 = time.monotonic()
        th = start_guarded(work, f"exporter-probe-{module.name}")
        th.join(budget + 0.25)
        out = th.result if not th.is_alive() and th.error is None else None
        if out is None:
            out = ep.Outcome(error="deadline" if th.is_alive() else "internal-error",
                             detail="the probe did not finish within its budget" if th.is_alive()
                             else f"{type(th.error).__name__}: {th.error}", timeout_s=budget,
                             duration_s=time.monotonic() - t0)
        out.timeout_s = timeout_s
        outcome = ("success" if out.success else "deadline" if out.error == "deadline"
                   else "error" if out.error in ("internal-error", "not-started") else "failure")
        if out.error == "internal-error":
            st.errors.inc()
        if out.error:
            # The scrape shows only probe_success 0: say why where the operator looks (the
            # service's journal), one redacted line; measured failures are in the metrics.
            from roomprobe.core.redact import redact_text

            print(redact_text(f"roomprobe exporter: module {module.name} target {target.text}: "
                              f"{out.error}: {out.detail}")[:400], file=sys.stderr, flush=True)
        st.probes.labels(module.name, outcome).inc()
        st.duration.labels(module.name).observe(out.duration_s)
        return out


def _sd_groups(rooms: list[Any]) -> list[dict[str, Any]]:
    from roomprobe.fleet.sd import groups

    return groups(rooms)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ExporterServer
    server_version = "roomprobe-exporter"
    handler_name = "other"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by design
        return  # the query string may name targets; nothing is logged per request

    def handle_one_request(self) -> None:
        self.server.expect_head(self.connection)  # each request of a kept-alive connection
        super().handle_one_request()

    def parse_request(self) -> bool:
        ok = super().parse_request()  # reads the header lines too
        self.server.head_done(self.connection)  # the head is in: a long probe is not late
        return ok

    def _send(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8",
              extra: Mapping[str, str] | None = None) -> None:
        self.server.stats.http.labels(self.handler_name, str(code)).inc()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            try:
                self.wfile.write(body)
            except OSError:  # the scraper gave up (its own timeout): nothing to tell it
                self.close_connection = True

    def _line(self, code: int, text: str, extra: Mapping[str, str] | None = None) -> None:
        self._send(code, (text.replace("\n", " ")[:500] + "\n").encode("utf-8", "replace"),
                   extra=extra)

    def _authorized(self) -> bool:
        web = self.server.settings.web
        if not web.auth_required:
            return True
        value = self.headers.get("Authorization", "")
        scheme, _, cred = value.partition(" ")
        if scheme.lower() == "basic" and cred:
            try:
                user, sep, pw = base64.b64decode(cred.strip(), validate=True).decode(
                    "utf-8", "surrogateescape").partition(":")
            except (binascii.Error, ValueError):
                sep = ""
            if sep and web.check_password(user, pw):
                return True
        self.server.stats.auth_failures.inc()
        self.close_connection = True
        self._line(401, "Unauthorized: give the user and password of the exporter's web config",
                   extra={"WWW-Authenticate": 'Basic realm="roomprobe exporter", charset="UTF-8"'})
        return False

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        if not self._authorized():  # before anything is parsed or run
            return
        if len(self.path) > MAX_QUERY:
            self.handler_name = "other"
            self._line(414, f"request target longer than {MAX_QUERY} characters")
            return
        parts = urlsplit(self.path)
        route = parts.path
        if route == "/probe":
            self.handler_name = "probe"
            self._probe(parts.query)
        elif route == "/metrics":
            self.handler_name = "metrics"
            from prometheus_client import generate_latest

            self._send(200, generate_latest(self.server.stats.registry), TEXT_FORMAT)
        elif route == "/sd":
            self.handler_name = "sd"
            self._send(200, self.server.sd_body, "application/json")
        elif route == "/":
            self.handler_name = "index"
            mods = ", ".join(sorted(self.server.settings.modules))
            self._send(200, (f"roomprobe exporter\n\n/probe?target=ADDR&module=NAME  modules: "
                             f"{mods}\n/metrics  the exporter's own metrics\n/sd  the inventory "
                             "as Prometheus http_sd JSON\n").encode())
        else:
            self.handler_name = "other"
            self._line(404, f"no such endpoint {route[:60]!r}: use /probe, /metrics or /sd")

    def _not_get(self) -> None:
        if not self._authorized():
            return
        self.handler_name = "other"
        self.close_connection = True
        self._line(405, "only GET is supported", extra={"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_get  # noqa: N815

    def _bad(self, text: str) -> None:
        self.server.stats.rejected.labels("bad_request").inc()
        self._line(400, text)

    def _probe(self, query: str) -> None:
        from roomprobe.fleet import exporter_probe as ep

        srv = self.server
        try:
            params = parse_qs(query, keep_blank_values=True, max_num_fields=16)
        except ValueError:
            self._bad("too many query parameters")
            return
        name = (params.get("module") or [""])[0]
        module = srv.settings.modules.get(name)
        if not name:
            self._bad(f"module parameter is missing; configured: {', '.join(sorted(srv.settings.modules))}")
            return
        if module is None:
            shown = "".join(c if c.isprintable() else "?" for c in name[:60])
            self._bad(f"unknown module {shown!r}; configured: {', '.join(sorted(srv.settings.modules))}")
            return
        raw = params.get("target")
        if not raw or not raw[0]:
            self._bad("target parameter is missing, e.g. /probe?target=10.0.0.20&module=room")
            return
        try:
            budget = probe_timeout(self.headers.get(TIMEOUT_HEADER), module.timeout,
                                   srv.settings.timeout_offset)
            target = ep.parse_target(module, raw[0], srv.inventory)
        except (BadRequest, ep.BadTarget) as exc:
            self._bad(str(exc))
            return
        t0 = time.monotonic()
        srv.stats.waiting.inc()
        try:
            got = srv.slots.acquire(budget)
        finally:
            srv.stats.waiting.dec()
        if not got:
            srv.stats.rejected.labels("busy").inc()
            self._line(503, f"busy: {srv.settings.max_probes} probes are running and the queue "
                            "is full; add an exporter or raise --max-probes")
            return
        out = srv.run_probe(module, target, max(0.0, budget - (time.monotonic() - t0)), budget)
        self._send(200, ep.render(out), TEXT_FORMAT)


def serve(host: str, port: int, settings: Settings) -> ExporterServer:
    """Bind (errors propagate as OSError for the command to word) and return the server."""
    return ExporterServer((host, port), settings)
