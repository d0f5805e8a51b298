"""proxy: which proxies this host would use, do they work, and do they intercept TLS.

Checks: every proxy source separately (environment, Windows WinINet per user and WinHTTP
machine-wide, macOS ``scutil --proxy``, GNOME, a PAC file given as an option, WPAD), which proxy
each would use for Zoom's web/API hosts and for the controller (PAC evaluated, CIDR-aware
bypass), every proxy found (TCP, then a real HTTP CONNECT to a Zoom host), who issued the
certificate of zoom.us seen directly and through each working proxy, and what this host's own
name resolves to (Zoom's 127.0.0.1 clue).
How: sockets, ssl, pypac for PAC; everything concurrent and bounded by the probe's deadline.
Concludes: a dead or unreachable proxy, a proxy that demands credentials, refuses or answers
garbage, a broken PAC file, TLS interception, controller traffic sent through a proxy, and a host
name that resolves to loopback, each with its own finding.
"""

from __future__ import annotations

import socket
import sys
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass
from typing import Any

from roomprobe.core.errors import UsageError
from roomprobe.core.probe import Context, Finding, Probe, Result, Severity, Status
from roomprobe.net.proxysrc import Source, route, safe_url, system_sources
from roomprobe.net.proxysrc.checks import is_loopback, probe_proxy, split_proxy, tls_check
from roomprobe.net.proxysrc.pac import PacCache, discover, search_domain, wpad_urls


@dataclass(frozen=True)
class Options:
    """The proxy probe's options: ``[probes.proxy]`` in the config file, ``--set``."""

    # URLs whose route matters besides the controller's (Zoom's web and API hosts).
    targets: tuple[str, ...] = ("https://zoom.us/", "https://api.zoom.us/")
    connect_target: str = "zoom.us:443"  # what each proxy is asked to CONNECT to
    connect_timeout: float = 2.0
    tls_host: str = "zoom.us"
    tls_port: int = 443
    ca_file: str = ""  # empty: the system's trust store
    tls_timeout: float = 2.5
    pac_url: str = ""  # an extra PAC file (URL or path) to evaluate as its own source
    pac_timeout: float = 1.5
    os_sources: bool = True  # read WinINet/WinHTTP, scutil, gsettings (off: environment only)
    wpad: str = "auto"  # auto (when a source asks for auto-detect) | on | off
    wpad_domain: str = ""  # empty: the DNS search domain
    wpad_url: str = ""  # a full WPAD URL instead of guessing from the domain
    wpad_timeout: float = 1.5
    # Judge "host name resolves to loopback": auto (Windows/macOS only) | on | off.
    hostname_check: str = "auto"

HINTS = {
    "proxy-loopback-dead": "Remove the stale proxy setting ({where}): a VPN or debugging tool left it "
                           "behind; Zoom Rooms then reports its address as 127.0.0.1.",
    "proxy-loopback-agent": "A local agent ({process}) proxies web traffic: make sure it lets Zoom "
                            "through and excludes the controller, or remove it from {where}.",
    "proxy-unreachable": "Fix or remove the proxy in {where}, or allow this host to reach {proxy}.",
    "proxy-auth-required": "Zoom Rooms cannot answer proxy authentication prompts: exempt Zoom's "
                           "hosts from proxy authentication, or fix the credentials in {where}.",
    "proxy-connect-denied": "Allow CONNECT to Zoom's hosts (*.zoom.us, *.zoom.com, port 443) on {proxy}.",
    "proxy-bad-answer": "{proxy} is not a working HTTP proxy: check the port in {where}.",
    "proxy-pac-error": "Fix the PAC file or its URL ({where}); browsers and Zoom fall back "
                       "unpredictably when it fails.",
    "tls-intercepted": "Exempt Zoom's hosts from TLS inspection on the gateway/security software, "
                       "or Zoom shows 'Untrusted Server Certificate'.",
    "controller-via-proxy": "Add the controller's address (or its subnet) to the proxy bypass list "
                            "of {where}.",
    "host-resolves-to-loopback": "Make this host's name resolve to its LAN address (hosts file/DNS) and "
                                 "check proxy settings: Zoom shows the room as 127.0.0.1.",
}


LABELS = {"env": "the *_proxy environment variables", "wininet": "Internet Options (WinINet, this user)",
          "winhttp": "WinHTTP (netsh winhttp)", "macos": "macOS network proxy settings",
          "gnome": "GNOME proxy settings", "pac": "the PAC file", "wpad": "the WPAD file"}


def _label(names: str) -> str:
    """Source names -> where a person finds the setting (for hints)."""
    return ", ".join(LABELS.get(n.strip(), n.strip()) for n in names.split(","))


def _finding(fid: str, sev: Severity, msg: str, evidence: dict[str, Any], **fmt: Any) -> Finding:
    if "where" in fmt:
        fmt["where"] = _label(fmt["where"])
    return Finding(fid, sev, msg, evidence, hint=HINTS[fid].format(**fmt))


def _collect(ctx: Context) -> tuple[list[Source], dict[str, Any]]:
    """All sources; WPAD only when asked for (bounded by ``wpad_timeout``)."""
    o = ctx.options
    sources = system_sources() if o.os_sources else system_sources(include_gnome=False)[:1]
    if o.pac_url:
        sources.append(Source("pac", "option pac_url", pac_url=str(o.pac_url)))
    wpad: dict[str, Any] = {"mode": o.wpad}
    wanted = o.wpad == "on" or (o.wpad == "auto" and any(s.auto_detect for s in sources))
    if wanted:
        domain = str(o.wpad_domain) or search_domain()
        urls = [str(o.wpad_url)] if o.wpad_url else wpad_urls(domain) if domain else []
        wpad.update(domain=domain or None, candidates=urls)
        found, tried = discover(urls, ctx.budget(float(o.wpad_timeout)))
        wpad.update(found=found, tried=tried)
        if found:
            sources.append(Source("wpad", f"WPAD {found}", pac_url=found))
    return sources, wpad


def _room_address(ctx: Context) -> dict[str, Any]:
    """The address used toward the peer and what our own host name resolves to."""
    from roomprobe.net import osnet

    name = socket.gethostname()
    out: dict[str, Any] = {"hostname": name}
    peer = ctx.targets.peer
    if peer:
        out["address_toward_peer"] = osnet.source_address(peer)
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
        out["hostname_resolves_to"] = sorted({str(i[4][0]) for i in infos})
    except OSError as exc:
        out.update(hostname_resolves_to=[], resolve_error=str(exc))
    return out


def _proxy_and_tls(ctx: Context, proxy: str) -> dict[str, Any]:
    o = ctx.options
    res = probe_proxy(proxy, str(o.connect_target), ctx.budget(float(o.connect_timeout)))
    if res.get("connect") == "ok":
        res["tls"] = tls_check(str(o.tls_host), int(o.tls_port), ctx.budget(float(o.tls_timeout)),
                               str(o.ca_file) or None, proxy=proxy)
    if res["loopback"] and res.get("tcp") == "open":
        res["process"] = _listener_process(res["port"])
    return res


def _listener_process(port: int) -> str | None:
    try:
        import psutil

        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return psutil.Process(conn.pid).name()
    except Exception:
        return None
    return None


def _wait(fut: Future, ctx: Context, unfinished: Any) -> Any:
    """A worker's result, or ``unfinished`` when it is still blocked (name resolution cannot be
    given a timeout) as the probe's deadline nears: the probe still reports what it saw."""
    try:
        return fut.result(timeout=max(0.0, ctx.remaining() - 0.2))
    except FuturesTimeout:
        return unfinished


def _key(proxy: str) -> tuple[str, int]:
    _, host, port, _ = split_proxy(proxy)
    return host.lower(), port


class _Daemons:
    """Runs each call in a daemon thread. Not a ThreadPoolExecutor: its workers are joined at
    interpreter exit, so one getaddrinfo stuck on a dead DNS server would hold the CLI open."""

    def submit(self, fn: Any, *args: Any) -> Future:
        fut: Future = Future()

        def work() -> None:
            try:
                fut.set_result(fn(*args))
            except BaseException as exc:
                fut.set_exception(exc)
        threading.Thread(target=work, daemon=True, name="proxy-worker").start()
        return fut


CHOICES = {"wpad": ("auto", "on", "off"), "hostname_check": ("auto", "on", "off")}


def validate(options: Options) -> None:
    """Refuse a value the probe cannot act on before anything runs (one line, exit 3)."""
    for key, allowed in CHOICES.items():
        value = getattr(options, key)
        if value not in allowed:
            raise UsageError(f"proxy.{key}={value!r} is not one of {', '.join(allowed)}")


def run(ctx: Context) -> Result:
    return _run(ctx, ctx.options, _Daemons())


def _run(ctx: Context, o: Any, pool: _Daemons) -> Result:
    host_f = pool.submit(_room_address, ctx) if ctx.targets.role != "controller-side" else None
    ca = str(o.ca_file) or None
    direct_tls_f = pool.submit(tls_check, str(o.tls_host), int(o.tls_port),
                               ctx.budget(float(o.tls_timeout)), ca)
    sources, wpad = _collect(ctx)
    pac = PacCache(lambda: ctx.budget(float(o.pac_timeout)))
    peer = ctx.targets.peer
    peer_label = "controller" if ctx.targets.role == "room" else "room"
    targets = [str(t) for t in o.targets]
    if peer:
        targets.append(f"http://{peer}:{ctx.targets.port}/")
    active = [s for s in sources if s.active]

    def routes_of(src: Source) -> list[dict[str, Any]]:
        out = []
        for url in targets:
            r = route(src, url, pac)
            out.append({"source": src.name, "target": url, "proxy": r.proxy and safe_url(r.proxy),
                        "via": r.via, "error": r.error, "_proxy": r.proxy})
        return out

    route_futs = [(src, pool.submit(routes_of, src)) for src in active]
    route_rows = [row for src, fut in route_futs for row in _wait(fut, ctx, [
        {"source": src.name, "target": "*", "proxy": None, "via": "unfinished", "error": "no answer "
         "before the deadline", "_proxy": None}])]
    # Every proxy found anywhere: fixed proxies of every source and the ones PAC files chose.
    found: dict[tuple[str, int], tuple[str, list[str]]] = {}
    for src in active:
        for p in src.proxies.values():
            found.setdefault(_key(p), (p, []))[1].append(src.name)
    for row in route_rows:
        if row["_proxy"]:
            found.setdefault(_key(row["_proxy"]), (row["_proxy"], []))[1].append(row["source"])
    tests: dict[tuple[str, int], Future] = {k: pool.submit(_proxy_and_tls, ctx, p)
                                            for k, (p, _) in found.items()}

    findings: list[Finding] = []
    proxies_ev = []
    for k, fut in tests.items():
        res = _wait(fut, ctx, {"proxy": safe_url(found[k][0]), "host": k[0], "port": k[1],
                               "loopback": is_loopback(k[0]), "tcp": "unfinished"})
        where = ", ".join(sorted(set(found[k][1])))
        res["sources"] = sorted(set(found[k][1]))
        proxies_ev.append(res)
        findings += _proxy_findings(res, where)
    for row in route_rows:
        del row["_proxy"]

    for pac_url, err in pac.errors.items():
        where = ", ".join(s.name for s in sources if s.pac_url == pac_url)
        findings.append(_finding("proxy-pac-error", Severity.FAIL, f"The PAC file {safe_url(pac_url)} "
                                 f"({where}) does not work: {err}",
                                 {"pac_url": safe_url(pac_url), "sources": where, "error": err},
                                 where=where))
    if peer:
        for row in route_rows:
            if row["target"].startswith(f"http://{peer}:") and row["proxy"]:
                findings.append(_finding(
                    "controller-via-proxy", Severity.FAIL,
                    f"Traffic to the {peer_label} {peer} would go through the proxy {row['proxy']} "
                    f"({row['source']}, {row['via']}): it must be direct.",
                    {"peer": peer, "source": row["source"], "proxy": row["proxy"], "via": row["via"]},
                    where=row["source"]))

    tls_ev = [_wait(direct_tls_f, ctx, {"host": o.tls_host, "port": o.tls_port, "via": "direct",
                                        "verified": None, "error": "no answer before the deadline"})]
    tls_ev += [p["tls"] for p in proxies_ev if "tls" in p]
    for t in tls_ev:
        if t.get("verified") is False:
            findings.append(_finding(
                "tls-intercepted", Severity.FAIL,
                f"The certificate of {t['host']} seen {'directly' if t['via'] == 'direct' else 'via ' + t['via']} "
                f"does not verify ({t.get('verify_error')}); issuer: {t.get('issuer') or 'unknown'}. "
                "TLS is intercepted.",
                {k: t.get(k) for k in ("host", "port", "via", "issuer", "subject", "verify_error", "ca")}))

    host_ev = _wait(host_f, ctx, {"hostname": None, "hostname_resolves_to": [],
                                  "resolve_error": "unfinished"}) if host_f else None
    # Debian/Ubuntu map the host name to 127.0.1.1 by design and Zoom Rooms does not run there:
    # by default ("auto") the clue is judged on Windows and macOS only; evidence is always kept.
    judge = o.hostname_check == "on" or (o.hostname_check == "auto"
                                             and not sys.platform.startswith("linux"))
    if host_ev and judge:
        addrs = host_ev["hostname_resolves_to"]
        if addrs and all(is_loopback(a) for a in addrs):
            findings.append(_finding(
                "host-resolves-to-loopback", Severity.WARN,
                f"This host's name {host_ev['hostname']!r} resolves only to loopback "
                f"({', '.join(addrs)}): Zoom may report the room's address as 127.0.0.1.",
                {"hostname": host_ev["hostname"], "addresses": addrs,
                 "address_toward_peer": host_ev.get("address_toward_peer")}))

    evidence = {"sources": [s.to_evidence() for s in sources], "wpad": wpad, "routes": route_rows,
                "proxies": proxies_ev, "tls": tls_ev, "room_address": host_ev}
    return _verdict(findings, evidence, active)


def _proxy_findings(res: dict[str, Any], where: str) -> list[Finding]:
    proxy, tcp, conn = res["proxy"], res.get("tcp"), res.get("connect")
    ev = {k: res.get(k) for k in ("proxy", "host", "port", "loopback", "tcp", "error", "connect", "status_code",
                                  "status_line", "target", "process", "credentials_sent")}
    ev["sources"] = where
    fmt = {"where": where, "proxy": proxy, "process": res.get("process") or "unknown process"}
    if tcp != "open":
        if res["loopback"]:
            return [_finding("proxy-loopback-dead", Severity.FAIL,
                             f"The proxy {proxy} ({where}) is on this machine but nothing listens "
                             f"({tcp}): a stale proxy setting; every proxied request fails.", ev, **fmt)]
        return [_finding("proxy-unreachable", Severity.FAIL,
                         f"The proxy {proxy} ({where}) cannot be reached ({res.get('error') or tcp}).",
                         ev, **fmt)]
    out = []
    if res["loopback"]:
        out.append(_finding("proxy-loopback-agent", Severity.WARN,
                            f"A local agent ({fmt['process']}) on {proxy} proxies this host's web "
                            f"traffic ({where}): Zoom may see the room as 127.0.0.1.", ev, **fmt))
    if conn == "auth-required":
        out.append(_finding("proxy-auth-required", Severity.FAIL,
                            f"The proxy {proxy} ({where}) "
                            + ("rejects the configured credentials" if res.get("credentials_sent")
                               else "demands authentication")
                            + f" ({res.get('status_code')}) to CONNECT to {res['target']}.", ev, **fmt))
    elif conn == "forbidden":
        out.append(_finding("proxy-connect-denied", Severity.FAIL,
                            f"The proxy {proxy} ({where}) refuses CONNECT to {res['target']} (403).",
                            ev, **fmt))
    elif conn in ("garbage", "closed", "no-answer", "refused-other"):
        what = {"garbage": "answers something that is not HTTP", "closed": "closes the connection",
                "no-answer": "does not answer", "refused-other": f"answers {res.get('status_code')}"}
        out.append(_finding("proxy-bad-answer", Severity.FAIL,
                            f"The proxy {proxy} ({where}) {what[conn]} to CONNECT {res['target']}.",
                            ev, **fmt))
    return out


def _verdict(findings: list[Finding], evidence: dict[str, Any], active: list[Source]) -> Result:
    sevs = {f.severity for f in findings}
    status = Status.FAIL if Severity.FAIL in sevs else Status.WARN if Severity.WARN in sevs else Status.PASS
    names = ", ".join(s.name for s in active) or "none"
    if status != Status.PASS:
        worst = next(f for f in findings if f.severity.value == status.value)
        return Result(status, worst.id, worst.message, evidence, findings)
    reason = "proxied" if active else "direct"
    summary = (f"proxy sources in use: {names}; {len(evidence['proxies'])} proxy(ies) work"
               if active else "no proxy configured: direct connections")
    return Result(status, reason, summary, evidence, findings)


PROBE = Probe(
    id="proxy",
    title="Proxy settings, proxies and TLS interception",
    run=run,
    timeout_s=4.5,
    options=Options,
    validate=validate,
    description="Every proxy source (env, WinINet, WinHTTP, macOS, GNOME, PAC, WPAD), the route to "
                "Zoom and the controller, CONNECT through each proxy, TLS issuer of zoom.us, and the "
                "127.0.0.1 clue.",
)
