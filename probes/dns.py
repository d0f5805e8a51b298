"""dns: can this room resolve Zoom's names, through which resolver, how fast, and honestly?

Resolves Zoom's names through each resolver and the OS: timeouts, REFUSED, SERVFAIL, NXDOMAIN,
sinkholes, hosts-file overrides, slow or disagreeing resolvers.

Checks: every name in ``names`` (zoom.us, www.zoom.us, the client's API and web hosts, a
zone-controller style name), for every record type in ``types`` (A, AAAA), through every
configured resolver separately (resolv.conf, the Windows registry, macOS ``scutil --dns``;
or the ``resolvers`` option), and through the OS path (getaddrinfo, which reads the hosts file
first), plus the hosts file itself.
How: one dnspython query per (resolver, name, type), all in parallel threads, each bounded by
``lifetime`` and the probe's deadline, so a dead resolver costs one timeout, not one per name.
The rcode is read from the response itself, so a silent server (timeout), REFUSED, SERVFAIL,
NXDOMAIN and an empty NOERROR answer are told apart.
Concludes: a name is usable when some resolver returns a public address for it (or an address
inside ``allow_networks``). Each fault gets its own finding; it is a failure when it leaves a
name unusable and a warning when another resolver still answers. NXDOMAIN is never read as
"DNS works": some networks without internet answer NXDOMAIN instantly. Addresses that are not
globally routable (0.0.0.0, 127/8, RFC 1918, CGNAT, documentation ranges) for public names are a
sinkhole (a DNS filter or captive portal) unless ``allow_networks`` says they are legitimate
(split-horizon DNS).
Every query outcome is judged: a local refusal to send (EPERM: this host's firewall) and no
route (ENETUNREACH, EHOSTUNREACH) are findings of their own, not silence. The OS path must agree:
a name DNS resolves but getaddrinfo (what Zoom uses) cannot is a failure.
PASS proves: every probed name resolved to a usable address through at least one resolver,
and (with ``os_lookup``) getaddrinfo resolved it too; ``evidence.proof`` names the answers.
Silence is a measurement: every query waits ``lifetime``, planned inside the time left
(``Context.plan``: at most 80% of it, so a 2 s check waits 1.6 s and still concludes), and a
resolver silent for that whole planned wait is ``dns-timeout`` naming the seconds waited. Only a
wait the deadline left too short to judge (``silence_measured``) proves nothing, and a name left
unproven that way makes the result ``error``/``not-measured``, never PASS.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import re
import socket
import statistics
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from roomprobe.core import threads
from roomprobe.core.errors import UsageError
from roomprobe.core.probe import Context, Finding, Probe, Result, Severity, Status, described, silence_measured
from roomprobe.host import dnsconf


@dataclass(frozen=True)
class Options:
    """The dns probe's options: ``[probes.dns]`` in the config file, ``--set``."""

    # zoom.us and its web host; the client's API and web (meeting) hosts. A zone-controller
    # name belongs here too, but none could be verified against live DNS from where this was
    # written, and a wrong default would raise a false dns-nxdomain on every room: add the
    # one your rooms use with [probes.dns] names = [...].
    names: tuple[str, ...] = ("zoom.us", "www.zoom.us", "api.zoom.us", "us04web.zoom.us")
    types: tuple[str, ...] = ("A", "AAAA")
    resolvers: tuple[str, ...] = ()  # empty: the system's resolvers; else "ADDR" or "ADDR#PORT"
    lifetime: float = 2.0  # seconds per query (planned inside the probe's deadline: Context.plan)
    slow_ms: int = 300  # an answer slower than this is slow
    # CIDRs whose addresses are legitimate answers (split-horizon DNS, a lab), not a sinkhole.
    allow_networks: tuple[str, ...] = ()
    os_lookup: bool = True  # also resolve through getaddrinfo (hosts file + OS resolver)

RECORD_TYPES = {"A": socket.AF_INET, "AAAA": socket.AF_INET6}
# How a socket error reads: "blocked" is a local refusal to send (a firewall on this host).
ERRNO_OUTCOME = {errno.ENETUNREACH: "unreachable", errno.EHOSTUNREACH: "unreachable",
                 errno.ECONNREFUSED: "unreachable", getattr(errno, "EHOSTDOWN", -1): "unreachable",
                 errno.EPERM: "blocked", errno.EACCES: "blocked"}
# Outcomes that measured nothing: the deadline left the wait too short to judge (silence_measured).
UNFINISHED = "unfinished"
NOT_ANSWERS = ("timeout", "error", "unreachable", "blocked", UNFINISHED)  # no response arrived
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")

# finding id -> (message template, hint). {what} is a list like "zoom.us (A) via 198.51.100.1".
TEXTS: dict[str, tuple[str, str]] = {
    "dns-no-resolver": ("No DNS resolver is configured ({why}): Zoom's names cannot be resolved "
                        "by DNS.", "Configure DNS servers on the room (DHCP or static) and check "
                                   "they answer."),
    "dns-scoped-only": ("DNS: {why}.",
                        "The VPN client installed its DNS servers for its own interface only: "
                        "fix its DNS setting (servers as the default resolver, or as "
                        "supplemental for its domains with the LAN resolver kept), or disconnect "
                        "it; 'scutil --dns' must show a nameserver under resolver #1."),
    "dns-timeout": ("DNS resolver(s) {resolvers} did not answer: silent for {waited} s, the "
                    "probe's whole wait ({what}).",
                    "Check the DNS server is up and that UDP/TCP 53 to it is allowed; "
                    "remove dead servers from the room's DNS settings."),
    "dns-refused": ("DNS resolver(s) {resolvers} refused to answer ({what}).",
                    "Allow this device's subnet on the DNS server (recursion/ACL), or point the "
                    "room at a resolver that serves it."),
    "dns-servfail": ("DNS resolver(s) {resolvers} failed (SERVFAIL) resolving {what}.",
                     "Check the resolver's upstream servers and DNSSEC validation; try another "
                     "resolver."),
    "dns-nxdomain": ("DNS resolver(s) {resolvers} say Zoom names do not exist (NXDOMAIN: {what}); "
                     "a DNS filter, a broken internal zone or a network without internet.",
                     "Allow Zoom's domains in the DNS filter, or fix the internal zone that "
                     "shadows zoom.us; check the network has internet access."),
    "dns-empty": ("DNS resolver(s) {resolvers} answer {what} with no address at all.",
                  "Check for a DNS filter or an internal zone that shadows Zoom's names with "
                  "empty records."),
    "dns-sinkhole": ("DNS resolver(s) {resolvers} answer Zoom names with non-public addresses "
                     "({what}): a DNS filter or captive portal (sinkhole).",
                     "Allow Zoom's domains in the DNS filter's policy for the room, or sign in "
                     "to the captive portal; if the addresses are a legitimate internal path, "
                     "list them in dns.allow_networks."),
    "dns-hosts-override": ("The hosts file / OS resolver pins Zoom names to fixed addresses that "
                           "DNS does not give ({what}).",
                           "Remove the Zoom entries from the hosts file ({path}) so DNS decides."),
    "dns-slow": ("DNS answers are slow: {what} (threshold {slow_ms} ms).",
                 "Use a closer or faster resolver; check the path to the DNS server for loss."),
    "dns-unreachable": ("DNS resolver(s) {resolvers} cannot be reached: {errors} ({what}).",
                        "Check this device's routes and gateway to the DNS server (no route means "
                        "no gateway or a wrong subnet), or configure a DNS server it can reach."),
    "dns-blocked-locally": ("This host refuses to send DNS queries to {resolvers} ({errors}): a local "
                            "firewall or security software blocks them ({what}).",
                            "Allow outbound UDP and TCP 53 to the DNS servers in this host's firewall "
                            "or security software."),
    "dns-query-error": ("DNS queries to {resolvers} failed: {errors} ({what}).",
                        "Check the DNS server's logs and configuration; try another resolver."),
    "dns-os-fails": ("The OS resolver (getaddrinfo, which Zoom uses) cannot resolve {what} although "
                     "DNS answers it: {errors}.",
                     "Check the OS name service setup: the hosts line of /etc/nsswitch.conf, "
                     "systemd-resolved, the Windows DNS Client service or a VPN's DNS settings."),
    "dns-os-timeout": ("The OS resolver (getaddrinfo) gave no answer for {what} within {waited} s "
                       "although DNS answers it.",
                       "Remove dead or slow servers from the room's DNS settings (the OS asks them "
                       "first and waits), then check again."),
    "dns-resolvers-disagree": ("The configured resolvers give different answers for {what}, so "
                               "connections work only with some of them.",
                               "Make every configured resolver give the same answers for Zoom's "
                               "names (remove or fix the odd one out)."),
}


# -- options ------------------------------------------------------------------------------------

def check_options(opts: Options) -> None:
    """Refuse bad option values up front (one clear line, exit 3), before any query runs."""
    names = opts.names
    if not isinstance(names, (list, tuple)) or not names:
        raise UsageError("dns.names must be a non-empty list of host names, e.g. zoom.us,www.zoom.us")
    for name in names:
        labels = str(name).lower().rstrip(".").split(".")
        if not all(_LABEL.match(label) for label in labels) or len(str(name)) > 253:
            raise UsageError(f"dns.names: {name!r} is not a valid host name")
    types = opts.types
    if not isinstance(types, (list, tuple)) or not types or any(str(t).upper() not in RECORD_TYPES for t in types):
        raise UsageError(f"dns.types {types!r}: give one or more of A, AAAA")
    for spec in opts.resolvers or []:
        try:
            dnsconf.parse_resolver_spec(str(spec))
        except ValueError as exc:
            raise UsageError(f"dns.resolvers: {exc}") from None
    for cidr in opts.allow_networks or []:
        try:
            ipaddress.ip_network(str(cidr), strict=False)
        except ValueError:
            raise UsageError(f"dns.allow_networks: {cidr!r} is not a CIDR like 10.0.0.0/8") from None
    for key in ("lifetime", "slow_ms"):
        if float(getattr(opts, key)) <= 0:
            raise UsageError(f"dns.{key} must be a positive number, got {getattr(opts, key)!r}")


# -- measuring ----------------------------------------------------------------------------------

def query(server: str, port: int, name: str, rdtype: str, timeout: float) -> dict[str, Any]:
    """One recursive query, over UDP (TCP if truncated): outcome, rcode, answers, latency.

    outcome is ok | empty | nxdomain | servfail | refused | rcode-<x> | timeout | unreachable
    (no route, ICMP) | blocked (EPERM/EACCES: this host refuses to send) | error.
    """
    import dns.exception
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdatatype

    msg = dns.message.make_query(name, rdtype)
    t0 = time.monotonic()
    out: dict[str, Any] = {"rcode": None, "answers": []}
    try:
        resp, tcp = dns.query.udp_with_fallback(msg, server, timeout=timeout, port=port)
    except dns.exception.Timeout:
        return {**out, "outcome": "timeout", "ms": round((time.monotonic() - t0) * 1000, 1)}
    except (OSError, dns.exception.DNSException) as exc:
        code = exc.errno if isinstance(exc, OSError) else None
        return {**out, "outcome": ERRNO_OUTCOME.get(code, "error") if code else "error",
                "error": f"{type(exc).__name__}: {exc}", "errno": errno.errorcode.get(code or 0),
                "ms": round((time.monotonic() - t0) * 1000, 1)}
    ms = round((time.monotonic() - t0) * 1000, 1)
    rcode = dns.rcode.to_text(resp.rcode())
    want = dns.rdatatype.from_text(rdtype)
    answers = sorted({rr.to_text() for rrset in resp.answer if rrset.rdtype == want for rr in rrset})
    outcome = {"NOERROR": "ok" if answers else "empty", "NXDOMAIN": "nxdomain",
               "SERVFAIL": "servfail", "REFUSED": "refused"}.get(rcode, f"rcode-{rcode.lower()}")
    return {"outcome": outcome, "rcode": rcode, "answers": answers, "ms": ms, "tcp": bool(tcp)}


def os_lookup(name: str, rdtype: str) -> dict[str, Any]:
    """getaddrinfo for one family: what applications (and Zoom) actually get."""
    t0 = time.monotonic()
    try:
        infos = socket.getaddrinfo(name, None, RECORD_TYPES[rdtype], socket.SOCK_STREAM)
    except socket.gaierror as exc:
        codes = {socket.EAI_NONAME: "nxdomain", socket.EAI_AGAIN: "temporary-failure",
                 getattr(socket, "EAI_NODATA", -9999): "empty"}
        return {"outcome": codes.get(exc.errno, "error"), "error": str(exc), "answers": [],
                "ms": round((time.monotonic() - t0) * 1000, 1)}
    except OSError as exc:
        return {"outcome": "error", "error": str(exc), "answers": [],
                "ms": round((time.monotonic() - t0) * 1000, 1)}
    answers = sorted({str(i[4][0]).split("%")[0] for i in infos})
    return {"outcome": "ok" if answers else "empty", "answers": answers,
            "ms": round((time.monotonic() - t0) * 1000, 1)}


def run_parallel(jobs: Mapping[Hashable, Callable[[], dict[str, Any]]], ctx: Context) -> dict[Hashable, Any]:
    """Every job at once (core.threads.run_all); what finished before the deadline, by key.

    A crashed job is an error outcome: a bug in one query must not lose the others."""
    return {key: o.value if o.error is None else
            {"outcome": "error", "error": f"{type(o.error).__name__}: {o.error}", "answers": []}
            for key, o in threads.run_all(jobs, ctx.deadline - 0.1, "dns-query").items() if o.done}


# -- judging ------------------------------------------------------------------------------------

def is_suspicious(addr: str, allowed: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """True for an address a public Zoom name should never resolve to (sinkhole, block page)."""
    try:
        ip = ipaddress.ip_address(addr.split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if any(ip.version == net.version and ip in net for net in allowed):
        return False
    return not ip.is_global


def _fmt(items: list[dict[str, Any]], limit: int = 4) -> str:
    parts = [f"{i['name']} ({i['type']})" + (f" via {i['resolver']}" if i.get("resolver") else "")
             for i in items[:limit]]
    more = len(items) - limit
    return ", ".join(parts) + (f" and {more} more" if more > 0 else "")


@dataclass
class _Judged:
    """The findings so far, and what every finding's text may name (TEXTS' placeholders)."""

    allowed: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
    usable: dict[str, bool]  # name -> some resolver gave a real (non-sinkhole) address
    slow_ms: float
    lifetime: float
    hosts_file: str
    findings: list[Finding]

    def add(self, fid: str, items: list[dict[str, Any]], fail: bool, evidence: dict[str, Any],
            **fmt: Any) -> None:
        resolvers_txt = ", ".join(sorted({str(i.get("resolver")) for i in items if i.get("resolver")}))
        msg, hint = TEXTS[fid]
        waits = [float(i["waited_s"]) for i in items if i.get("waited_s") is not None]
        values = {"what": _fmt(items), "resolvers": resolvers_txt, "lifetime": self.lifetime,
                  "waited": f"{min(waits):g}" if waits else f"{self.lifetime:g}",
                  "slow_ms": int(self.slow_ms), "path": self.hosts_file, **fmt}
        self.findings.append(Finding(fid, Severity.FAIL if fail else Severity.WARN, msg.format(**values),
                                     evidence, hint=hint.format(**values)))

    def add_queries(self, fid: str, items: list[dict[str, Any]], **fmt: Any) -> None:
        """A finding about failed queries: FAIL when some name they ask got no usable answer."""
        affected = sorted({i["name"] for i in items})
        self.add(fid, items, any(not self.usable[n] for n in affected),
                 {"queries": items, "names_unresolvable": [n for n in affected if not self.usable[n]]},
                 **fmt)


def analyse(resolvers: list[dict[str, Any]], queries: list[dict[str, Any]], os_results: list[dict[str, Any]],
            hosts: dict[str, list[dict[str, Any]]], names: list[str], opts: Options,
            no_resolver_why: str | None = None, hosts_file: str = "") -> list[Finding]:
    """Pure judgement over the measurements (unit-testable): the findings, severest first.

    A failure is FAIL when a probed name got no usable answer from any resolver, WARN when
    another resolver covered for it; then the OS path, empty answers, sinkholes, hosts-file
    overrides, slow answers and resolvers that disagree, each its own finding."""
    allowed = [ipaddress.ip_network(str(c), strict=False) for c in opts.allow_networks or []]

    def good(q: dict[str, Any]) -> bool:
        return q["outcome"] == "ok" and any(not is_suspicious(a, allowed) for a in q["answers"])

    usable = {n: any(good(q) for q in queries if q["name"] == n) for n in names}
    judged = _Judged(allowed, usable, float(opts.slow_ms), opts.lifetime, hosts_file, [])
    if not resolvers:
        fid = "dns-scoped-only" if dnsconf.scoped_only(no_resolver_why) else "dns-no-resolver"
        judged.findings.append(Finding(fid, Severity.FAIL,
                                       TEXTS[fid][0].format(why=no_resolver_why or "none found"),
                                       {"why": no_resolver_why}, hint=TEXTS[fid][1]))
    _judge_failed_answers(judged, queries)
    _judge_local_errors(judged, queries)
    _judge_os_path(judged, os_results)
    _judge_empty_and_sinkholes(judged, queries)
    _judge_overrides(judged, queries, os_results, hosts, names)
    _judge_slow(judged, queries)
    _judge_disagreement(judged, queries, names)
    judged.findings.sort(key=lambda f: f.severity != Severity.FAIL)
    return judged.findings


def _judge_failed_answers(judged: _Judged, queries: list[dict[str, Any]]) -> None:
    """What resolvers answered when they gave no address: silence, refusal, SERVFAIL, NXDOMAIN."""
    for fid, outcome in (("dns-timeout", "timeout"), ("dns-refused", "refused"),
                         ("dns-servfail", "servfail"), ("dns-nxdomain", "nxdomain")):
        items = [{k: q.get(k) for k in ("resolver", "name", "type", "rcode", "ms", "waited_s")}
                 for q in queries if q["outcome"] == outcome]
        if items:
            judged.add_queries(fid, items)


def _judge_local_errors(judged: _Judged, queries: list[dict[str, Any]]) -> None:
    """Local errors: no route / ICMP, this host's firewall, anything else (odd rcodes included)."""
    def failed_as(q: dict[str, Any]) -> str | None:
        if q["outcome"] in ("unreachable", "blocked"):
            return {"unreachable": "dns-unreachable", "blocked": "dns-blocked-locally"}[q["outcome"]]
        if q["outcome"] == "error" or q["outcome"].startswith("rcode-"):
            return "dns-query-error"
        return None

    for fid in ("dns-blocked-locally", "dns-unreachable", "dns-query-error"):
        bad = [q for q in queries if failed_as(q) == fid]
        if bad:
            items = [{k: q.get(k) for k in ("resolver", "name", "type", "rcode", "ms", "errno", "error")}
                     for q in bad]
            errors = ", ".join(sorted({str(q.get("errno") or q.get("rcode") or q.get("error")) for q in bad}))
            judged.add_queries(fid, items, errors=errors)


def _judge_os_path(judged: _Judged, os_results: list[dict[str, Any]]) -> None:
    """The OS path (getaddrinfo) must agree: a name DNS resolves but the OS cannot is what Zoom sees."""
    os_by_name: dict[str, list[dict[str, Any]]] = {}
    for o in os_results:
        os_by_name.setdefault(o["name"], []).append(o)
    os_fail: list[dict[str, Any]] = []
    os_slow: list[dict[str, Any]] = []
    for n, results in os_by_name.items():
        if not judged.usable.get(n) or any(o["outcome"] == "ok" and o["answers"] for o in results):
            continue  # DNS itself fails for n (its own finding), or the OS resolved it
        if any(o["outcome"] == "timeout" for o in results):
            waits = [o["waited_s"] for o in results if o.get("waited_s") is not None]
            os_slow.append({"name": n, "type": "/".join(o["type"] for o in results),
                            **({"waited_s": min(waits)} if waits else {})})
        elif all(o["outcome"] not in ("timeout", UNFINISHED) for o in results):
            os_fail.append({"name": n, "type": "/".join(o["type"] for o in results),
                            "outcomes": {o["type"]: o.get("error") or o["outcome"] for o in results}})
    if os_fail:
        judged.add("dns-os-fails", os_fail, True, {"lookups": os_fail},
                   errors="; ".join(sorted({str(v) for i in os_fail for v in i["outcomes"].values()})))
    if os_slow:
        judged.add("dns-os-timeout", os_slow, False, {"lookups": os_slow})


def _judge_empty_and_sinkholes(judged: _Judged, queries: list[dict[str, Any]]) -> None:
    """Empty: a resolver answered NOERROR with no address for every type asked about a name (one
    empty type, typically AAAA, is normal). Sinkhole: an address no Zoom name resolves to."""
    by_rn: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for q in queries:
        by_rn.setdefault((q["resolver"], q["name"]), []).append(q)
    empty: list[dict[str, Any]] = [
        {"resolver": r, "name": n, "type": "/".join(q["type"] for q in qs), "ms": None, "rcode": "NOERROR"}
        for (r, n), qs in by_rn.items() if all(q["outcome"] == "empty" for q in qs)]
    if empty:
        judged.add("dns-empty", empty, any(not judged.usable[i["name"]] for i in empty), {"queries": empty})

    allowed = judged.allowed
    sink = [{"resolver": q["resolver"], "name": q["name"], "type": q["type"],
             "addresses": [a for a in q["answers"] if is_suspicious(a, allowed)]}
            for q in queries if q["outcome"] == "ok" and any(is_suspicious(a, allowed) for a in q["answers"])]
    if sink:
        judged.add("dns-sinkhole", sink, any(not judged.usable[i["name"]] for i in sink),
                   {"answers": sink, "allow_networks": [str(n) for n in allowed]})


def _judge_overrides(judged: _Judged, queries: list[dict[str, Any]], os_results: list[dict[str, Any]],
                     hosts: dict[str, list[dict[str, Any]]], names: list[str]) -> None:
    """Hosts-file override: an entry for a probed name, or an OS answer that DNS never gave."""
    dns_addrs: dict[tuple[str, str], set[str]] = {}
    for q in queries:
        if q["outcome"] == "ok":
            dns_addrs.setdefault((q["name"], q["type"]), set()).update(q["answers"])
    overrides: list[dict[str, Any]] = []
    for n in names:
        for entry in hosts.get(n.lower(), []):
            overrides.append({"name": n, "type": "hosts", "address": entry["address"],
                              "source": f"hosts file line {entry['line']}"})
    pinned = {(o["name"], o["address"]) for o in overrides}
    for o in os_results:
        seen = dns_addrs.get((o["name"], o["type"]))
        if o["outcome"] == "ok" and seen and not set(o["answers"]) & seen:
            overrides.extend({"name": o["name"], "type": o["type"], "address": a, "source": "OS resolver",
                              "dns_answers": sorted(seen)}
                             for a in o["answers"] if (o["name"], a) not in pinned)
    if overrides:
        judged.add("dns-hosts-override", overrides,
                   any(is_suspicious(o["address"], judged.allowed) for o in overrides),
                   {"overrides": overrides, "hosts_file": judged.hosts_file},
                   what=", ".join(f"{o['name']} -> {o['address']}" for o in overrides[:4]))


def _judge_slow(judged: _Judged, queries: list[dict[str, Any]]) -> None:
    """Answers slower than ``slow_ms``, per resolver (a warning: the name still resolved)."""
    slow = [q for q in queries if q.get("ms") is not None and q["outcome"] not in NOT_ANSWERS
            and q["ms"] > judged.slow_ms]
    if slow:
        per: dict[str, list[float]] = {}
        for q in slow:
            per.setdefault(q["resolver"], []).append(q["ms"])
        stats = [{"resolver": r, "slow_queries": len(v), "max_ms": max(v), "median_ms": statistics.median(v)}
                 for r, v in sorted(per.items())]
        judged.add("dns-slow", [], False, {"resolvers": stats, "slow_ms": judged.slow_ms},
                   what=", ".join(f"{s['resolver']} up to {s['max_ms']:.0f} ms" for s in stats))


def _judge_disagreement(judged: _Judged, queries: list[dict[str, Any]], names: list[str]) -> None:
    """Resolvers that answer one question differently: one says the name exists and another
    not, or their addresses share nothing (split-horizon DNS, or one of them is lying)."""
    disagree = []
    for n in names:
        for t in sorted({q["type"] for q in queries}):
            answered = {q["resolver"]: q for q in queries if q["name"] == n and q["type"] == t
                        and q["outcome"] in ("ok", "nxdomain", "empty")}
            if len(answered) < 2:
                continue
            oks = [set(q["answers"]) for q in answered.values() if q["outcome"] == "ok"]
            kinds = {q["outcome"] for q in answered.values()}
            split = "ok" in kinds and len(kinds) > 1
            disjoint = any(not (a & b) for i, a in enumerate(oks) for b in oks[i + 1:])
            if split or disjoint:
                disagree.append({"name": n, "type": t, "answers": {
                    r: (q["answers"] if q["outcome"] == "ok" else q["outcome"].upper())
                    for r, q in answered.items()}})
    if disagree:
        judged.add("dns-resolvers-disagree", disagree, False, {"disagreements": disagree})


def per_resolver(queries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A one-line-per-resolver digest of the queries: count per outcome and the slowest answer."""
    out: dict[str, dict[str, Any]] = {}
    for q in queries:
        row = out.setdefault(q["resolver"], {})
        row[q["outcome"]] = row.get(q["outcome"], 0) + 1
        if q.get("ms") is not None and q["outcome"] not in NOT_ANSWERS:
            row["max_ms"] = max(row.get("max_ms", 0.0), q["ms"])
    return out


# -- the probe ----------------------------------------------------------------------------------

def _label(r: dict[str, Any]) -> str:
    return r["address"] if r["port"] == 53 else f"{r['address']}#{r['port']}"


def run(ctx: Context) -> Result:
    opts = ctx.options
    check_options(opts)
    names = [str(n).lower().rstrip(".") for n in opts.names]
    types = [str(t).upper() for t in opts.types]
    lifetime = float(opts.lifetime)
    why: str | None = None
    if opts.resolvers:
        resolvers = [dnsconf.parse_resolver_spec(str(s)) for s in opts.resolvers]
    else:
        resolvers, why = dnsconf.system_resolvers()

    # One wait for every query, planned inside the time left so the probe can still conclude
    # after a silent resolver (a 2 s check: 1.6 s). Silence for it is measured; only a wait the
    # deadline left too short to judge (silence_measured) proves nothing.
    planned = ctx.plan(lifetime)
    t0 = time.monotonic()
    queries, os_results = _ask_all(ctx, resolvers, names, types, planned, lifetime, bool(opts.os_lookup))

    hpath = dnsconf.hosts_path()
    try:
        hosts = dnsconf.parse_hosts(hpath.read_text(errors="replace"))
        hosts_note = None
    except OSError as exc:
        hosts, hosts_note = {}, f"{exc.strerror or exc}"
    findings = analyse(resolvers, queries, os_results, hosts, names, opts, why, str(hpath))

    evidence: dict[str, Any] = {
        "resolvers": [{**r, "label": _label(r)} for r in resolvers],
        "resolvers_from": "config" if opts.resolvers else "system",
        "names": names, "types": types, "lifetime_s": lifetime, "waited_s": round(planned, 2),
        "slow_ms": opts.slow_ms,
        "allow_networks": [str(c) for c in opts.allow_networks or []],
        "elapsed_ms": round((time.monotonic() - t0) * 1000, 1),
        "queries": queries, "os": os_results,
        "hosts_file": {"path": str(hpath), "error": hosts_note,
                       "entries": {n: hosts[n] for n in names if n in hosts}},
    }
    evidence["per_resolver"] = per_resolver(queries)
    if why:
        evidence["no_resolver_why"] = why
    return verdict(evidence, findings, names, resolvers, bool(opts.os_lookup))


def _ask_all(ctx: Context, resolvers: list[dict[str, Any]], names: list[str], types: list[str],
             planned: float, lifetime: float, with_os: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every resolver x name x type (and the OS path) at once, each waiting ``planned`` seconds:
    (queries, os_results), one row per question whether it was answered or not."""
    def timed_query(r: dict[str, Any], n: str, t: str) -> dict[str, Any]:
        wait = max(0.05, min(planned, ctx.remaining() - 0.05))
        res = query(r["address"], r["port"], n, t, wait)
        if res["outcome"] == "timeout":
            res["waited_s"] = round(wait, 2)
            if not silence_measured(wait, lifetime):
                # The deadline, not the resolver, ended this wait: too short to prove anything.
                res.update(outcome=UNFINISHED,
                           note=f"the check's deadline left {wait:.2f} s for a wait of dns.lifetime "
                                f"{lifetime} s: too short to call the silence a measurement")
        return res

    jobs: dict[Hashable, Callable[[], dict[str, Any]]] = {}
    for r in resolvers:
        for n in names:
            for t in types:
                jobs[("dns", _label(r), n, t)] = functools.partial(timed_query, r, n, t)
    if with_os:
        for n in names:
            for t in types:
                jobs[("os", "", n, t)] = functools.partial(os_lookup, n, t)
    t0 = time.monotonic()
    done = run_parallel(jobs, ctx)
    waited = time.monotonic() - t0
    # A job still running at the deadline: silence for the full lifetime is a measured timeout;
    # anything shorter measured nothing.
    unfinished: dict[str, Any] = {"outcome": "timeout" if silence_measured(waited, lifetime) else UNFINISHED,
                                  "rcode": None,
                  "answers": [], "ms": None, "waited_s": round(waited, 2),
                  "note": f"no answer within {waited:.2f} s, when the probe's deadline came"}
    queries, os_results = [], []
    for key in jobs:
        kind, res_label, n, t = cast("tuple[str, str, str, str]", key)  # the keys built above
        res = done.get(key, unfinished)
        if kind == "dns":
            queries.append({"resolver": res_label, "name": n, "type": t, **res})
        else:
            os_results.append({"name": n, "type": t, **res})
    return queries, os_results


def verdict(evidence: dict[str, Any], findings: list[Finding], names: list[str],
            resolvers: list[dict[str, Any]], os_lookup: bool) -> Result:
    """The probe's status from its findings and its proof (the rule in roomprobe.core.probe).

    fail: a measured failure. error/not-measured: a name's answer was cut short by the deadline
    and nothing else explains it. warn: measured warnings only. pass: every name has a usable
    DNS answer and (with os_lookup) an OS answer, named in ``evidence.proof``.
    """
    queries, os_results = evidence["queries"], evidence["os"]
    allowed = [ipaddress.ip_network(str(c), strict=False)
               for c in evidence.get("allow_networks", [])]
    proof: dict[str, Any] = {}
    for n in names:
        good = [q for q in queries if q["name"] == n and q["outcome"] == "ok"
                and any(not is_suspicious(a, allowed) for a in q["answers"])]
        if not good:
            continue
        q = min(good, key=lambda x: x.get("ms") or 0.0)
        entry: dict[str, Any] = {"resolver": q["resolver"], "type": q["type"],
                                 "address": next(a for a in q["answers"] if not is_suspicious(a, allowed)),
                                 "ms": q.get("ms")}
        if os_lookup:
            os_ok = [o for o in os_results if o["name"] == n and o["outcome"] == "ok" and o["answers"]]
            if not os_ok:
                continue
            entry["os_address"] = os_ok[0]["answers"][0]
        proof[n] = entry
    unproven = [n for n in names if n not in proof]
    cut = sorted({f"{r.get('resolver') or 'OS'} {r['name']} ({r['type']})"
                  for r in [*queries, *os_results] if r["outcome"] == UNFINISHED and r["name"] in unproven})
    if findings and findings[0].severity == Severity.FAIL:
        worst = findings[0]
        more = f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""
        return Result(Status.FAIL, worst.id, worst.message + more, evidence, findings)
    if unproven and (cut or not findings):
        evidence["not_measured"] = cut
        what = ", ".join(cut[:4]) + (f" and {len(cut) - 4} more" if len(cut) > 4 else "")
        return Result.unmeasured(
            "not-measured", f"could not prove {', '.join(unproven)} resolve: "
            + (f"the check's deadline left too little time to judge silence from {what} "
               f"(dns.lifetime {evidence.get('lifetime_s')} s); run with a longer --timeout"
               if cut else "no usable answer and no fault measured"), evidence, findings)
    if findings:
        worst = findings[0]
        more = f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""
        return Result(Status.WARN, worst.id, worst.message + more, evidence, findings)
    ms = [q["ms"] for q in queries if q.get("ms") is not None]
    return Result.passed("resolved", f"{len(names)} names resolve through {len(resolvers)} resolver(s)"
                         + (" and the OS" if os_lookup else "")
                         + (f", slowest {max(ms):.0f} ms" if ms else ""), evidence, proof)


PROBE = Probe("dns", "DNS resolution of Zoom's names", run, timeout_s=3.0, options=Options, validate=check_options,
              description=described(__doc__))
