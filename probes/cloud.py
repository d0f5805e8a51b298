"""cloud: can this device reach Zoom's cloud on the ports and hosts Zoom's firewall articles list?

Checks, all at once under one deadline (one thread per endpoint, so a dead server costs one
timeout, not one per item):
  HTTPS    a GET to each web URL through the proxy the system would use for it (HTTP CONNECT),
           each phase timed: resolve, connect, proxy, TLS, first byte; the first failing phase
           is named (roomprobe.net.httpsprobe)
  TCP      a connect to 8801 and 8802 on each media/zone host: open | refused | filtered |
           unreachable | unresolved
  UDP      a STUN binding request (roomprobe.net.stun) to 3478, 3479 and 8801 on each STUN host, with
           retransmits: reachable (a STUN answer) | blocked (an ICMP unreachable came back, or
           the control host answers STUN while this one stays silent) | unknown (silence and
           no proof). Silence alone is never called blocked.
Concludes: no web URL reachable is a failure (sign-in and joining need HTTPS); a TLS failure or
an HTTP error from a web URL is its own finding; blocked TCP or UDP media ports are warnings,
because Zoom falls back to TCP 443; the evidence says which media path would be used.
"""

from __future__ import annotations

import errno
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from roomprobe.core.errors import UsageError
from roomprobe.core.probe import Context, Finding, Probe, Result, Severity, Status
from roomprobe.net import httpsprobe, stun
from roomprobe.net.tcpconnect import REFUSED, UNREACHABLE, connect_state


# Zoom's defaults (KB0060561 / KB0065712, see docs/cloud.md). Zoom publishes IP ranges, not
# media host names: set media_hosts / stun_hosts to your zone's addresses for a sharp answer.
@dataclass(frozen=True)
class Options:
    """The cloud probe's options: ``[probes.cloud]`` in the config file, ``--set``."""

    web_urls: tuple[str, ...] = ("https://zoom.us/", "https://www.zoom.us/", "https://zoom.com/")
    media_hosts: tuple[str, ...] = ("zoom.us",)
    tcp_ports: tuple[int, ...] = (8801, 8802)
    stun_hosts: tuple[str, ...] = ("zoom.us",)
    udp_ports: tuple[int, ...] = (3478, 3479, 8801)
    # "host:port" of a STUN server known to answer (e.g. your own); empty = no control.
    control_host: str = ""
    ca_file: str = ""  # empty = the system trust store
    connect_timeout: float = 3.0
    stun_timeout: float = 2.0

TCP_BLOCKED = {"refused", "filtered", "unreachable"}


# ------------------------------------------------------------------------------- options

def _ports(value: Any, name: str) -> list[int]:
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        try:
            port = int(item)
        except (TypeError, ValueError):
            raise UsageError(f"cloud.{name}: {item!r} is not a port number") from None
        if not 0 < port < 65536:
            raise UsageError(f"cloud.{name}: {port} is not a port number (1-65535)")
        out.append(port)
    return out


def split_hostport(text: str, name: str = "control_host") -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` into (host, port); bad input is a UsageError."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"cloud.{name}: {text!r} is not HOST:PORT, e.g. stun.example.net:3478")
    return host, int(port)


def validate(options: Options) -> None:
    """Refuse bad options before anything runs (exit 3 with one clear line)."""
    for url in options.web_urls:
        parts = urlsplit(str(url))
        if parts.scheme != "https" or not parts.hostname:
            raise UsageError(f"cloud.web_urls: {url!r} is not an https:// URL")
    _ports(options.tcp_ports, "tcp_ports")
    _ports(options.udp_ports, "udp_ports")
    if options.control_host:
        split_hostport(str(options.control_host))
    for key in ("connect_timeout", "stun_timeout"):
        if not float(getattr(options, key)) > 0:
            raise UsageError(f"cloud.{key}: must be more than 0 seconds")


# ------------------------------------------------------------------------------- checks

def tcp_connect(host: str, port: int, timeout: float) -> dict[str, Any]:
    """One TCP connect: open | refused | filtered | unreachable | unresolved | error."""
    out: dict[str, Any] = {"host": host, "port": port, "address": None}
    try:
        family, _, _, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        return {**out, "state": "unresolved", "error": exc.strerror or str(exc), "ms": None}
    out["address"] = sockaddr[0]
    return {**out, **connect_state(family, sockaddr, timeout)}


def stun_binding(host: str, port: int, timeout: float) -> dict[str, Any]:
    """A STUN binding request with retransmits on a connected UDP socket.

    answered -> ``reachable``; an ICMP unreachable (ECONNREFUSED/EHOSTUNREACH on the connected
    socket) -> ``blocked`` with ``proof: icmp``; silence -> ``silent`` (the caller decides between
    blocked and unknown with the control host).
    """
    out: dict[str, Any] = {"host": host, "port": port, "address": None, "proof": None}
    t0 = time.monotonic()
    try:
        family, _, _, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    except socket.gaierror as exc:
        return {**out, "state": "unresolved", "error": exc.strerror or str(exc), "ms": None}
    out["address"] = sockaddr[0]
    txid = stun.new_transaction_id()
    request = stun.binding_request(txid)
    deadline = t0 + timeout
    sends = 0
    # RFC 5389 retransmits with a doubling interval; start short so a lost packet costs little.
    interval = max(0.05, timeout / 7)
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.connect(sockaddr)
            while True:
                now = time.monotonic()
                if now >= deadline:
                    return {**out, "state": "silent", "error": "timeout", "sends": sends,
                            "ms": round((now - t0) * 1000, 1)}
                s.send(request)
                sends += 1
                wait_until = min(deadline, now + interval)
                interval *= 2
                while (left := wait_until - time.monotonic()) > 0:
                    s.settimeout(left)
                    try:
                        data = s.recv(2048)
                    except TimeoutError:
                        break
                    try:
                        answer = stun.parse_response(data, txid)
                    except stun.StunError:
                        continue  # not our answer: keep listening
                    return {**out, "state": "reachable", "error": None, "sends": sends,
                            "ms": round((time.monotonic() - t0) * 1000, 1), "answer": answer}
        except OSError as exc:
            if exc.errno in REFUSED or exc.errno in UNREACHABLE:
                return {**out, "state": "blocked", "proof": "icmp",
                        "error": errno.errorcode.get(exc.errno or 0, str(exc)), "sends": sends,
                        "ms": round((time.monotonic() - t0) * 1000, 1)}
            return {**out, "state": "error", "error": str(exc), "sends": sends,
                    "ms": round((time.monotonic() - t0) * 1000, 1)}


def run_all(tasks: dict[str, Callable[[], Any]], deadline: float) -> dict[str, Any]:
    """Run every task in its own daemon thread; results by key, None for those past ``deadline``.

    Daemon threads (not a pool) so a resolver stuck past the deadline never holds up exit.
    """
    done: queue.Queue = queue.Queue()

    def work(key: str, fn: Callable[[], Any]) -> None:
        try:
            done.put((key, fn()))
        except Exception as exc:  # one endpoint's bug must not cost the others their result
            done.put((key, {"state": "error", "error": f"{type(exc).__name__}: {exc}"}))

    for key, fn in tasks.items():
        threading.Thread(target=work, args=(key, fn), daemon=True, name=f"cloud-{key}").start()
    results: dict[str, Any] = dict.fromkeys(tasks)
    for _ in tasks:
        try:
            key, value = done.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        results[key] = value
    return results


# ------------------------------------------------------------------------------- verdict

def _udp_verdicts(attempts: list[dict[str, Any]], control: dict[str, Any] | None) -> None:
    """Turn ``silent`` into ``blocked`` (control answered) or ``unknown`` (no proof), in place."""
    control_ok = bool(control and control.get("state") == "reachable")
    for a in attempts:
        if a["state"] == "silent":
            if control_ok:
                a.update(state="blocked", proof="control")
            else:
                a["state"] = "unknown"
        elif a["state"] in ("unresolved", "error", None):
            a["state"] = "unknown"


def _by_port(attempts: list[dict[str, Any]], ports: list[int], good: str) -> dict[int, str]:
    """One word per port: ``good`` if any host is, else blocked if every host is, else unknown."""
    out = {}
    for port in ports:
        states = [a["state"] for a in attempts if a["port"] == port]
        if good in states:
            out[port] = good
        elif states and all(s == "blocked" for s in states):
            out[port] = "blocked"
        else:
            out[port] = "unknown"
    return out


def conclude(web: list[dict[str, Any]], tcp: list[dict[str, Any]], udp: list[dict[str, Any]],
             control: dict[str, Any] | None, tcp_ports: list[int], udp_ports: list[int],
             ) -> tuple[dict[str, Any], list[Finding]]:
    """Pure verdict from the measurements: the summary evidence and the findings."""
    findings: list[Finding] = []
    _udp_verdicts(udp, control)
    tcp_words = [{**a, "state": "open" if a["state"] == "open" else
                  "blocked" if a["state"] in TCP_BLOCKED else "unknown"} for a in tcp]
    tcp_state = _by_port(tcp_words, tcp_ports, "open")
    udp_state = _by_port(udp, udp_ports, "reachable")
    # A completed request with a 4xx/5xx (a filter's block page) does not count as working.
    https_ok = any(w["ok"] and (w["status"] or 0) < 400 for w in web)

    unreachable = [w for w in web if not w["ok"] and w["phase"] in ("resolve", "connect", "proxy")]
    if web and not https_ok and unreachable:
        w = unreachable[0]
        findings.append(Finding(
            "cloud-https-blocked", Severity.FAIL,
            f"No Zoom web host answers HTTPS: {w['url']} failed at {w['phase']} ({w['state']}: "
            f"{w['detail']}). Sign-in and joining need it.",
            {"urls": [_brief(x) for x in unreachable]},
            hint="Allow TCP 443 to Zoom's domains (zoom.us, zoom.com) on the firewall and web "
                 "filter" + (", and through the proxy" if w["proxy"] else "") +
                 "; if the phase is resolve, fix DNS first."))
    tls_bad = [w for w in web if w["phase"] == "tls"]
    if tls_bad:
        w = tls_bad[0]
        findings.append(Finding(
            "cloud-tls-failed", Severity.FAIL,
            f"TCP reaches {w['url']} but the TLS handshake fails ({w['state']}: {w['detail']}).",
            {"urls": [_brief(x) for x in tls_bad]},
            hint="Exempt Zoom's domains from TLS inspection on the gateway/proxy, and check this "
                 "device's clock and root certificates (or the ca_file option)."))
    http_bad = [w for w in web if w["phase"] == "http" or (w["status"] or 0) >= 400]
    if http_bad:
        w = http_bad[0]
        what = f"HTTP {w['status']}" if w["status"] else f"no HTTP answer ({w['state']})"
        findings.append(Finding(
            "cloud-http-error", Severity.FAIL if not https_ok else Severity.WARN,
            f"{w['url']} answers with {what}: a filter or proxy block page, or a server error.",
            {"urls": [_brief(x) for x in http_bad]},
            hint="Open that URL from this device to see who answers, and allow Zoom in that "
                 "filter or proxy."))
    blocked_tcp = sorted(p for p, s in tcp_state.items() if s == "blocked")
    open_tcp = sorted(p for p, s in tcp_state.items() if s == "open")
    udp_ok = any(s == "reachable" for s in udp_state.values())
    if blocked_tcp:
        findings.append(Finding(
            "cloud-tcp-media-blocked", Severity.WARN,
            f"TCP {', '.join(map(str, blocked_tcp))} to Zoom's media hosts is blocked"
            f"{_fallback(udp_ok, open_tcp, https_ok)}.",
            {"ports": blocked_tcp, "attempts": [a for a in tcp if a["port"] in blocked_tcp]},
            hint="Allow TCP 8801-8802 to Zoom's IP ranges on the firewall."))
    blocked_udp = sorted(p for p, s in udp_state.items() if s == "blocked")
    unknown_udp = sorted(p for p, s in udp_state.items() if s == "unknown")
    if blocked_udp:
        proofs = sorted({a["proof"] for a in udp if a["port"] in blocked_udp and a.get("proof")})
        findings.append(Finding(
            "cloud-udp-media-blocked", Severity.WARN,
            f"UDP {', '.join(map(str, blocked_udp))} to Zoom is blocked (proof: "
            f"{' and '.join(proofs)})" + (_fallback(udp_ok, open_tcp, https_ok) + ", with more delay "
                                          "and lower quality" if not udp_ok else "") + ".",
            {"ports": blocked_udp, "proof": proofs,
             "attempts": [a for a in udp if a["port"] in blocked_udp]},
            hint="Allow UDP 3478-3479 and 8801-8810 to Zoom's IP ranges on the firewall."))
    if unknown_udp:
        findings.append(Finding(
            "cloud-udp-unknown", Severity.INFO,
            f"UDP {', '.join(map(str, unknown_udp))} to Zoom got no STUN answer and no proof "
            "either way: it may be dropped, or the host does not answer STUN.",
            {"ports": unknown_udp, "control_host": control["host"] if control else None,
             "attempts": [a for a in udp if a["port"] in unknown_udp]},
            hint="Set cloud.control_host to a STUN server you know answers (HOST:PORT) to tell "
                 "a drop from silence, or point cloud.stun_hosts at your Zoom zone's addresses."))

    media = ("udp" if udp_ok else "tcp-media" if "open" in tcp_state.values()
             else "tcp-443" if https_ok else "none")
    summary = {"https_ok": https_ok, "tcp_ports": {str(k): v for k, v in tcp_state.items()},
               "udp_ports": {str(k): v for k, v in udp_state.items()}, "media_path": media,
               "udp_falls_back_to_tcp_443": not udp_ok and https_ok}
    return summary, findings


def _fallback(udp_ok: bool, open_tcp: list[int], https_ok: bool) -> str:
    """Where media goes instead, as the end of a sentence."""
    if udp_ok:
        return ": media still has UDP"
    if open_tcp:
        return f": media falls back to TCP {', '.join(map(str, open_tcp))}"
    if https_ok:
        return ": media falls back to TCP 443"
    return ": and no fallback path (TCP media or 443) works either"


def _brief(w: dict[str, Any]) -> dict[str, Any]:
    return {k: w[k] for k in ("url", "proxy", "phase", "state", "detail", "status")}


def run(ctx: Context) -> Result:
    opts = ctx.options
    validate(opts)
    tcp_ports, udp_ports = _ports(opts.tcp_ports, "tcp_ports"), _ports(opts.udp_ports, "udp_ports")
    ca_file = str(opts.ca_file) or None
    conn_t = ctx.budget(float(opts.connect_timeout))
    stun_t = ctx.budget(float(opts.stun_timeout))
    tasks: dict[str, Callable[[], Any]] = {}
    web_urls = [str(u) for u in opts.web_urls]
    for i, url in enumerate(web_urls):
        tasks[f"web{i}"] = lambda url=url: httpsprobe.fetch(url, timeout=conn_t, ca_file=ca_file)
    tcp_keys = [(h, p) for h in opts.media_hosts for p in tcp_ports]
    for i, (h, p) in enumerate(tcp_keys):
        tasks[f"tcp{i}"] = lambda h=h, p=p: tcp_connect(str(h), p, conn_t)
    udp_keys = [(h, p) for h in opts.stun_hosts for p in udp_ports]
    for i, (h, p) in enumerate(udp_keys):
        tasks[f"udp{i}"] = lambda h=h, p=p: stun_binding(str(h), p, stun_t)
    if opts.control_host:
        ch, cp = split_hostport(str(opts.control_host))
        tasks["control"] = lambda: stun_binding(ch, cp, stun_t)

    # Every task bounds itself; this is the backstop (e.g. a resolver that hangs), within ours.
    res = run_all(tasks, min(ctx.deadline, time.monotonic() + max(conn_t, stun_t) + 0.5))
    # A task with no result by the deadline is reported as such, not dropped.
    web = [res[f"web{i}"] or {"url": u, "proxy": None, "ok": False, "phase": "deadline",
                              "state": "timeout", "detail": "no result in time", "status": None,
                              "timings": {}, "tls": None} for i, u in enumerate(web_urls)]
    tcp = [res[f"tcp{i}"] or {"host": h, "port": p, "state": None, "error": "deadline"}
           for i, (h, p) in enumerate(tcp_keys)]
    udp = [res[f"udp{i}"] or {"host": h, "port": p, "state": None, "error": "deadline", "proof": None}
           for i, (h, p) in enumerate(udp_keys)]
    control = res.get("control")
    if opts.control_host and control is None:
        control = {"host": opts.control_host, "state": None, "error": "deadline"}
    summary, findings = conclude(web, tcp, udp, control, tcp_ports, udp_ports)
    evidence = {**summary, "web": web, "tcp": tcp, "udp": udp, "control": control}
    if any(f.severity == Severity.FAIL for f in findings):
        status = Status.FAIL
    elif any(f.severity == Severity.WARN for f in findings):
        status = Status.WARN
    else:
        status = Status.PASS
    first = next((f for f in findings if f.severity != Severity.INFO), None)
    reason = first.id if first else "reachable"
    text = (f"HTTPS {'ok' if summary['https_ok'] else 'FAILED'}; TCP "
            + ", ".join(f"{p} {s}" for p, s in summary["tcp_ports"].items())
            + "; UDP " + ", ".join(f"{p} {s}" for p, s in summary["udp_ports"].items())
            + f"; media path: {summary['media_path']}")
    return Result(status, reason, text, evidence, findings)


PROBE = Probe(
    id="cloud",
    title="Zoom cloud: HTTPS, TCP 8801/8802, UDP 3478/3479/8801",
    run=run,
    timeout_s=5.0,
    options=Options,
    validate=validate,
    description="HTTPS to Zoom's web hosts through the system proxy (phases timed), TCP 8801/8802 "
                "to media hosts, STUN over UDP 3478/3479/8801: reachable, blocked (with proof) "
                "or unknown; which media path would be used.",
)
