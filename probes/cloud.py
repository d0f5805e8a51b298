"""cloud: can this device reach Zoom's cloud, and which media path will the Zoom Rooms app use?

HTTPS to Zoom's web hosts through the system proxy (phases timed); the media path the Zoom Rooms app
will use, from its own sockets, a control STUN server and the servers you name; Zoom's names checked
against Zoom's published ranges.

Zoom's client tries media in this order (Zoom's "Connection Process" white paper, KB0061864):
UDP 8801 to the meeting's multimedia router (MMR), then TCP 8801/8802, then TLS over TCP 443
(through the web proxy if one applies). Each step down costs delay and quality. Zoom publishes
no media or STUN host that answers outside a meeting (the MMR is handed out at join time, and
zoom.us is a web front end), so this probe measures only what can answer, all at once under one
deadline:

  HTTPS    a GET to each web URL through the proxy the system would use (the TLS 443 floor),
           phases timed, the first failing one named (roomprobe.net.httpsprobe)
  app      the Zoom Rooms app's own connections (roomprobe.host.appconns): the transport in use
           right now, whether its servers lie in Zoom's ranges, TCP connect RTT to them
  control  a STUN request to a server known to answer (default a public one, stated in the
           report): proves UDP leaves this network at all
  STUN     requests to ``stun_hosts`` (servers the customer knows answer STUN) on udp_ports
  TCP      connects to 8801/8802 on ``media_hosts`` (media servers the customer names)
  ranges   Zoom's published IP ranges (roomprobe.net.zoomranges): do Zoom's names resolve
           into them (a sinkhole or DNS-hijack test), and how old is the list

What a UDP outcome proves (roomprobe.net.stun.judge_error): a STUN answer = open; EPERM on
send = blocked by this device's own firewall; ICMP port-unreachable from the target itself = the
packet arrived (path open, no STUN there), but only for a host not known to listen there: from
the control server, or from a ``stun_hosts`` entry on 3478 or 8801-8810 (``KNOWN_UDP_PORTS``),
it is a reject forged on the way in the host's name (iptables REJECT, nftables ``reject``) =
blocked; ICMP admin-prohibited, or host/net unreachable, or a port-unreachable sent by a router
= blocked; silence = blocked only when the host is one known to answer STUN (``stun_hosts``)
AND the control answered on the same path; else unknown.

Silence is a measurement (docs/probes.md): every wait (``connect_timeout``, ``stun_timeout``) is
planned inside the time left (``Context.plan``), so a web host whose name the resolver never
answers, or whose connect is dropped, is a measured timeout in that phase with the seconds
waited (``cloud-https-blocked``, FAIL); only a wait the deadline left too short to judge
(``silence_measured``) is ``deadline``, and without a working URL then ``error``.

PASS = at least one web URL answered over TLS with a trusted certificate (HTTP status < 400),
no step of the media path is proven blocked, and what ``media_path`` claims is backed by a
measurement (seen in the app, answered by a server, or, as the floor, TLS 443 itself). A HTTPS
check cut short by the deadline is never success: without a working URL the status is
``error`` (could not finish) or ``fail`` (proven broken).
"""

from __future__ import annotations

import functools
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from roomprobe.probes import _cloudpath

from roomprobe.core import threads
from roomprobe.core.errors import UsageError
from roomprobe.core.probe import Context, Finding, Probe, Result, Severity, Status, described, silence_measured
from roomprobe.core.settings import check_file_option
from roomprobe.host import appconns
from roomprobe.net import httpsprobe, stun, zoomranges
from roomprobe.net.tcpconnect import connect_state
from roomprobe.proxy.resolver import route_for

RANGES_URL = "https://assets.zoom.us/docs/ipranges/Zoom.txt"


# Defaults: see docs/cloud.md "Why these defaults". Zoom publishes IP ranges, not media or STUN
# host names, so media_hosts and stun_hosts start empty: the customer names servers that answer.
@dataclass(frozen=True)
class Options:
    """The cloud probe's options: ``[probes.cloud]`` in the config file, ``--set``."""

    web_urls: tuple[str, ...] = ("https://zoom.us/", "https://www.zoom.us/", "https://zoom.com/")
    # Media servers you know listen on TCP 8801/8802 (your Zoom Node / Meeting Connector MMR).
    media_hosts: tuple[str, ...] = ()
    tcp_ports: tuple[int, ...] = (8801, 8802)
    # STUN servers you know answer (your own); silence from them can prove a block.
    stun_hosts: tuple[str, ...] = ()
    udp_ports: tuple[int, ...] = (3478, 3479, 8801)
    # "host:port" of a STUN server known to answer: proves UDP leaves this network. Empty = none.
    control_host: str = "stun.cloudflare.com:3478"
    ca_file: str = ""  # empty = the system trust store
    connect_timeout: float = 3.0
    stun_timeout: float = 2.0
    # Zoom's published ranges: file paths or https URLs, one CIDR per line. Empty = skip the check.
    zoom_ranges: tuple[str, ...] = (RANGES_URL,)
    ranges_max_age_days: float = 7.0
    # Names whose addresses must lie in Zoom's ranges (checked only when ranges are loaded).
    range_check_names: tuple[str, ...] = ("zoom.us",)
    # The Zoom Rooms app's process names (Windows, macOS); empty = do not read the app's sockets.
    app_process_names: tuple[str, ...] = ("ZoomRooms.exe", "ZoomRooms", "ZoomPresence", "Zoom Rooms")


TCP_BLOCKED = {"refused", "filtered", "unreachable"}
# Where a probed UDP host is known to listen: a STUN server answers on 3478 (RFC 5389's port),
# and ``stun_hosts`` stand for Zoom's media servers (a Zoom Node, a Meeting Connector), which
# listen on UDP 8801-8810. A port-unreachable "from" them there is a reject forged on the way
# (roomprobe.net.stun.judge_error). Other ports (3479 is only RFC 5780's alternate) keep the
# plain reading: the packet arrived, nothing listens there.
KNOWN_UDP_PORTS = frozenset({3478, *range(8801, 8811)})
LOCAL_ERRNOS = {"EPERM", "EACCES"}
_HOST_RE = re.compile(r"^(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?$")


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


def _is_host(text: str) -> bool:
    """A DNS name or an IP address (v6 with or without brackets)."""
    text = text.strip("[]")
    if ":" in text:
        try:
            socket.inet_pton(socket.AF_INET6, text.split("%", 1)[0])
            return True
        except OSError:
            return False
    return bool(_HOST_RE.match(text))


def _hosts(value: Any, name: str) -> list[str]:
    items = value if isinstance(value, (list, tuple)) else [value]
    for item in items:
        if not isinstance(item, str) or not _is_host(item):
            raise UsageError(f"cloud.{name}: {item!r} is not a host name or IP address "
                             "(e.g. mmr.example.net or 192.0.2.10)")
    return [str(i).strip("[]") for i in items]


def split_hostport(text: str, name: str = "control_host") -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` into (host, port); bad input is a UsageError."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or not _is_host(host):
        raise UsageError(f"cloud.{name}: {text!r} is not HOST:PORT, e.g. stun.example.net:3478")
    return host, int(port)


def validate(options: Options) -> None:
    """Refuse bad options before anything runs (exit 3 with one clear line)."""
    if not options.web_urls:
        raise UsageError("cloud.web_urls: give at least one https:// URL (HTTPS is the floor "
                         "of Zoom's media path)")
    for url in options.web_urls:
        parts = urlsplit(str(url))
        try:
            host = parts.hostname
            parts.port  # noqa: B018 (raises ValueError for a bad port)
        except ValueError:
            host = None
        if parts.scheme != "https" or not host:
            raise UsageError(f"cloud.web_urls: {url!r} is not an https:// URL")
    check_file_option("cloud.ca_file", options.ca_file)
    _ports(options.tcp_ports, "tcp_ports")
    _ports(options.udp_ports, "udp_ports")
    _hosts(options.media_hosts, "media_hosts")
    _hosts(options.stun_hosts, "stun_hosts")
    _hosts(options.range_check_names, "range_check_names")
    if options.control_host:
        split_hostport(str(options.control_host))
    for src in options.zoom_ranges:
        scheme = urlsplit(str(src)).scheme
        if scheme in ("http", "ftp") or (scheme not in ("", "https", "file") and len(scheme) > 1):
            raise UsageError(f"cloud.zoom_ranges: {src!r} is neither a file path nor an "
                             "https:// URL")
    for name in options.app_process_names:
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise UsageError(f"cloud.app_process_names: {name!r} is not a process name")
    for key in ("connect_timeout", "stun_timeout", "ranges_max_age_days"):
        if not float(getattr(options, key)) > 0:
            raise UsageError(f"cloud.{key}: must be more than 0")


# ------------------------------------------------------------------------------- checks

def _resolve(host: str, port: int, kind: int) -> tuple[dict[str, Any], tuple[int, tuple] | None]:
    """The result's common fields and (family, sockaddr), or an ``unresolved`` result and None:
    a malformed name is unresolved, not a crash."""
    out: dict[str, Any] = {"host": host, "port": port, "address": None, "proof": None}
    try:
        family, _, _, _, sockaddr = socket.getaddrinfo(host, port, type=kind)[0]
    except socket.gaierror as exc:
        return {**out, "state": "unresolved", "error": exc.strerror or str(exc), "ms": None}, None
    except (UnicodeError, ValueError) as exc:
        return {**out, "state": "unresolved", "error": f"not a valid name: {exc}", "ms": None}, None
    return {**out, "address": sockaddr[0]}, (family, sockaddr)


def tcp_connect(host: str, port: int, timeout: float) -> dict[str, Any]:
    """One TCP connect: open | refused | filtered | unreachable | blocked (local) | unresolved."""
    out, got = _resolve(host, port, socket.SOCK_STREAM)
    if got is None:
        return out
    res = {**out, **connect_state(*got, timeout)}
    if res["state"] == "error" and res.get("error") in LOCAL_ERRNOS:
        res.update(state="blocked", proof="local")  # this device's own firewall said no
    return res


def stun_binding(host: str, port: int, timeout: float, listens: bool = False) -> dict[str, Any]:
    """A STUN exchange (roomprobe.net.stun.exchange) after resolving ``host``; ``listens``: the
    host is known to listen on ``port`` (a port-unreachable from it is then a forged reject)."""
    out, got = _resolve(host, port, socket.SOCK_DGRAM)
    return out if got is None else {**out, **stun.exchange(*got, timeout, listens)}


def resolve_all(name: str) -> dict[str, Any]:
    """Every address the system resolver gives for ``name`` (what the app would use)."""
    try:
        infos = socket.getaddrinfo(name, 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        return {"name": name, "addresses": [], "error": getattr(exc, "strerror", None) or str(exc)}
    return {"name": name, "addresses": sorted({i[4][0] for i in infos}), "error": None}


def app_check(names: tuple[str, ...], timeout: float) -> dict[str, Any]:
    """The app's snapshot plus a TCP connect RTT to each server it talks to (in parallel)."""
    snap = appconns.snapshot(names)
    servers = appconns.servers(snap)
    tasks: dict[str, Callable[[], Any]] = {
        f"{ip}|{port}": functools.partial(tcp_connect, ip, port, timeout)
        for ip, port in servers}
    res = run_all(tasks, time.monotonic() + timeout + 0.2) if tasks else {}
    snap["servers"] = [{"address": ip, "port": port,
                        **({k: v for k, v in (res.get(f"{ip}|{port}") or
                                              {"state": "timeout", "ms": None}).items()
                            if k in ("state", "ms", "error")})}
                       for ip, port in servers]
    return snap


def run_all(tasks: dict[str, Callable[[], Any]], deadline: float) -> dict[str, Any]:
    """Every task at once (core.threads.run_all); results by key, None for those past
    ``deadline``, an error result for one that crashed (it must not cost the others theirs)."""
    return {key: (None if not o.done else o.value if o.error is None else
                  {"state": "error", "error": f"{type(o.error).__name__}: {o.error}"})
            for key, o in threads.run_all(tasks, deadline, "cloud").items()}


# ------------------------------------------------------------------------------- normalising

WEB_KEYS = ("url", "proxy", "ok", "phase", "state", "detail", "status", "timings", "tls")


def web_result(url: str, raw: Any, progress: dict[str, Any] | None = None,
               waited: float | None = None) -> dict[str, Any]:
    """A web result with every key, whatever happened: past the deadline or a crash is not ok.

    ``waited``: the fetch's whole wait was waited out (silence_measured), so one still stuck in
    a network phase (a silent resolver) is a measured timeout there, not a cut-short one."""
    if raw is None:
        silent = httpsprobe.silent_result(url, progress, waited) if waited is not None else None
        return silent or httpsprobe.deadline_result(url, progress)
    if not isinstance(raw, dict) or any(k not in raw for k in WEB_KEYS):
        err = raw.get("error") if isinstance(raw, dict) else repr(raw)
        return {"url": url, "proxy": None, "ok": False, "phase": "error", "state": "error",
                "detail": str(err)[:200], "status": None, "timings": {}, "tls": None}
    return raw


def cut_silences(web: list[dict[str, Any]], tcp: list[dict[str, Any]], udp: list[dict[str, Any]],
                 conn_judged: bool, stun_judged: bool, conn_t: float, stun_t: float) -> None:
    """In place: a silence within a wait the deadline left too short to judge
    (``silence_measured`` false) proves nothing, so it becomes ``deadline`` (unknown); a judged
    one carries the seconds waited as its evidence (``waited_s``)."""
    for i, w in enumerate(web):
        if w.get("state") == "timeout" and w.get("phase") != "deadline":
            if conn_judged:
                w.setdefault("waited_s", round(conn_t, 2))
            else:
                web[i] = {**httpsprobe.deadline_result(w["url"], {"phase": w.get("phase")}),
                          "waited_s": round(conn_t, 2)}
    _cut_silent(tcp, "filtered", conn_t, conn_judged)
    _cut_silent(udp, "silent", stun_t, stun_judged)


def _cut_silent(attempts: list[dict[str, Any]], silent: str, waited: float, judged: bool) -> None:
    """cut_silences for the TCP or UDP attempts: ``silent`` is the state their silence has."""
    for a in attempts:
        if a.get("state") == silent:
            a["waited_s"] = round(waited, 2)
            if not judged:
                a.update(state="deadline", error="the deadline left too short a wait to judge "
                         f"silence ({waited:.2f} s)")


def endpoint_result(host: str, port: int, raw: Any) -> dict[str, Any]:
    """A TCP/UDP attempt with host, port, state and proof, whatever happened."""
    base = {"host": host, "port": port, "address": None, "proof": None, "error": None, "ms": None}
    if raw is None:
        return {**base, "state": "deadline", "error": "no result before the deadline"}
    if not isinstance(raw, dict):
        return {**base, "state": "error", "error": repr(raw)[:200]}
    return {**base, **raw, "host": host, "port": port, "state": raw.get("state") or "error"}


# ------------------------------------------------------------------------------- verdict

UDP_PROVEN_BLOCK = {"local", "no-route", "icmp-router", "icmp-admin-prohibited", "icmp-unreachable",
                    stun.FORGED_REJECT}


NO_ANSWER = "no-answer"  # silent for the whole wait: measured, but filtered and down look alike


def _udp_verdicts(attempts: list[dict[str, Any]], control: dict[str, Any] | None) -> None:
    """Per attempt: reachable | open (arrived, no STUN) | blocked (with proof) | no-answer |
    unknown, in place.

    Silence from a ``stun_hosts`` entry (a server known to answer STUN) is a block only when
    the control answered on the same path. Without that, silence for the whole retransmit
    schedule is still a measurement, ``no-answer`` (filtered on the way, or the host is down:
    nothing tells which), with the seconds waited; anything else unproven is unknown.
    """
    control_ok = bool(control and control.get("state") == "reachable")
    for a in attempts:
        state = a.get("state")
        if state == "open-no-stun":
            a["state"] = "open"
        elif state == "silent":
            if control_ok:
                a.update(state="blocked", proof="control")
            else:
                a["state"] = NO_ANSWER
        elif state == "blocked" and a.get("proof") in UDP_PROVEN_BLOCK:
            pass
        elif state != "reachable":
            a["state"] = "unknown"


def _by_port(attempts: list[dict[str, Any]], ports: list[int], good: tuple[str, ...]) -> dict[int, str]:
    """One word per port: the best good word any host got, else blocked if every host is
    blocked, else no-answer if every host stayed silent for its whole wait, else unknown (no
    attempts at all: ``untested``)."""
    out = {}
    for port in ports:
        states = [a["state"] for a in attempts if a["port"] == port]
        hit = next((g for g in good if g in states), None)
        if hit:
            out[port] = hit
        elif states and all(s == "blocked" for s in states):
            out[port] = "blocked"
        elif states and all(s == NO_ANSWER for s in states):
            out[port] = NO_ANSWER
        else:
            out[port] = "unknown" if states else "untested"
    return out


def _udp_step(udp_state: dict[int, str], udp: list[dict[str, Any]], control: dict[str, Any] | None,
              app: dict[str, Any] | None) -> dict[str, Any]:
    if app and app.get("transport") == "udp-8801":
        return _cloudpath.step("udp-8801", "open", "the Zoom Rooms app uses it now")
    media = {p: s for p, s in udp_state.items() if 8801 <= p <= 8810}
    if any(s in ("reachable", "open") for s in media.values()):
        hosts = sorted({a["host"] for a in udp if 8801 <= a["port"] <= 8810
                        and a["state"] in ("reachable", "open")})
        return _cloudpath.step("udp-8801", "open", f"UDP 8801 reached {', '.join(hosts)}")
    if any(s == "blocked" for s in media.values()):
        proofs = sorted({a["proof"] for a in udp if 8801 <= a["port"] <= 8810 and a.get("proof")})
        forged = (": ICMP port-unreachable from a host known to listen there, so a firewall "
                  "rejected it on the way" if stun.FORGED_REJECT in proofs else "")
        return _cloudpath.step("udp-8801", "blocked",
                               f"UDP 8801 proven blocked ({', '.join(proofs)}{forged})")
    tested = [s for s in udp_state.values() if s != "untested"]
    c_state, c_proof = (control or {}).get("state"), (control or {}).get("proof")
    local = c_state == "blocked" and c_proof == "local"
    if (tested and all(s == "blocked" for s in tested)) or (local and not tested):
        return _cloudpath.step("udp-8801", "blocked",
                               "every Zoom UDP port tested is proven blocked"
                               + (" (this device's own firewall refuses UDP)" if local else ""))
    if c_state == "reachable" or any(s in ("reachable", "open") for s in tested):
        who = (f"the control STUN server {control['host']}:{control['port']} answered"
               if c_state == "reachable" and control else "a Zoom UDP port other than 8801 got through")
        return _cloudpath.step("udp-8801", "likely",
                               f"UDP leaves this network ({who}); no Zoom media server answers "
                               "a probe outside a meeting, so 8801 to Zoom itself is not proven")
    silent = [a for a in udp if a["state"] == NO_ANSWER]
    if control is None and silent:
        port_list = ", ".join(str(p) for p in sorted({a["port"] for a in silent}))
        host_list = ", ".join(sorted({a["host"] for a in silent}))
        waited = max(a.get("waited_s") or 0 for a in silent)
        return _cloudpath.step("udp-8801", "unknown",
                               f"UDP {port_list} to {host_list} got no answer for {waited:g} s (the whole STUN "
                               "retransmit schedule): filtered on the way, or the host is down; no "
                               "control STUN server was set to tell which")
    if control is None:
        return _cloudpath.step("udp-8801", "unknown", "nothing tested it: no control STUN server "
                               "and no STUN host known to answer")
    return _cloudpath.step("udp-8801", "unknown",
                           f"the control STUN server {control['host']}:{control['port']} did not "
                           f"answer ({c_state}{', ' + c_proof if c_proof else ''}"
                           + (f", for {control['waited_s']:g} s" if control.get("waited_s") else "")
                           + ")")


def _tcp_step(tcp_state: dict[int, str], tcp: list[dict[str, Any]],
              app: dict[str, Any] | None) -> dict[str, Any]:
    if app and app.get("transport") == "tcp-8801":
        return _cloudpath.step("tcp-8801", "open", "the Zoom Rooms app uses it now")
    if "open" in tcp_state.values():
        hosts = sorted({a["host"] for a in tcp if a["state"] == "open"})
        return _cloudpath.step("tcp-8801", "open", f"connected to {', '.join(hosts)}")
    tested = [s for s in tcp_state.values() if s != "untested"]
    if tested and all(s == "blocked" for s in tested):
        return _cloudpath.step("tcp-8801", "blocked", "every media host refused or dropped it")
    if not tested:
        return _cloudpath.step("tcp-8801", "unknown", "not tested: no media_hosts set (Zoom "
                               "publishes no server that accepts 8801/8802 outside a meeting)")
    return _cloudpath.step("tcp-8801", "unknown", "no media host gave a clear answer")


def _tls_step(web: list[dict[str, Any]], https_ok: bool) -> dict[str, Any]:
    ok = _working(web)
    if ok:
        via = f" through the proxy {ok[0]['proxy']}" if ok[0]["proxy"] else " directly"
        return _cloudpath.step("tls-443", "open", f"{ok[0]['url']} answered over TLS{via}")
    if web and all(w["phase"] in ("deadline", "error") for w in web):
        return _cloudpath.step("tls-443", "unknown", "no web URL answered before the deadline")
    return _cloudpath.step("tls-443", "blocked", "no web URL answered over trusted TLS")


def _ranges_check(ranges: zoomranges.Ranges | None, why_none: str | None,
                  dns: list[dict[str, Any]], app: dict[str, Any] | None) -> dict[str, Any]:
    """Where Zoom's names and the app's servers lie relative to Zoom's published ranges."""
    if ranges is None or not ranges.loaded:
        why = why_none or "; ".join(f"{s['source']}: {s['why']}" for s in (ranges.sources if ranges else [])
                                    ) or "no range source"
        return {"checked": False, "why": why, "sources": ranges.sources if ranges else [],
                "names": dns}
    age = ranges.age_s()
    names = [{**d, "outside": [a for a in d["addresses"] if ranges.contains(a) is False],
              "no_range_for_family": [a for a in d["addresses"] if ranges.contains(a) is None]}
             for d in dns]
    if app:
        for c in app.get("connections", []):
            c["in_zoom_ranges"] = ranges.contains(c["remote_ip"])
    return {"checked": True, "count": len(ranges.networks), "age_days": None if age is None
            else round(age / 86400, 2), "sources": ranges.sources, "names": names}


def conclude(web: list[dict[str, Any]], tcp: list[dict[str, Any]], udp: list[dict[str, Any]],
             control: dict[str, Any] | None, tcp_ports: list[int], udp_ports: list[int], *,
             app: dict[str, Any] | None = None, ranges_check: dict[str, Any] | None = None,
             ) -> tuple[dict[str, Any], list[Finding]]:
    """Pure verdict from the measurements: the summary evidence (with ``media_path``) and findings.

    Each port's state from its attempts, then what the web hosts prove (HTTPS, TLS, HTTP), the
    path media would take (_cloudpath.predict over the UDP, TCP and TLS steps), what blocks
    media, what is not proven either way, and Zoom's published ranges."""
    _udp_verdicts(udp, control)
    if control is not None:
        _udp_verdicts([control], None)
    tcp_words = [{**a, "state": "open" if a["state"] == "open" else
                  "blocked" if a["state"] in TCP_BLOCKED or a["state"] == "blocked" else "unknown"}
                 for a in tcp]
    tcp_state = _by_port(tcp_words, tcp_ports, ("open",))
    udp_state = _by_port(udp, udp_ports, ("reachable", "open"))
    # Working = TLS verified (an untrusted certificate fails the tls phase) and a status < 400.
    https_ok = bool(_working(web))
    findings = _web_findings(web, https_ok)

    steps = [_udp_step(udp_state, udp, control, app), _tcp_step(tcp_state, tcp, app),
             _tls_step(web, https_ok)]
    media = _cloudpath.predict(steps, app)
    findings += _blocked_media_findings(tcp, udp, control, tcp_state, udp_state, steps[0], https_ok)
    findings += _unproven_media_findings(udp, control, steps[0], app)
    if ranges_check is not None:
        findings.extend(_ranges_findings(ranges_check))

    summary = {"https_ok": https_ok, "tcp_ports": {str(k): v for k, v in tcp_state.items()},
               "udp_ports": {str(k): v for k, v in udp_state.items()}, "media_path": media,
               # UDP proven blocked while TLS 443 works: Zoom's last resort carries the media
               # (docs/report.md: fields stay within report v1)
               "udp_falls_back_to_tcp_443": steps[0]["state"] == "blocked" and https_ok}
    return summary, findings


def _web_findings(web: list[dict[str, Any]], https_ok: bool) -> list[Finding]:
    """What the web hosts prove: HTTPS unreachable, unproven by the deadline, TLS failing
    (inspection, clock, roots), or an HTTP error page (a filter or proxy block page)."""
    findings: list[Finding] = []
    unreachable = [w for w in web if not w["ok"] and w["phase"] in ("resolve", "connect", "proxy")]
    if web and not https_ok and unreachable:
        w = unreachable[0]
        findings.append(_web_finding(
            "cloud-https-blocked", Severity.FAIL, unreachable,
            f"No Zoom web host answers HTTPS: {w['url']} failed at {w['phase']} ({w['state']}: "
            f"{w['detail']}). Sign-in and joining need it.",
            "Allow TCP 443 to Zoom's domains (zoom.us, zoom.com) on the firewall and web "
            "filter" + (", and through the proxy" if w["proxy"] else "") +
            "; if the phase is resolve, fix DNS first; if it is proxy, fix the proxy setting."))
    cut = [w for w in web if w["phase"] in ("deadline", "error")]
    if web and not https_ok and cut and not unreachable:
        findings.append(_web_finding(
            "cloud-https-unproven", Severity.WARN, cut,
            f"HTTPS to Zoom is not proven: {cut[0]['url']} gave no result before the deadline "
            f"({cut[0]['detail']}).",
            "Rerun with a longer --timeout; if it is stuck in resolve, the DNS resolver is "
            "silent (see the dns probe)."))
    tls_bad = [w for w in web if w["phase"] == "tls"]
    if tls_bad:
        w = tls_bad[0]
        findings.append(_web_finding(
            "cloud-tls-failed", Severity.FAIL, tls_bad,
            f"TCP reaches {w['url']} but the TLS handshake fails ({w['state']}: {w['detail']}).",
            "Exempt Zoom's domains from TLS inspection on the gateway/proxy, and check this "
            "device's clock and root certificates (or the ca_file option)."))
    http_bad = [w for w in web if w["phase"] == "http" or (w["status"] or 0) >= 400]
    if http_bad:
        w = http_bad[0]
        what = f"HTTP {w['status']}" if w["status"] else f"no HTTP answer ({w['state']})"
        findings.append(_web_finding(
            "cloud-http-error", Severity.FAIL if not https_ok else Severity.WARN, http_bad,
            f"{w['url']} answers with {what}: a filter or proxy block page, or a server error.",
            "Open that URL from this device to see who answers, and allow Zoom in that "
            "filter or proxy."))
    return findings


def _web_finding(fid: str, severity: Severity, group: list[dict[str, Any]], text: str,
                 hint: str) -> Finding:
    """One finding about a group of web results: the text names the first, the evidence lists
    them all (each in brief)."""
    return Finding(fid, severity, text, {"urls": [_brief(x) for x in group]}, hint=hint)


def _blocked_media_findings(tcp: list[dict[str, Any]], udp: list[dict[str, Any]],
                            control: dict[str, Any] | None, tcp_state: dict[int, str],
                            udp_state: dict[int, str], udp_step: dict[str, Any],
                            https_ok: bool) -> list[Finding]:
    """Media ports proven blocked: TCP 8801-8802, UDP refused by this device's own firewall
    (EPERM), UDP blocked on the way (ICMP, or a reject forged in a STUN server's name)."""
    findings: list[Finding] = []
    udp_open = udp_step["state"] in ("open", "likely")
    open_tcp = sorted(p for p, s in tcp_state.items() if s == "open")
    blocked_tcp = sorted(p for p, s in tcp_state.items() if s == "blocked")
    if blocked_tcp:
        findings.append(Finding(
            "cloud-tcp-media-blocked", Severity.WARN,
            f"TCP {', '.join(map(str, blocked_tcp))} to the media hosts is blocked"
            f"{_fallback(udp_open, open_tcp, https_ok)}.",
            {"ports": blocked_tcp, "attempts": [a for a in tcp if a["port"] in blocked_tcp]},
            hint="Allow TCP 8801-8802 to Zoom's IP ranges on the firewall."))
    local = [a for a in [*udp, *([control] if control else [])]
             if a.get("state") == "blocked" and a.get("proof") == "local"]
    if local:
        ports = sorted({a["port"] for a in local})
        findings.append(Finding(
            "cloud-udp-local-block", Severity.WARN,
            f"This device's own firewall refuses to send UDP to port {', '.join(map(str, ports))} "
            f"(EPERM){_fallback(False, open_tcp, https_ok)}, with more delay and lower quality.",
            {"ports": ports, "attempts": local},
            hint="Allow outbound UDP 8801-8810 and 3478-3479 for Zoom Rooms in this device's "
                 "firewall (Windows Defender Firewall outbound rules, security software)."))
    blocked_udp = sorted(p for p, s in udp_state.items() if s == "blocked"
                         and not all(a.get("proof") == "local" for a in udp if a["port"] == p))
    if blocked_udp:
        proofs = sorted({a["proof"] for a in udp if a["port"] in blocked_udp and a.get("proof")})
        forged = sorted({f"{a['host']}:{a['port']}" for a in udp
                         if a["port"] in blocked_udp and a.get("proof") == stun.FORGED_REJECT})
        findings.append(Finding(
            "cloud-udp-media-blocked", Severity.WARN,
            f"UDP {', '.join(map(str, blocked_udp))} is blocked on the way to the STUN hosts "
            f"(proof: {' and '.join(proofs)})"
            + (f"; {', '.join(forged)} answered ICMP port-unreachable although the host is known "
               "to listen there (a STUN server, a Zoom media port): a firewall on the way rejects "
               "the packets in the host's name (iptables REJECT, nftables reject)"
               if forged else "")
            + (_fallback(False, open_tcp, https_ok) + ", with more delay and lower quality"
               if udp_step["state"] == "blocked" else "") + ".",
            {"ports": blocked_udp, "proof": proofs,
             "attempts": [a for a in udp if a["port"] in blocked_udp]},
            hint="Allow UDP 3478-3479 and 8801-8810 to Zoom's IP ranges on the firewall"
                 + ("; find the firewall that REJECTs them (its rejects carry the server's "
                    "address); if a host in cloud.stun_hosts really runs no STUN server, remove "
                    "it from the list." if forged else ".")))
    return findings


def _unproven_media_findings(udp: list[dict[str, Any]], control: dict[str, Any] | None,
                             udp_step: dict[str, Any], app: dict[str, Any] | None) -> list[Finding]:
    """UDP media not proven either way, and the app itself in a meeting over TCP."""
    findings: list[Finding] = []
    if udp_step["state"] == "unknown":
        tested = control is not None or bool(udp)
        findings.append(Finding(
            "cloud-udp-unknown", Severity.WARN if tested else Severity.INFO,
            "UDP media (8801) is not proven either way: " + udp_step["why"] + ".",
            {"control": _brief_ep(control) if control else None,
             "attempts": [_brief_ep(a) for a in udp]},
            hint="Run roomprobe on the room PC during a meeting (the app's own sockets show the "
                 "transport in use), or set cloud.control_host to a STUN server you know "
                 "answers; list in cloud.stun_hosts only servers known to answer STUN."))
    if app and app.get("in_meeting") and app.get("transport") == "tcp-8801":
        findings.append(Finding(
            "cloud-app-media-degraded", Severity.WARN,
            "The Zoom Rooms app is in a meeting on TCP 8801/8802 instead of UDP 8801: more delay "
            "and lower quality.",
            {"transport": app["transport"], "connections": app.get("connections", [])[:20]},
            hint="Allow UDP 8801-8810 to Zoom's IP ranges (and in this device's firewall)."))
    return findings


def _ranges_findings(rc: dict[str, Any]) -> list[Finding]:
    if not rc["checked"]:
        return [Finding("cloud-ranges-skipped", Severity.INFO,
                        f"Zoom's published IP ranges were not checked: {rc['why']}.",
                        {"sources": rc.get("sources", [])},
                        hint="Set cloud.zoom_ranges to a copy of Zoom.txt (a file, or Zoom's "
                             "https URL reachable from here).")]
    outside = [n for n in rc["names"] if n["outside"]]
    if not outside:
        return []
    n = outside[0]
    return [Finding("cloud-dns-outside-zoom-ranges", Severity.WARN,
                    f"{n['name']} resolves to {', '.join(n['outside'])}, outside Zoom's published "
                    f"IP ranges (list {rc['age_days']} days old): a DNS sinkhole, a hijack or a "
                    "filter's redirect, unless the list is out of date.",
                    {"names": outside, "age_days": rc["age_days"]},
                    hint="Compare with a trusted resolver (nslookup zoom.us 1.1.1.1); fix the "
                         "local DNS or filter that rewrites Zoom's names.")]


def _fallback(udp_ok: bool, open_tcp: list[int], https_ok: bool) -> str:
    """Where media goes instead, as the end of a sentence."""
    if udp_ok:
        return ": media still has UDP"
    if open_tcp:
        return f": media falls back to TCP {', '.join(map(str, open_tcp))}"
    if https_ok:
        return ": media falls back to TLS 443"
    return ": and no fallback path (TCP media or 443) is proven either"


def _brief(w: dict[str, Any]) -> dict[str, Any]:
    return {k: w.get(k) for k in ("url", "proxy", "phase", "state", "detail", "status")}


def _brief_ep(a: dict[str, Any]) -> dict[str, Any]:
    return {k: a.get(k) for k in ("host", "port", "address", "state", "proof", "error")}


def _working(web: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Web results that prove the TLS 443 floor: verified TLS and an HTTP status below 400."""
    return [w for w in web if w.get("ok") is True and w.get("phase") is None
            and isinstance(w.get("status"), int) and w["status"] < 400]


def proof(web: list[dict[str, Any]], media: dict[str, Any]) -> dict[str, Any]:
    """What a cloud PASS stands on: the web URL(s) that answered over trusted TLS with their
    HTTP status and route, and the media path with its basis (observed, proven, likely, floor).

    Empty (no PASS possible) when no URL answered or no media path is backed by a measurement.
    """
    ok = _working(web)
    if not ok or media.get("transport") in (None, "none") or media.get("basis") in (None, "none"):
        return {}
    step = next((s for s in media.get("steps", []) if s["step"] == media["transport"]), None)
    return {"web": [{"url": w["url"], "status": w["status"], "via": w.get("proxy") or "direct",
                     "tls": (w.get("tls") or {}).get("version"),
                     "issuer": (w.get("tls") or {}).get("issuer")} for w in ok],
            "media_path": {"transport": media["transport"], "basis": media["basis"],
                           "why": step["why"] if step else media.get("summary")}}


def verdict(summary: dict[str, Any], findings: list[Finding], web: list[dict[str, Any]],
            evidence: dict[str, Any], text: str) -> Result:
    """PASS only with HTTPS proven and a media path backed by a measurement (module docstring);
    a measured failure is FAIL, a warning WARN, a run cut short or unproven ``error``."""
    worst = next((f for f in findings if f.severity == Severity.FAIL), None)
    if worst:
        return Result(Status.FAIL, worst.id, text, evidence, findings)
    if not summary["https_ok"] or not _working(web):
        reason = ("https-deadline" if any(w["phase"] == "deadline" for w in web)
                  else "https-unproven")
        return Result.unmeasured(reason, text, evidence, findings)
    warn = next((f for f in findings if f.severity == Severity.WARN), None)
    if warn:
        return Result(Status.WARN, warn.id, text, evidence, findings)
    got = proof(web, summary["media_path"])
    if not got:  # cannot happen while TLS 443 is the floor; never PASS on nothing
        return Result.unmeasured("media-path-unproven", text, evidence, findings)
    return Result.passed("reachable", text, evidence, got, findings)


def run(ctx: Context) -> Result:
    opts = ctx.options
    validate(opts)
    tcp_ports, udp_ports = _ports(opts.tcp_ports, "tcp_ports"), _ports(opts.udp_ports, "udp_ports")
    ca_file = str(opts.ca_file) or None
    # Each wait planned inside the time left (Context.plan), so a silent target is waited out
    # and concluded on; silence for a wait the deadline left too short proves nothing.
    conn_t = ctx.plan(float(opts.connect_timeout))
    stun_t = ctx.plan(float(opts.stun_timeout))
    conn_judged = silence_measured(conn_t, float(opts.connect_timeout))
    stun_judged = silence_measured(stun_t, float(opts.stun_timeout))
    tasks: dict[str, Callable[[], Any]] = {}
    web_urls = [str(u) for u in opts.web_urls]
    progress: list[dict[str, Any]] = [{} for _ in web_urls]
    for i, url in enumerate(web_urls):
        tasks[f"web{i}"] = functools.partial(httpsprobe.fetch, url, route_of=route_for, timeout=conn_t,
                                             ca_file=ca_file, progress=progress[i])
    tcp_keys = [(h, p) for h in _hosts(opts.media_hosts, "media_hosts") for p in tcp_ports]
    for i, (h, p) in enumerate(tcp_keys):
        tasks[f"tcp{i}"] = functools.partial(tcp_connect, h, p, conn_t)
    udp_keys = [(h, p) for h in _hosts(opts.stun_hosts, "stun_hosts") for p in udp_ports]
    for i, (h, p) in enumerate(udp_keys):
        tasks[f"udp{i}"] = functools.partial(stun_binding, h, p, stun_t, p in KNOWN_UDP_PORTS)
    ch, cp = split_hostport(str(opts.control_host)) if opts.control_host else ("", 0)
    if ch:
        tasks["control"] = lambda: stun_binding(ch, cp, stun_t, True)  # it answers STUN there
    names = [str(n) for n in opts.range_check_names]
    if opts.zoom_ranges:
        tasks["ranges"] = lambda: zoomranges.load(
            list(opts.zoom_ranges), max_age_s=float(opts.ranges_max_age_days) * 86400,
            timeout=conn_t)
        for i, name in enumerate(names):
            tasks[f"dns{i}"] = functools.partial(resolve_all, name)
    if opts.app_process_names:
        tasks["app"] = lambda: app_check(tuple(opts.app_process_names), conn_t)

    # Every task bounds itself; this is the backstop (e.g. a resolver that hangs), within ours.
    t0 = time.monotonic()
    res = run_all(tasks, min(ctx.deadline, t0 + max(conn_t, stun_t) + 0.5))
    waited = time.monotonic() - t0
    web = [web_result(u, res[f"web{i}"], progress[i],
                      waited if conn_judged and waited >= conn_t else None)
           for i, u in enumerate(web_urls)]
    tcp = [endpoint_result(h, p, res[f"tcp{i}"]) for i, (h, p) in enumerate(tcp_keys)]
    udp = [endpoint_result(h, p, res[f"udp{i}"]) for i, (h, p) in enumerate(udp_keys)]
    control = endpoint_result(ch, cp, res["control"]) if ch else None
    cut_silences(web, tcp, [*udp, *([control] if control else [])], conn_judged, stun_judged,
                 conn_t, stun_t)
    app = res.get("app") if opts.app_process_names else None
    if opts.app_process_names and (not isinstance(app, dict) or "running" not in app):
        app = {"running": None, "in_meeting": None, "transport": None, "connections": [],
               "why": None, "error": "no result before the deadline" if not isinstance(app, dict)
               else str(app.get("error"))[:200]}
    ranges_check = None
    if opts.zoom_ranges:
        ranges = res.get("ranges")
        dns = [res.get(f"dns{i}") or {"name": n, "addresses": [], "error": "no result in time"}
               for i, n in enumerate(names)]
        ranges_check = _ranges_check(ranges if isinstance(ranges, zoomranges.Ranges) else None,
                                     None if isinstance(ranges, zoomranges.Ranges)
                                     else "the range list did not load before the deadline", dns, app)
    else:
        ranges_check = {"checked": False, "why": "cloud.zoom_ranges is empty", "sources": [],
                        "names": []}
    summary, findings = conclude(web, tcp, udp, control, tcp_ports, udp_ports, app=app,
                                 ranges_check=ranges_check)
    evidence = {**summary, "web": web, "tcp": tcp, "udp": udp, "control": control,
                "control_host": opts.control_host or None, "app": app, "zoom_ranges": ranges_check}
    mp = summary["media_path"]
    n_ok = len(_working(web))
    app_word = ("app not checked" if app is None else "app not running" if app.get("running") is False
                else f"app in a meeting on {_cloudpath.LABEL[app['transport']]}"
                if app.get("in_meeting") else "app running, not in a meeting" if app.get("running")
                else "app unknown")
    text = (f"media path: {mp['summary']}; HTTPS {'ok' if summary['https_ok'] else 'FAILED'} "
            f"({n_ok}/{len(web)}); UDP " + ", ".join(f"{p} {s}" for p, s in summary["udp_ports"].items())
            + (f"; control {control['state']}" if control else "; no control")
            + "; TCP " + ", ".join(f"{p} {s}" for p, s in summary["tcp_ports"].items())
            + f"; {app_word}")
    return verdict(summary, findings, web, evidence, text)


PROBE = Probe("cloud", "Zoom cloud: HTTPS floor, media path (UDP 8801 > TCP 8801/8802 > TLS 443), Zoom ranges",
              run, timeout_s=5.0, options=Options, validate=validate, description=described(__doc__))
