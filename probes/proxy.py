"""proxy: which proxies this host would use for Zoom, do they work, and do they intercept TLS.

Every proxy source (env, WinINet, WinHTTP, macOS, GNOME, PAC, WPAD), the route to Zoom and the
controller, CONNECT through each proxy, TLS issuer of zoom.us, and the 127.0.0.1 clue.

Checks: every proxy source separately (environment, Windows WinINet per user and WinHTTP
machine-wide, macOS ``scutil --proxy``, GNOME, a PAC file given as an option, WPAD), which proxy
each would use for Zoom's web/API hosts and for the controller (the same ``Resolver`` the cloud
and bandwidth probes use: PAC/WPAD evaluated in a killable child process, the full
``PROXY a; PROXY b; DIRECT`` chain, curl-like bypass lists), then only the proxies some target
actually uses (TCP, then a real HTTP CONNECT or SOCKS5 CONNECT to a Zoom host), TLS to zoom.us
directly and through each working proxy with its verdict (roomprobe.net.tlsverdict), and what
this host's own name resolves to (Zoom's 127.0.0.1 clue).
How: sockets, ssl, a child process for PAC; everything concurrent and bounded by the deadline.
Pass means, with proof: every route was decided (no PAC error, no unusable setting), every proxy
a target uses accepted CONNECT and the TLS handshake through it completed with a certificate
that verifies against this device's store and the public web PKI, and so did the direct path
when a target goes direct. Anything not proven is a finding.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass
from typing import Any

from roomprobe.core import threads
from roomprobe.core.errors import UsageError
from roomprobe.core.probe import Context, Finding, Probe, Result, Severity, Status, described, silence_measured
from roomprobe.core.settings import check_file_option
from roomprobe.proxy import resolver as proxies
from roomprobe.proxy.sources import Source, safe_url
from roomprobe.proxy.sources.checks import is_loopback, probe_proxy, split_proxy, tls_check


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
    public_ca_file: str = ""  # the public web PKI; empty: certifi's Mozilla roots
    tls_timeout: float = 2.5
    pac_url: str = ""  # an extra PAC file (URL or path) to evaluate as its own source
    pac_timeout: float = 2.0
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
    "proxy-bad-answer": "{proxy} is not a working proxy: check the address, port and scheme in {where}.",
    "proxy-fallback": "Remove the dead first proxy {proxy} from {where}: clients wait for it to time "
                      "out before they fall back, which slows every connection.",
    "proxy-bad-setting": "Correct the proxy setting {setting} (a URL like http://host:3128), or remove it.",
    "proxy-not-tested": "roomprobe cannot test {scheme}:// proxies: check {proxy} by hand, or use an "
                        "HTTP proxy for Zoom.",
    "proxy-pac-error": "Fix the PAC file or its URL ({where}); browsers and Zoom fall back "
                       "unpredictably when it fails.",
    "tls-intercepted": "Exempt Zoom's hosts from TLS inspection on the gateway/security software, "
                       "or Zoom shows 'Untrusted Server Certificate'.",
    "tls-inspected": "A company CA this device trusts inspects Zoom's TLS; Zoom advises exempting "
                     "*.zoom.us and *.zoom.com from inspection on {via}.",
    "tls-cert-expired": "Check this device's clock and time zone (local {local_time}, server {server_date}); "
                        "fix time sync (NTP), then retry.",
    "tls-name-mismatch": "Something answers for {host} with a certificate for another name (a block "
                         "page or a wrong route): find it on the path ({via}) and let Zoom through.",
    "tls-handshake-failed": "The TLS handshake with {host} {via_text} did not complete: check the proxy "
                            "or firewall between this device and Zoom (it may stall or reset TLS).",
    "tls-not-checked": "roomprobe could not reach {host} {via_text} to check its certificate; fix the "
                       "path first (see the cloud probe), then rerun.",
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


def _resolver(o: Any) -> proxies.Resolver:
    """The process-wide resolver when the options are the defaults (so cloud, bandwidth and this
    probe share one answer and one PAC evaluation); an own one when they override WPAD/PAC."""
    own = {"wpad": o.wpad, "wpad_domain": str(o.wpad_domain), "wpad_url": str(o.wpad_url),
           "wpad_timeout": float(o.wpad_timeout), "pac_timeout": float(o.pac_timeout),
           "os_sources": bool(o.os_sources)}
    shared = proxies.resolver()
    if all(getattr(shared, k) == v for k, v in own.items()):
        return shared
    return proxies.Resolver(**own)


def _collect(ctx: Context, res: proxies.Resolver) -> tuple[list[Source], dict[str, Any]]:
    """All sources; WPAD when a source auto-detects or the option forces it."""
    o = ctx.options
    sources = res.sources()
    if o.pac_url:
        sources.append(Source("pac", "option pac_url", pac_url=str(o.pac_url)))
    auto = any(s.auto_detect for s in sources)
    wpad = res.wpad_info(o.wpad == "on" or (o.wpad == "auto" and auto))
    if wpad.get("found") and not any(s.auto_detect and s.active for s in sources):
        sources.append(Source("wpad", f"WPAD {wpad['found']}", auto_detect=True))
    return sources, wpad


def _room_address(ctx: Context) -> dict[str, Any]:
    """The address used toward the peer and what our own host name resolves to."""
    from roomprobe.host import osnet

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


def _cut_short(given: float, configured: float) -> bool:
    """The deadline left this wait too short to judge: silence within it is not measured silence
    (``silence_measured``; a wait planned inside the time left is)."""
    return not silence_measured(given, configured)


def _tls(ctx: Context, proxy: str | None, progress: dict[str, Any] | None = None) -> dict[str, Any]:
    """tls_check with the probe's budget; a silence the deadline cut short is ``unfinished``.
    ``progress`` gets the planned wait, its start and the phase (see ``_silent_resolve``)."""
    o = ctx.options
    budget = ctx.plan(float(o.tls_timeout))
    progress = progress if progress is not None else {}
    progress.update(budget=budget, t0=time.monotonic())
    t = tls_check(str(o.tls_host), int(o.tls_port), budget, str(o.ca_file) or None, proxy,
                  str(o.public_ca_file) or None, progress=progress)
    if t.get("verdict") == "no-answer" and _cut_short(budget, float(o.tls_timeout)):
        t["verdict"] = "unfinished"
    return t


def _silent_resolve(t: dict[str, Any], progress: dict[str, Any], tls_timeout: float) -> None:
    """In place: a direct TLS check still stuck resolving or connecting (name resolution takes no
    timeout) after its whole planned wait is a measured "no answer" (``not-checked``, with the
    seconds waited), not an ``unfinished`` one; a wait too short to judge stays unfinished."""
    budget, t0 = progress.get("budget"), progress.get("t0")
    if t.get("verdict") != "unfinished" or progress.get("phase") != "resolve-connect" or not budget:
        return
    waited = time.monotonic() - float(t0 or 0.0)
    if waited >= budget and silence_measured(budget, tls_timeout):
        t.update(verdict="not-checked", waited_s=round(waited, 2),
                 error=f"name resolution or connect to {t['host']} got no answer for "
                       f"{waited:.1f} s, the whole wait (a silent DNS resolver?)")


def _proxy_and_tls(ctx: Context, proxy: str) -> dict[str, Any]:
    o = ctx.options
    budget = ctx.plan(float(o.connect_timeout))
    res = probe_proxy(proxy, str(o.connect_target), budget)
    if _cut_short(budget, float(o.connect_timeout)):
        if res.get("tcp") == "timeout":
            res["tcp"] = "unfinished"
        elif res.get("connect") == "no-answer":
            res["connect"] = "unfinished"
    if res.get("connect") == "ok":
        res["tls"] = _tls(ctx, proxy)
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


CHOICES = {"wpad": ("auto", "on", "off"), "hostname_check": ("auto", "on", "off")}


def validate(options: Options) -> None:
    """Refuse a value the probe cannot act on before anything runs (one line, exit 3)."""
    for key, allowed in CHOICES.items():
        value = getattr(options, key)
        if value not in allowed:
            raise UsageError(f"proxy.{key}={value!r} is not one of {', '.join(allowed)}")
    for key in ("ca_file", "public_ca_file"):
        check_file_option(f"proxy.{key}", getattr(options, key))


def run(ctx: Context) -> Result:
    return _run(ctx, ctx.options, threads.Daemons("proxy-worker"))


def _routes(ctx: Context, res: proxies.Resolver, active: list[Source], targets: list[str],
            pool: threads.Daemons) -> list[dict[str, Any]]:
    def routes_of(src: Source) -> list[dict[str, Any]]:
        out = []
        for url in targets:
            r = res.route(src, url)
            out.append({"source": src.name, "target": url, "proxy": r.proxy and safe_url(r.proxy),
                        "chain": [safe_url(p) if p else "DIRECT" for p in r.chain], "via": r.via,
                        "error": r.error, "_chain": r.chain})
        return out

    def batch(src: Source) -> list[dict[str, Any]]:
        wpad = res.wpad_info()["found"] if src.auto_detect else None
        for pac_url in (wpad, src.pac_url):
            if pac_url:  # one child evaluates every target of this PAC file at once
                with contextlib.suppress(Exception):  # reported per route as pac-error
                    res.pacs.evaluate(pac_url, targets)
                break
        return routes_of(src)

    futs = [(src, pool.submit(batch, src)) for src in active]
    return [row for src, fut in futs for row in _wait(fut, ctx, [
        {"source": src.name, "target": t, "proxy": None, "chain": [], "via": "unfinished",
         "error": "no answer before the deadline", "_chain": []} for t in targets])]


def _run(ctx: Context, o: Any, pool: threads.Daemons) -> Result:
    """Read every proxy source, route each target through each, then test only the proxies
    some target uses (CONNECT, then TLS through it) beside the direct TLS path; conclude."""
    host_f = pool.submit(_room_address, ctx) if ctx.targets.role != "controller-side" else None
    direct_progress: dict[str, Any] = {}
    direct_tls_f = pool.submit(_tls, ctx, None, direct_progress)
    res = _resolver(o)
    collected = _wait(pool.submit(_collect, ctx, res), ctx, None)
    if collected is None:
        return Result(Status.ERROR, "unfinished", "the proxy settings could not be read before the "
                      "deadline", {"routes": []}, [])
    sources, wpad = collected
    peer = ctx.targets.peer
    targets = [str(t) for t in o.targets]
    peer_url = f"http://{peer}:{ctx.targets.port}/" if peer else None
    if peer_url:
        targets.append(peer_url)
    active = [s for s in sources if s.active]
    route_rows = _routes(ctx, res, active, targets, pool)
    used, unused = _used_proxies(route_rows, active)
    proxies_ev = _test_proxies(ctx, pool, used)
    direct_tls = _wait(direct_tls_f, ctx, {"host": o.tls_host, "port": o.tls_port, "via": "direct",
                                           "verified": None, "verdict": "unfinished",
                                           "error": "no answer before the deadline"})
    _silent_resolve(direct_tls, direct_progress, float(o.tls_timeout))

    findings = _proxies_findings(proxies_ev, route_rows, direct_tls)
    findings += _bad_setting_findings(route_rows)
    route_proof = _route_proof(route_rows, proxies_ev, direct_tls, peer_url)
    for row in route_rows:
        row.pop("_chain")
    findings += _pac_findings(res, sources, wpad, route_rows)
    if peer_url:
        findings += _peer_via_proxy_findings(ctx, route_rows, peer_url)

    zoom_rows = [r for r in route_rows if r["target"] != peer_url]
    direct_used = not active or any(r["chain"][:1] == ["DIRECT"] for r in zoom_rows)
    tls_ev = [direct_tls] + [p["tls"] for p in proxies_ev.values() if "tls" in p]
    for t in tls_ev:
        if t["via"] == "direct" and not direct_used and t.get("verdict") not in ("untrusted", "inspected"):
            continue  # the direct path is not used: its trouble is not Zoom's (the cloud probe judges it)
        findings += _tls_findings(t)

    host_ev = _wait(host_f, ctx, {"hostname": None, "hostname_resolves_to": [],
                                  "resolve_error": "unfinished"}) if host_f else None
    findings += _hostname_findings(o, host_ev)
    evidence = {"sources": [s.to_evidence() for s in sources], "wpad": wpad, "routes": route_rows,
                "proxies": list(proxies_ev.values()), "unused_proxies": unused, "tls": tls_ev,
                "room_address": host_ev}
    return _verdict(findings, evidence, active, route_proof)


Used = dict[tuple[str, int], tuple[str, set[str], set[str]]]  # (host, port) -> (url, sources, targets)


def _used_proxies(route_rows: list[dict[str, Any]], active: list[Source]) -> tuple[Used, list[str]]:
    """Only the proxies some target actually uses (anywhere in its chain) are tested; the
    others configured are listed as unused."""
    used: Used = {}
    for row in route_rows:
        for p in row["_chain"]:
            if p:
                k = _key(p)
                used.setdefault(k, (p, set(), set()))
                used[k][1].add(row["source"])
                used[k][2].add(row["target"])
    unused = sorted({safe_url(p) for s in active for p in s.proxies.values()}
                    - {safe_url(p) for p, _, _ in used.values()})
    return used, unused


def _test_proxies(ctx: Context, pool: threads.Daemons, used: Used) -> dict[tuple[str, int], dict[str, Any]]:
    """CONNECT and TLS through every used proxy at once; what each gave by the deadline."""
    tests = {k: pool.submit(_proxy_and_tls, ctx, p) for k, (p, _, _) in used.items()}
    proxies_ev: dict[tuple[str, int], dict[str, Any]] = {}
    for k, fut in tests.items():
        r = _wait(fut, ctx, {"proxy": safe_url(used[k][0]), "host": k[0], "port": k[1],
                             "loopback": is_loopback(k[0]), "tcp": "unfinished"})
        r["sources"] = sorted(used[k][1])
        r["targets"] = sorted(used[k][2])
        proxies_ev[k] = r
    return proxies_ev


def _proxies_findings(proxies_ev: dict[tuple[str, int], dict[str, Any]], route_rows: list[dict[str, Any]],
                      direct_tls: dict[str, Any]) -> list[Finding]:
    """Each tested proxy's findings; one whose every use has a working fallback later in the
    chain costs time, not the path (its findings say which fallback)."""
    def works(entry: str | None) -> bool:
        if entry is None:
            return direct_tls.get("verdict") in ("ok", "inspected")
        r = proxies_ev.get(_key(entry), {})
        return r.get("connect") == "ok" and r.get("tls", {}).get("verdict") in ("ok", "inspected")

    findings: list[Finding] = []
    for k, r in proxies_ev.items():
        fallbacks = []
        for row in route_rows:
            chain = row["_chain"]
            idx = [i for i, p in enumerate(chain) if p and _key(p) == k]
            if idx:
                fallbacks.append(next((("DIRECT" if e is None else safe_url(e)) for e in chain[idx[0] + 1:]
                                       if works(e)), None))
        fallback = fallbacks[0] if fallbacks and all(fallbacks) else None
        findings += _proxy_findings(r, ", ".join(r["sources"]), fallback)
    return findings


def _bad_setting_findings(route_rows: list[dict[str, Any]]) -> list[Finding]:
    """A proxy setting that is no usable proxy URL: requests that should use it fail or go direct."""
    findings: list[Finding] = []
    seen_bad: set[str] = set()
    for row in route_rows:
        if row["via"] == "invalid" and row["error"] not in seen_bad:
            seen_bad.add(row["error"])
            setting = row["error"].split(" = ", 1)[0]
            findings.append(_finding(
                "proxy-bad-setting", Severity.FAIL,
                f"The proxy setting {row['error']}: it is no usable proxy URL, so requests that "
                f"should use it fail or go direct ({row['source']}).",
                {"setting": setting, "source": row["source"], "error": row["error"]}, setting=setting))
    return findings


def _pac_findings(res: proxies.Resolver, sources: list[Source], wpad: dict[str, Any],
                  route_rows: list[dict[str, Any]]) -> list[Finding]:
    """A PAC file that does not work, once per error, naming where it is configured."""
    findings: list[Finding] = []
    for pac_url, err in res.pacs.errors.items():
        where = ", ".join(s.name for s in sources if s.pac_url == pac_url
                          or (s.auto_detect and wpad.get("found") == pac_url)) or "wpad"
        if not any(r["via"] == "pac-error" and r["error"] == err for r in route_rows):
            continue
        findings.append(_finding("proxy-pac-error", Severity.FAIL, f"The PAC file {safe_url(pac_url)} "
                                 f"({where}) does not work: {err}",
                                 {"pac_url": safe_url(pac_url), "sources": where, "error": err},
                                 where=where))
    # A PAC failure the cache did not record (an evaluation that raised something else) is still
    # a route nobody can take: a finding, never a silent DIRECT. A route the deadline left
    # undecided ("unfinished") proves nothing either way: it makes the verdict error (_verdict).
    told = {f.evidence.get("error") for f in findings}
    for row in route_rows:
        if row["via"] == "pac-error" and row["error"] not in told:
            told.add(row["error"])
            findings.append(_finding("proxy-pac-error", Severity.FAIL,
                                     f"The PAC file of {row['source']} gave no route for "
                                     f"{row['target']}: {row['error']}",
                                     {"sources": row["source"], "error": row["error"]},
                                     where=row["source"]))
    # A PAC answer naming a proxy nobody can connect to (a host label over 63 characters, a bad
    # port): clients skip it, as we do, but that is the PAC file's mistake and is said so.
    for row in route_rows:
        err = row["error"] or ""
        if row["via"] in ("pac", "wpad") and err.startswith("unusable PAC entries skipped") \
                and err not in told:
            told.add(err)
            findings.append(_finding("proxy-pac-error", Severity.WARN,
                                     f"The PAC file of {row['source']} answers {row['target']} with "
                                     f"{err.split(': ', 1)[1]}, which no client can use: it is "
                                     "skipped, as browsers do, and the next entry is used.",
                                     {"sources": row["source"], "error": err}, where=row["source"]))
    return findings


def _peer_via_proxy_findings(ctx: Context, route_rows: list[dict[str, Any]], peer_url: str) -> list[Finding]:
    """Traffic between the room and its controller must go direct, never through a proxy."""
    peer = ctx.targets.peer
    peer_label = "controller" if ctx.targets.role == "room" else "room"
    return [_finding(
        "controller-via-proxy", Severity.FAIL,
        f"Traffic to the {peer_label} {peer} would go through the proxy {row['proxy']} "
        f"({row['source']}, {row['via']}): it must be direct.",
        {"peer": peer, "source": row["source"], "proxy": row["proxy"], "via": row["via"]},
        where=row["source"])
        for row in route_rows if row["target"] == peer_url and row["proxy"]]


def _hostname_findings(o: Any, host_ev: dict[str, Any] | None) -> list[Finding]:
    """This host's name resolving only to loopback: Zoom may report the room as 127.0.0.1.
    Debian/Ubuntu map the host name to 127.0.1.1 by design and Zoom Rooms does not run there:
    by default ("auto") the clue is judged on Windows and macOS only; evidence is always kept."""
    judge = o.hostname_check == "on" or (o.hostname_check == "auto"
                                             and not sys.platform.startswith("linux"))
    if not (host_ev and judge):
        return []
    addrs = host_ev["hostname_resolves_to"]
    if not (addrs and all(is_loopback(a) for a in addrs)):
        return []
    return [_finding(
        "host-resolves-to-loopback", Severity.WARN,
        f"This host's name {host_ev['hostname']!r} resolves only to loopback "
        f"({', '.join(addrs)}): Zoom may report the room's address as 127.0.0.1.",
        {"hostname": host_ev["hostname"], "addresses": addrs,
         "address_toward_peer": host_ev.get("address_toward_peer")})]


def _via_text(t: dict[str, Any]) -> str:
    return "directly" if t["via"] == "direct" else f"through {t['via']}"


def _tls_findings(t: dict[str, Any]) -> list[Finding]:
    """One finding per TLS verdict that is not ``ok``; each has its own id, hint and Zoom code."""
    v = t.get("verdict")
    ev = {k: t.get(k) for k in ("host", "port", "via", "verdict", "issuer", "subject", "verify_error",
                                "strict_note", "error", "ca", "public", "local_time", "server_date")}
    fmt = {"host": t["host"], "via": t["via"], "via_text": _via_text(t),
           "local_time": t.get("local_time"), "server_date": t.get("server_date") or "unknown"}
    seen = f"The certificate of {t['host']} seen {_via_text(t)}"
    if v == "untrusted":
        return [_finding("tls-intercepted", Severity.FAIL,
                         f"{seen} is issued by {t.get('issuer') or 'an unknown CA'}, which this device "
                         f"does not trust ({t.get('verify_error')}): TLS is intercepted.",
                         ev, **fmt)]
    if v == "inspected":
        return [_finding("tls-inspected", Severity.WARN, f"{seen} is issued by {t.get('issuer')}, trusted by this "
                         "device but not by the public web PKI: a company CA inspects Zoom's traffic.",
                         ev, **fmt)]
    if v in ("expired", "not-yet-valid"):
        word = "has expired" if v == "expired" else "is not valid yet"
        return [_finding("tls-cert-expired", Severity.FAIL, f"{seen} {word} for this device: local time "
                         f"{t.get('local_time')}, the server's clock {t.get('server_date') or 'unknown'}. "
                         "Check the clock.", ev, **fmt)]
    if v == "name-mismatch":
        return [_finding("tls-name-mismatch", Severity.FAIL, f"{seen} is for another name "
                         f"({t.get('subject') or 'unknown subject'}): {t.get('verify_error')}.", ev, **fmt)]
    if v in ("handshake-failed", "no-answer"):
        what = "stalled" if v == "no-answer" else "failed"
        return [_finding("tls-handshake-failed", Severity.FAIL, f"The TLS handshake with {t['host']} "
                         f"{_via_text(t)} {what} ({t.get('error')}): no certificate could be checked.",
                         ev, **fmt)]
    if v == "not-checked":
        return [_finding("tls-not-checked", Severity.WARN, f"TLS to {t['host']} {_via_text(t)} could "
                         f"not be tried ({t.get('error')}): interception is not checked.", ev, **fmt)]
    return []


def _proxy_findings(res: dict[str, Any], where: str, fallback: str | None = None) -> list[Finding]:
    proxy, tcp, conn = res["proxy"], res.get("tcp"), res.get("connect")
    if "unfinished" in (tcp, conn):
        return []  # cut short by the deadline: no verdict on this proxy (the probe says error)
    ev = {k: res.get(k) for k in ("proxy", "scheme", "host", "port", "loopback", "tcp", "error", "connect",
                                  "status_code", "status_line", "target", "targets", "process",
                                  "credentials_sent")}
    ev["sources"] = where
    ev["fallback"] = fallback
    targets = ", ".join(res.get("targets") or []) or res.get("target", "?")
    fmt = {"where": where, "proxy": proxy, "process": res.get("process") or "unknown process",
           "scheme": res.get("scheme") or "?"}
    used_by = f" (used for {targets}; set in {where})"
    if fallback and (tcp != "open" or conn != "ok"):
        return [_finding("proxy-fallback", Severity.WARN,
                         f"The proxy {proxy}{used_by} does not work ({res.get('error') or conn or tcp}); "
                         f"clients fall back to {fallback}, after a delay.", ev, **fmt)]
    if tcp != "open":
        if res["loopback"]:
            return [_finding("proxy-loopback-dead", Severity.FAIL,
                             f"The proxy {proxy}{used_by} is on this machine but nothing listens "
                             f"({tcp}): a stale proxy setting; every proxied request fails.", ev, **fmt)]
        return [_finding("proxy-unreachable", Severity.FAIL,
                         f"The proxy {proxy}{used_by} cannot be reached ({res.get('error') or tcp}).",
                         ev, **fmt)]
    out = []
    if res["loopback"]:
        out.append(_finding("proxy-loopback-agent", Severity.WARN,
                            f"A local agent ({fmt['process']}) on {proxy} proxies this host's web "
                            f"traffic{used_by}: Zoom may see the room as 127.0.0.1.", ev, **fmt))
    if conn == "not-tested":
        out.append(_finding("proxy-not-tested", Severity.WARN,
                            f"The proxy {proxy}{used_by} listens, but roomprobe cannot test "
                            f"{fmt['scheme']}:// proxies: the path through it is not proven.", ev, **fmt))
    elif conn == "auth-required":
        out.append(_finding("proxy-auth-required", Severity.FAIL,
                            f"The proxy {proxy}{used_by} "
                            + ("rejects the configured credentials" if res.get("credentials_sent")
                               else "demands authentication")
                            + f" ({res.get('status_code') or 'SOCKS'}) to CONNECT to {res['target']}.", ev, **fmt))
    elif conn == "forbidden":
        out.append(_finding("proxy-connect-denied", Severity.FAIL,
                            f"The proxy {proxy}{used_by} refuses CONNECT to {res['target']} "
                            f"({res.get('status_code') or 'SOCKS: not allowed'}).", ev, **fmt))
    elif conn in ("garbage", "closed", "no-answer", "refused-other"):
        what = {"garbage": "answers something that is not HTTP", "closed": "closes the connection",
                "no-answer": "does not answer", "refused-other": f"answers {res.get('status_code')}"}
        out.append(_finding("proxy-bad-answer", Severity.FAIL,
                            f"The proxy {proxy}{used_by} {what[conn]} to CONNECT {res['target']}.",
                            ev, **fmt))
    return out


def _route_proof(rows: list[dict[str, Any]], proxies_ev: dict[tuple[str, int], dict[str, Any]],
                 direct_tls: dict[str, Any], peer_url: str | None) -> dict[str, Any]:
    """What a proxy PASS stands on, per route a target takes (the first entry of its chain,
    the one a client uses): the proxy with its CONNECT answer and TLS verdict ``ok``, or direct
    with the direct TLS verdict ``ok``. With no active source: "no proxy applies: direct".

    Returns ``{"routes": [...], "unproven": [...]}``; a route that is undecided, unusable or
    not verified lands in ``unproven`` and no PASS is possible.
    """
    proven: list[dict[str, Any]] = []
    unproven: list[dict[str, Any]] = []
    direct_ok = direct_tls.get("verdict") == "ok"
    if not rows:
        entry = {"route": "no proxy applies: direct", "tls_direct": direct_tls.get("verdict")}
        (proven if direct_ok else unproven).append(entry)
    for row in rows:
        base = {"target": row["target"], "source": row["source"], "via": row["via"]}
        chain = row["_chain"]
        if row["target"] == peer_url:  # the controller: proven by going direct (no TLS there)
            (proven if row["via"] not in ("invalid", "pac-error", "unfinished")
             and chain[:1] == [None] else unproven).append({**base, "route": "direct"})
            continue
        if row["via"] in ("invalid", "pac-error", "unfinished") or not chain:
            unproven.append({**base, "route": None, "why": row["error"] or row["via"]})
        elif chain[0] is None:
            (proven if direct_ok else unproven).append(
                {**base, "route": "direct", "tls_direct": direct_tls.get("verdict")})
        else:
            r = proxies_ev.get(_key(chain[0]), {})
            entry = {**base, "route": safe_url(chain[0]), "tcp": r.get("tcp"), "connect": r.get("connect"),
                     "status_code": r.get("status_code"), "tls": (r.get("tls") or {}).get("verdict")}
            (proven if entry["connect"] == "ok" and entry["tls"] == "ok" else unproven).append(entry)
    return {"routes": proven, "unproven": unproven}


def _verdict(findings: list[Finding], evidence: dict[str, Any], active: list[Source],
             route_proof: dict[str, Any]) -> Result:
    sevs = {f.severity for f in findings}
    names = ", ".join(s.name for s in active) or "none"
    if Severity.FAIL in sevs or Severity.WARN in sevs:
        status = Status.FAIL if Severity.FAIL in sevs else Status.WARN
        worst = next(f for f in findings if f.severity.value == status.value)
        return Result(status, worst.id, worst.message, evidence, findings)
    # Pass only on proof: every route a target takes went through a proxy that accepted CONNECT
    # and completed TLS with the verdict ok, or went direct with the direct TLS verdict ok.
    if route_proof["unproven"] or not route_proof["routes"]:
        def gap(u: dict[str, Any]) -> str:
            what = next((u[k] for k in ("why", "tls", "tls_direct", "connect", "tcp") if u.get(k)), "?")
            return f"{u.get('target', 'zoom')} ({u.get('source', 'direct')}): {what}"
        gaps = "; ".join(gap(u) for u in route_proof["unproven"][:3]) or "no route"
        cut = "unfinished" in repr(route_proof["unproven"])
        return Result.unmeasured("unfinished" if cut else "unproven",
                                 ("not proven before the deadline: " if cut else "not proven: ")
                                 + gaps + ("; rerun with a longer --timeout" if cut else ""),
                                 {**evidence, "unproven": route_proof["unproven"]}, findings)
    reason = "proxied" if active else "direct"
    via = sorted({r["route"] for r in route_proof["routes"]})
    summary = (f"proxy sources in use: {names}; {len(evidence['proxies'])} proxy(ies) used and "
               f"verified: TLS to Zoom verified via {', '.join(via)}"
               if active else "no proxy applies: direct connections; TLS to Zoom verified")
    return Result.passed(reason, summary, evidence, {"routes": route_proof["routes"]}, findings)


PROBE = Probe("proxy", "Proxy settings, proxies and TLS interception", run, timeout_s=4.5, options=Options,
              validate=validate, description=described(__doc__))
