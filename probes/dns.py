"""dns: can the room resolve Zoom's names, through which resolver, how fast, and honestly?

Checks: a list of Zoom names (configurable) for A and AAAA through every configured resolver
separately, and through the OS path (getaddrinfo, which includes the hosts file).
How: dnspython, one query per (resolver, name, type), all concurrent and each bounded, so a dead
resolver costs one timeout, not one per name. Resolvers come from the OS configuration
(resolv.conf; the registry on Windows; ``scutil --dns`` on macOS) unless configured.
Concludes, per resolver: silent or unreachable (timeout), REFUSED, SERVFAIL, NXDOMAIN (never read
as "DNS works": some networks answer it instantly when there is no internet), empty answers,
sinkhole answers (0.0.0.0, loopback, private ranges for public names: a filter or captive
portal), slow answers; across resolvers: disagreement; and the hosts file overriding DNS.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from roomprobe import dnsconf
from roomprobe.probe import Context, Finding, Probe, Result, Severity, Status

DEFAULTS: dict[str, Any] = {
    # Zoom's web and API hosts, and a zone-controller style name (see docs/dns.md).
    "names": ["zoom.us", "www.zoom.us", "api.zoom.us", "us04web.zoom.us", "us04zc.zoom.us"],
    "resolvers": [],  # empty: the system's resolvers
    "record_types": ["A", "AAAA"],
    "query_timeout": 2.0,
    "slow_ms": 500,
    # Networks that are legitimate answers for these names (split-horizon DNS, a lab).
    "allow_networks": [],
}

HINTS = {
    "dns-no-resolver": "Configure a DNS server (DHCP option 6 or the adapter's static DNS settings).",
    "dns-timeout": "Check the resolver address, and that UDP/TCP 53 to it is allowed by the firewall.",
    "dns-refused": "The resolver refuses this host: allow the room's subnet on the DNS server, or "
                   "use the company resolver.",
    "dns-servfail": "The resolver cannot resolve Zoom's names (upstream or DNSSEC failure): check its "
                    "forwarders.",
    "dns-nxdomain": "The resolver says Zoom's names do not exist: a DNS filter or a captive portal; "
                    "allow *.zoom.us on the filter or sign in to the portal.",
    "dns-empty": "The resolver returns no address for Zoom's names: check DNS filtering policies.",
    "dns-sinkhole": "A DNS filter answers Zoom's names with a blocking address: allow *.zoom.us and "
                    "*.zoom.com in the DNS filter (or add its network to allow_networks if intended).",
    "dns-hosts-override": "Remove the Zoom entries from the hosts file "
                          "(C:\\Windows\\System32\\drivers\\etc\\hosts or /etc/hosts).",
    "dns-slow": "Use a closer or less loaded resolver; slow DNS delays every Zoom connection.",
    "dns-resolvers-disagree": "Resolvers give different answers: one of them filters or is stale; "
                              "use the same resolver everywhere.",
}
SEVERITY = {"dns-no-resolver": Severity.FAIL, "dns-timeout": Severity.FAIL,
            "dns-refused": Severity.FAIL, "dns-servfail": Severity.FAIL,
            "dns-nxdomain": Severity.FAIL, "dns-empty": Severity.WARN,
            "dns-sinkhole": Severity.FAIL, "dns-hosts-override": Severity.WARN,
            "dns-slow": Severity.WARN, "dns-resolvers-disagree": Severity.WARN}


def query(resolver: str, name: str, rdtype: str, timeout: float) -> dict[str, Any]:
    """One DNS question to one resolver: rcode, addresses, latency, or the error."""
    import dns.exception
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdatatype

    q = dns.message.make_query(name, rdtype)
    t0 = time.monotonic()
    out: dict[str, Any] = {"resolver": resolver, "name": name, "type": rdtype}
    family = socket.AF_INET6 if ":" in resolver else socket.AF_INET
    try:
        # A connected UDP socket, so an ICMP "port unreachable" (nothing listens there) surfaces
        # as an error at once instead of passing for silence.
        with socket.socket(family, socket.SOCK_DGRAM) as udp:
            udp.setblocking(False)
            udp.connect((resolver, 53))
            resp, _tcp = dns.query.udp_with_fallback(q, resolver, timeout=timeout, udp_sock=udp)
    except dns.exception.Timeout:
        return {**out, "rcode": None, "error": "timeout", "ms": None}
    except OSError as exc:  # ICMP port/host unreachable on the connected socket, no route
        return {**out, "rcode": None, "error": f"unreachable: {exc.strerror or exc}", "ms": None}
    except dns.exception.DNSException as exc:
        return {**out, "rcode": None, "error": f"bad answer: {exc}", "ms": None}
    want = dns.rdatatype.from_text(rdtype)
    addrs = sorted({r.to_text() for rrset in resp.answer if rrset.rdtype == want for r in rrset})
    return {**out, "rcode": dns.rcode.to_text(resp.rcode()), "addresses": addrs,
            "ms": round((time.monotonic() - t0) * 1000, 1), "error": None}


def os_lookup(name: str) -> dict[str, Any]:
    """The OS path (hosts file, then DNS): what applications, Zoom included, actually get."""
    t0 = time.monotonic()
    try:
        infos = socket.getaddrinfo(name, 443, type=socket.SOCK_STREAM)
        addrs = sorted({str(i[4][0]) for i in infos})
        return {"name": name, "addresses": addrs, "error": None,
                "ms": round((time.monotonic() - t0) * 1000, 1)}
    except socket.gaierror as exc:
        return {"name": name, "addresses": [], "error": str(exc.strerror or exc), "ms": None}


def _bounded(fn: Any, args: tuple, timeout: float) -> Any:
    """getaddrinfo has no timeout of its own: run it in a daemon thread and stop waiting."""
    box: list[Any] = []
    t = threading.Thread(target=lambda: box.append(fn(*args)), daemon=True)
    t.start()
    t.join(timeout)
    return box[0] if box else {"name": args[0], "addresses": [], "error": "timeout", "ms": None}


def is_sinkhole(addr: str, allowed: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    ip = ipaddress.ip_address(addr)
    if any(ip in net for net in allowed if net.version == ip.version):
        return False
    return ip.is_unspecified or ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_reserved


def run(ctx: Context) -> Result:
    opts = ctx.options
    names, types = list(opts["names"]), list(opts["record_types"])
    resolvers = list(opts["resolvers"]) or dnsconf.system_resolvers()
    evidence: dict[str, Any] = {"resolvers": resolvers, "names": names}
    if not resolvers:
        return _result(evidence, [Finding("dns-no-resolver", SEVERITY["dns-no-resolver"],
                                          "No DNS resolver is configured on this host.", {},
                                          hint=HINTS["dns-no-resolver"])])
    try:
        allowed = [ipaddress.ip_network(n, strict=False) for n in opts["allow_networks"]]
    except ValueError as exc:
        return Result(Status.ERROR, "bad-option", f"dns.allow_networks: {exc}", evidence)
    timeout = ctx.budget(float(opts["query_timeout"]))
    jobs = [(r, n, t) for r in resolvers for n in names for t in types]
    with ThreadPoolExecutor(max_workers=min(32, len(jobs) + len(names))) as pool:
        futures = [pool.submit(query, r, n, t, timeout) for r, n, t in jobs]
        os_futs = [pool.submit(_bounded, os_lookup, (n,), timeout) for n in names]
        answers = [f.result() for f in futures]
        os_answers = [f.result() for f in os_futs]
    evidence["queries"] = answers
    evidence["os"] = os_answers
    findings = _judge(answers, os_answers, resolvers, names, allowed, float(opts["slow_ms"]))
    return _result(evidence, findings)


def _judge(answers: list[dict[str, Any]], os_answers: list[dict[str, Any]], resolvers: list[str],
           names: list[str], allowed: list[Any], slow_ms: float) -> list[Finding]:
    findings: list[Finding] = []

    def add(fid: str, message: str, **ev: Any) -> None:
        findings.append(Finding(fid, SEVERITY[fid], message, ev, hint=HINTS[fid]))

    good_a: dict[str, dict[str, set[str]]] = {}  # name -> resolver -> A/AAAA addresses
    for r in resolvers:
        mine = [a for a in answers if a["resolver"] == r]
        errors = [a for a in mine if a["error"]]
        if errors and len(errors) == len(mine):
            add("dns-timeout", f"The resolver {r} does not answer ({errors[0]['error']}).",
                resolver=r, error=errors[0]["error"])
            continue
        by_rcode: dict[str, list[str]] = {}
        for a in mine:
            if a["rcode"] and a["rcode"] != "NOERROR":
                by_rcode.setdefault(a["rcode"], []).append(a["name"])
        for rcode, fid in (("REFUSED", "dns-refused"), ("SERVFAIL", "dns-servfail"),
                           ("NXDOMAIN", "dns-nxdomain")):
            if rcode in by_rcode:
                failed = sorted(set(by_rcode[rcode]))
                add(fid, f"The resolver {r} answers {rcode} for {', '.join(failed)}.",
                    resolver=r, names=failed)
        a_ok = [a for a in mine if a["rcode"] == "NOERROR" and a["type"] == "A"]
        empty = sorted({a["name"] for a in a_ok if not a["addresses"]})
        if empty:
            add("dns-empty", f"The resolver {r} returns no IPv4 address for {', '.join(empty)}.",
                resolver=r, names=empty)
        sunk = sorted({(a["name"], ip) for a in mine if a["rcode"] == "NOERROR"
                       for ip in a.get("addresses", []) if is_sinkhole(ip, allowed)})
        if sunk:
            add("dns-sinkhole", f"The resolver {r} answers Zoom's names with blocking or private "
                f"addresses: {', '.join(f'{n} -> {ip}' for n, ip in sunk)}.",
                resolver=r, answers=[{"name": n, "address": ip} for n, ip in sunk])
        slow = [a for a in mine if a["ms"] is not None and a["ms"] > slow_ms]
        if slow:
            worst = max(slow, key=lambda a: a["ms"])
            add("dns-slow", f"The resolver {r} is slow: up to {worst['ms']:.0f} ms "
                f"(threshold {slow_ms:.0f} ms).", resolver=r, max_ms=worst["ms"],
                threshold_ms=slow_ms)
        for a in mine:
            if a["rcode"] == "NOERROR" and a.get("addresses"):
                good_a.setdefault(a["name"], {}).setdefault(r, set()).update(a["addresses"])

    disagree = [n for n, per in good_a.items() if len(per) > 1 and not set.intersection(*per.values())]
    if disagree:
        add("dns-resolvers-disagree", f"Resolvers give unrelated answers for {', '.join(disagree)}.",
            names=disagree, answers={n: {r: sorted(v) for r, v in good_a[n].items()} for n in disagree})

    for o in os_answers:
        dns_addrs = set().union(*good_a.get(o["name"], {}).values()) if good_a.get(o["name"]) else set()
        if o["addresses"] and dns_addrs and not set(o["addresses"]) & dns_addrs:
            add("dns-hosts-override", f"This host resolves {o['name']} to {', '.join(o['addresses'])}, "
                f"but DNS says {', '.join(sorted(dns_addrs))}: the hosts file (or a local agent) "
                "overrides DNS.", name=o["name"], os_addresses=o["addresses"], dns=sorted(dns_addrs))
    return findings


def _result(evidence: dict[str, Any], findings: list[Finding]) -> Result:
    fails = [f for f in findings if f.severity == Severity.FAIL]
    warns = [f for f in findings if f.severity == Severity.WARN]
    if fails:
        return Result(Status.FAIL, fails[0].id, fails[0].message, evidence, findings)
    if warns:
        return Result(Status.WARN, warns[0].id, warns[0].message, evidence, findings)
    n = len(evidence.get("names", []))
    return Result(Status.PASS, "ok", f"{n} Zoom name(s) resolve through "
                  f"{len(evidence.get('resolvers', []))} resolver(s)", evidence, findings)


PROBE = Probe(
    id="dns",
    title="DNS resolution of Zoom's names",
    run=run,
    timeout_s=4.0,
    defaults=DEFAULTS,
    description="Resolves Zoom's names through each resolver and the OS: timeouts, REFUSED, "
                "SERVFAIL, NXDOMAIN, sinkholes, hosts-file overrides, slow or disagreeing resolvers.",
)
