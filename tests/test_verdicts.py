"""Verdicts from proof (issue 13): PASS needs proof, no verdict is `error`, an incomplete run is
UNKNOWN (exit 3) unless a failure was measured. Unit tests over the contract, the report and the
verdict paths of interfaces, subnet, controller-port and dns; the lab tests measure the same
paths with real sockets (test_lab_verdicts.py). The AST check below holds every module in
probes/ to the rule (cloud, proxy, bandwidth and quality have their own verdict tests in
test_cloud_verdict.py, test_proxy_verdict.py, test_bandwidth_unit.py, test_quality_unit.py)."""

from __future__ import annotations

import ast
import time
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest
from reportkit import as_report
from roomprobe.probes import controller_port, dns, interfaces, subnet

from roomprobe.core.errors import ExitCode
from roomprobe.core.probe import Context, Finding, Probe, Result, Severity, Status, Targets
from roomprobe.core.runner import ProbeRun, is_complete
from roomprobe.report import build
from roomprobe.report.html import render_html
from roomprobe.report.markdown import render_markdown
from roomprobe.report.text import render_text

REPO = Path(__file__).resolve().parent.parent


# -- the contract ---------------------------------------------------------------------------

def test_pass_without_proof_is_refused():
    for empty in ({}, {"x": None}, {"x": []}, {"x": ""}):
        with pytest.raises(ValueError, match="without proof"):
            Result.passed("ok", "fine", {}, empty)
    r = Result.passed("ok", "fine", {"a": 1}, {"answer": "203.0.113.10"})
    assert r.status == Status.PASS and r.evidence["proof"] == {"answer": "203.0.113.10"}


def test_pass_with_a_warning_is_refused_but_info_rides_along():
    with pytest.raises(ValueError, match="warn/fail"):
        Result.passed("ok", "s", {}, {"x": 1}, [Finding("w", Severity.WARN, "m")])
    r = Result.passed("ok", "s", {}, {"x": 1}, [Finding("i", Severity.INFO, "m")])
    assert r.findings[0].id == "i"
    assert Result.unmeasured("deadline", "cut short", {}).status == Status.ERROR


def hand_made_passes(source: str) -> list[str]:
    """Every place ``source`` could make a PASS without ``Result.passed``, as "line: what".

    Flags any ``.PASS`` attribute (``Status.PASS``, an alias ``S.PASS``), ``Status(...)`` and
    ``Status[...]`` (a status from a value or a name), ``getattr(Status, ...)``, and the string
    ``"pass"`` handed to ``Result(...)`` as its status. Only roomprobe/core/probe.py may do these.
    """
    tree = ast.parse(source)
    status_names = {"Status"} | {a.asname for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                                 for a in n.names if a.name == "Status" and a.asname}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "PASS":
            out.append(f"{node.lineno}: .PASS")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in status_names:
                out.append(f"{node.lineno}: Status(...)")
            elif node.func.id == "getattr" and node.args and isinstance(node.args[0], ast.Name) \
                    and node.args[0].id in status_names:
                out.append(f"{node.lineno}: getattr(Status, ...)")
            elif node.func.id == "Result":
                first = node.args[0] if node.args else next(
                    (k.value for k in node.keywords if k.arg == "status"), None)
                if isinstance(first, ast.Constant) and str(first.value).lower() == "pass":
                    out.append(f"{node.lineno}: Result('pass', ...)")
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) \
                and node.value.id in status_names:
            out.append(f"{node.lineno}: Status[...]")
    return out


BAD_SAMPLES = [
    "from roomprobe.core.probe import Result, Status\nr = Result(Status.PASS, 'ok', 's')",
    "from roomprobe.core.probe import Status as S\nst = S.PASS",
    "from roomprobe.core.probe import Status\nst = Status('pass')",
    "from roomprobe.core.probe import Status\nst = Status['PASS']",
    "from roomprobe.core.probe import Status\nst = getattr(Status, 'PA' + 'SS')",
    "from roomprobe.core.probe import Result\nr = Result('pass', 'ok', 's')",
    "from roomprobe.core.probe import Result\nr = Result(status='PASS', reason='ok', summary='s')",
    "import roomprobe.core.probe as p\nr = p.Result(p.Status.PASS, 'ok', 's')",
]


@pytest.mark.parametrize("sample", BAD_SAMPLES)
def test_the_checker_catches_a_hand_made_pass(sample):
    assert hand_made_passes(sample), sample


def test_the_checker_lets_the_honest_ways_through():
    good = ("from roomprobe.core.probe import Result, Status\n"
            "a = Result.passed('ok', 's', {}, {'answer': '203.0.113.10'})\n"
            "b = Result(Status.FAIL, 'x', 's')\nc = Result.unmeasured('deadline', 's', {})\n"
            "d = 'pass'  # a word in a string is not a status\n")
    assert hand_made_passes(good) == []


def probe_modules() -> list[Path]:
    mods = sorted(p for p in (REPO / "probes").glob("*.py") if p.name != "__init__.py")
    assert len(mods) >= 9, mods  # the checker must see the probes, or it proves nothing
    return mods


def test_no_probe_builds_a_pass_by_hand():
    """The grep the issue asks for, over every module in probes/ (future ones included): a PASS
    is only ever built by Result.passed, which refuses an empty proof."""
    bad = {p.name: found for p in probe_modules() if (found := hand_made_passes(p.read_text()))}
    assert not bad, f"PASS built by hand (use Result.passed with a proof): {bad}"


@pytest.mark.parametrize("mod", ["interfaces", "subnet", "controller_port", "dns", "cloud", "proxy",
                                 "bandwidth", "quality"])
def test_every_probe_that_can_pass_passes_with_proof(mod):
    assert "Result.passed(" in (REPO / "probes" / f"{mod}.py").read_text()


# -- the run's status and exit code ---------------------------------------------------------

def _runs(*statuses: Status) -> list[ProbeRun]:
    out = []
    for i, st in enumerate(statuses):
        probe = Probe(id=f"p{i}", title="t", run=lambda ctx: None)  # type: ignore[arg-type,return-value]
        out.append(ProbeRun(probe, Result(st, "r", "s", {}), 0.1))
    return out


P, W, F, S, E = Status.PASS, Status.WARN, Status.FAIL, Status.SKIP, Status.ERROR


@pytest.mark.parametrize("statuses, complete, status, code", [
    ((P, P), True, "pass", ExitCode.OK),
    ((P, W), True, "warn", ExitCode.WARNING),
    ((P, F), True, "fail", ExitCode.CRITICAL),
    ((P, E), True, "unknown", ExitCode.UNKNOWN),       # a probe with no verdict: not OK
    ((W, E), True, "unknown", ExitCode.UNKNOWN),       # the unmeasured part may be worse than WARN
    ((F, E), True, "fail", ExitCode.CRITICAL),         # a measured failure stands
    ((P, P), False, "unknown", ExitCode.UNKNOWN),      # Ctrl-C
    ((F, P), False, "fail", ExitCode.CRITICAL),        # Ctrl-C after a measured failure
    ((S, S), True, "unknown", ExitCode.UNKNOWN),       # nothing measured is no PASS
    ((S, P), True, "pass", ExitCode.OK),
])
def test_status_precedence(statuses, complete, status, code):
    runs = _runs(*statuses)
    rep = build.build(runs=runs, complete=is_complete(runs, interrupted=not complete), targets=Targets(),
                      started_at=time.time(),
                      duration_s=0.5, host={"hostname": "h", "os": "Linux", "os_version": "x",
                                            "interfaces": [], "default_gateway": [],
                                            "raw_sockets": False})
    jsonschema.validate(rep.to_dict(), build.load_schema())
    assert rep.status == status and build.exit_code(rep) == code
    assert rep.complete is (complete and E not in statuses)
    for text in (render_text(rep), render_markdown(rep), render_html(rep)):
        assert status.upper() in text
    if status == "unknown" and E in statuses:
        assert "INCOMPLETE: p1: r" in render_text(rep)


def test_old_incomplete_reports_still_exit_unknown():
    assert build.exit_code(as_report({"status": "warn", "complete": False})) == ExitCode.UNKNOWN
    assert build.exit_code(as_report({"status": "pass", "complete": True})) == ExitCode.OK


# -- probes: fakes for the OS -----------------------------------------------------------------

def ctx(options=None, targets: Targets | None = None, seconds: float = 3.0) -> Context:
    return Context(targets=targets or Targets(), options=options, deadline=time.monotonic() + seconds,
                   privileged=False)


def iface(name, addrs, up=True, kind="wired"):
    return {"name": name, "kind": kind, "up": up, "mac": None,
            "addresses": [{"family": "ipv6" if ":" in a else "ipv4", "address": a, "prefixlen": 24}
                          for a in addrs]}


@pytest.mark.parametrize("ifaces, gws, status, reason", [
    ([iface("eth0", ["198.51.100.20"])], [{"family": "ipv4", "gateway": "198.51.100.1",
                                           "interface": "eth0"}], P, "ok"),
    ([iface("eth0", ["198.51.100.20"])], [], W, "no-default-gateway"),
    ([iface("eth0", ["169.254.7.7", "fe80::1"])], [{"family": "ipv4", "gateway": "169.254.0.1",
                                                     "interface": "eth0"}], F, "no-network"),
    ([iface("eth0", ["198.51.100.20"], up=False)], [], F, "no-network"),
    ([iface("lo", ["127.0.0.1"], kind="loopback")], [], F, "no-network"),
])
def test_interfaces_verdicts(monkeypatch, ifaces, gws, status, reason):
    monkeypatch.setattr(interfaces.osnet, "interfaces", lambda: ifaces)
    monkeypatch.setattr(interfaces.osnet, "default_gateways", lambda: gws)
    monkeypatch.setattr(interfaces.osnet, "raw_sockets", lambda: False)
    r = interfaces.run(ctx())
    assert (r.status, r.reason) == (status, reason)
    if status == P:
        assert r.evidence["proof"]["interfaces"] == {"eth0": ["198.51.100.20"]}
    if reason == "no-network" and "169.254.7.7" in str(ifaces):
        assert "link-local 169.254.7.7" in r.summary


def _subnet_env(monkeypatch, raw: bool, arp_answer: bool | None = None):
    on_link = {"interface": "eth0", "kind": "wired", "address": "198.51.100.30", "prefixlen": 25,
               "network": "198.51.100.0/25"}
    monkeypatch.setattr(subnet.osnet, "local_addresses", lambda: {"198.51.100.30"})
    monkeypatch.setattr(subnet.osnet, "interface_for_peer", lambda peer: on_link)
    monkeypatch.setattr(subnet.osnet, "raw_sockets", lambda: raw)
    monkeypatch.setattr(subnet, "arp_request", lambda *a: {
        "answered": bool(arp_answer), "mac": "02:00:00:00:00:14" if arp_answer else None,
        "tries": 1 if arp_answer else 3, "rtt_ms": 0.4 if arp_answer else None})
    opts = SimpleNamespace(arp_tries=3, arp_timeout=0.5)
    return ctx(opts, Targets(room="198.51.100.20", role="controller-side"))


def test_subnet_pass_says_what_it_proved(monkeypatch):
    r = subnet.run(_subnet_env(monkeypatch, raw=True, arp_answer=True))
    assert (r.status, r.reason) == (P, "same-subnet")
    assert r.evidence["proof"]["arp_mac"] == "02:00:00:00:00:14"
    r = subnet.run(_subnet_env(monkeypatch, raw=True, arp_answer=False))
    assert (r.status, r.reason) == (F, "peer-no-arp-reply")
    # Unprivileged: only the address arithmetic is proven, and the reason says so.
    r = subnet.run(_subnet_env(monkeypatch, raw=False))
    assert (r.status, r.reason) == (P, "same-subnet-arp-unchecked")
    assert "arp_mac" not in r.evidence["proof"] and r.evidence["proof"]["network"] == "198.51.100.0/25"
    assert [f.id for f in r.findings] == ["arp-skipped-unprivileged"]


# -- controller-port ------------------------------------------------------------------------

CP_OPTS = controller_port.Options()


def _controller(monkeypatch, attempt: dict, seconds: float = 5.0, neighbor=None) -> Result:
    monkeypatch.setattr(controller_port, "tcp_state", lambda addr, port, timeout, watch=0.0: dict(attempt))
    monkeypatch.setattr(controller_port.osnet, "interface_for_peer", lambda peer: None)
    monkeypatch.setattr(controller_port.osnet, "neighbor", lambda peer: neighbor)
    return controller_port.run(ctx(CP_OPTS, Targets(room="198.51.100.20", role="controller-side"),
                                   seconds))


@pytest.mark.parametrize("attempt, seconds, status, reason", [
    ({"state": "open", "error": None, "ms": 1.0}, 5.0, P, "open"),
    ({"state": "refused", "error": "ECONNREFUSED", "ms": 1.0}, 5.0, F, "port-refused"),
    ({"state": "unreachable", "error": "ENETUNREACH", "ms": 0.1}, 5.0, F, "port-unreachable"),
    ({"state": "filtered", "error": "timeout", "ms": 2500.0}, 5.0, F, "port-filtered"),
    ({"state": "filtered", "error": "timeout", "ms": 900.0}, 1.0, E, "deadline"),  # cut short
    ({"state": "error", "error": "EPERM", "ms": 0.1}, 5.0, E, "blocked-locally"),
    ({"state": "error", "error": "EADDRNOTAVAIL", "ms": 0.1}, 5.0, E, "connect-error"),
    # the handshake completed, then the peer dropped it: open (as nmap says), with a warning
    ({"state": "open", "error": None, "ms": 1.0, "after": "reset"}, 5.0, W, "port-open-dropped"),
    ({"state": "open", "error": None, "ms": 1.0, "after": "closed"}, 5.0, W, "port-open-dropped"),
    ({"state": "open", "error": None, "ms": 1.0, "after": "data"}, 5.0, P, "open"),
    # a firewall's ICMP reject (read from Linux's error queue): never unknown, never "no answer"
    ({"state": "filtered", "error": "EHOSTUNREACH", "ms": 0.3, "rejected": "admin-prohibited",
      "icmp": {"icmp": "admin-prohibited", "from": "198.51.100.20"},
      "detail": "rejected by a firewall: ICMP admin-prohibited from 198.51.100.20"}, 1.0, F,
     "port-rejected"),
])
def test_controller_side_verdicts(monkeypatch, attempt, seconds, status, reason):
    r = _controller(monkeypatch, attempt, seconds)
    assert (r.status, r.reason) == (status, reason)
    assert (r.status == P) == ("proof" in r.evidence)


def test_controller_side_timeout_with_no_neighbour_entry_is_a_local_block(monkeypatch):
    """On-link room, silence, and the OS never even asked ARP: nothing left this host."""
    attempt = {"state": "filtered", "error": "timeout", "ms": 2500.0}
    monkeypatch.setattr(controller_port, "tcp_state", lambda addr, port, timeout, watch=0.0: dict(attempt))
    monkeypatch.setattr(controller_port.osnet, "interface_for_peer", lambda peer: {"interface": "eth0"})
    for neigh, status, reason in (({"mac": None, "state": "none"}, E, "blocked-locally"),
                                  ({"mac": None, "state": "failed"}, F, "port-unreachable"),
                                  ({"mac": "02:00:00:00:00:14", "state": "reachable"}, F, "port-filtered"),
                                  (None, F, "port-filtered")):
        monkeypatch.setattr(controller_port.osnet, "neighbor", lambda peer, n=neigh: n)
        r = controller_port.run(ctx(CP_OPTS, Targets(room="198.51.100.20", role="controller-side")))
        assert (r.status, r.reason) == (status, reason), neigh


def test_controller_side_hostunreach_without_icmp_from_a_room_that_answered_arp(monkeypatch):
    """Windows/macOS: EHOSTUNREACH and no error queue to read. An ARP answer in the neighbour
    table proves the room is there: an ICMP reject, never "the room does not answer ARP"."""
    attempt = {"state": "unreachable", "error": "EHOSTUNREACH", "ms": 0.4}
    monkeypatch.setattr(controller_port, "tcp_state", lambda addr, port, timeout, watch=0.0: dict(attempt))
    monkeypatch.setattr(controller_port.osnet, "interface_for_peer", lambda peer: {"interface": "eth0"})
    for neigh, reason in (({"mac": "02:00:00:00:00:14", "state": "reachable"}, "port-rejected"),
                          ({"mac": None, "state": "failed"}, "port-unreachable")):
        monkeypatch.setattr(controller_port.osnet, "neighbor", lambda peer, n=neigh: n)
        r = controller_port.run(ctx(CP_OPTS, Targets(room="198.51.100.20", role="controller-side")))
        assert (r.status, r.reason) == (F, reason), neigh
        if reason == "port-rejected":
            assert "answered ARP" in r.findings[0].message and "does not say which ICMP" in r.summary


def _room(monkeypatch, socks, self_connect: dict | None, seconds: float = 5.0) -> Result:
    def listeners(port):
        if socks is None:
            raise PermissionError("access denied")
        return socks
    monkeypatch.setattr(controller_port, "listeners", listeners)
    monkeypatch.setattr(controller_port, "tcp_state", lambda addr, port, timeout, watch=0.0:
                        dict(self_connect or {}))
    room = "198.51.100.20" if self_connect is not None else None
    return controller_port.run(ctx(CP_OPTS, Targets(room=room, role="room"), seconds))


ZR = [{"address": "0.0.0.0", "pid": 42, "process": "ZoomRooms"}]


@pytest.mark.parametrize("socks, selfc, status, reason", [
    (ZR, {"state": "open", "error": None, "ms": 0.1}, P, "listening"),
    (ZR, {"state": "error", "error": "EPERM", "ms": 0.1}, F, "port-filtered"),  # own firewall
    (ZR, {"state": "refused", "error": "ECONNREFUSED", "ms": 0.1}, F, "port-refused"),
    ([], {"state": "refused", "error": "ECONNREFUSED", "ms": 0.1}, F, "port-not-listening"),
    ([{"address": "127.0.0.1", "pid": 42, "process": "ZoomRooms"}], None, F, "port-loopback-only"),
    ([{"address": "0.0.0.0", "pid": 7, "process": "nginx"}], None, F, "port-conflict"),
    (None, None, E, "not-measured"),      # no listeners readable, nothing to connect to
    (None, {"state": "open", "error": None, "ms": 0.1}, P, "listening"),
    (ZR, {"state": "error", "error": "EADDRNOTAVAIL", "ms": 0.1}, E, "not-measured"),
])
def test_room_side_verdicts(monkeypatch, socks, selfc, status, reason):
    r = _room(monkeypatch, socks, selfc)
    assert (r.status, r.reason) == (status, reason)
    assert (r.status == P) == ("proof" in r.evidence)


# -- dns ------------------------------------------------------------------------------------

DNS_OPTS = dns.Options(names=("zoom.us",), types=("A",), allow_networks=("203.0.113.0/24",),
                       lifetime=1.0)
RES = [{"address": "203.0.113.53", "port": 53, "source": "test"}]


def q(outcome: str, answers=(), **kw) -> dict:
    return {"resolver": "203.0.113.53", "name": "zoom.us", "type": "A", "outcome": outcome,
            "rcode": "NOERROR" if outcome == "ok" else None, "answers": list(answers), "ms": 3.0, **kw}


def o(outcome: str, answers=(), **kw) -> dict:
    return {"name": "zoom.us", "type": "A", "outcome": outcome, "answers": list(answers), "ms": 2.0, **kw}


def judge(queries, os_results, os_lookup=True) -> Result:
    opts = dns.Options(**{**DNS_OPTS.__dict__, "os_lookup": os_lookup})
    findings = dns.analyse(RES, queries, os_results, {}, ["zoom.us"], opts)
    evidence = {"queries": queries, "os": os_results, "allow_networks": list(opts.allow_networks)}
    return dns.verdict(evidence, findings, ["zoom.us"], RES, os_lookup)


@pytest.mark.parametrize("queries, os_results, status, reason", [
    ([q("ok", ["203.0.113.10"])], [o("ok", ["203.0.113.10"])], P, "resolved"),
    # issue 13 item 1: no route, and the OS fails too
    ([q("unreachable", errno="ENETUNREACH")], [o("temporary-failure")], F, "dns-unreachable"),
    ([q("blocked", errno="EPERM")], [o("temporary-failure")], F, "dns-blocked-locally"),
    ([q("error", error="BadResponse")], [o("error")], F, "dns-query-error"),
    ([q("rcode-notimp")], [], F, "dns-query-error"),
    ([q("timeout")], [o("timeout")], F, "dns-timeout"),
    # the deadline cut the wait short of dns.lifetime: nothing measured
    ([q("unfinished")], [o("unfinished")], E, "not-measured"),
    # DNS answers, the OS resolver cannot (nsswitch without dns, a broken stub)
    ([q("ok", ["203.0.113.10"])], [o("nxdomain", error="Name or service not known")], F, "dns-os-fails"),
    # DNS answers, the OS is silent for the full lifetime: measured slowness
    ([q("ok", ["203.0.113.10"])], [o("timeout")], W, "dns-os-timeout"),
    # DNS answers, the OS lookup was cut short by the deadline: not proven
    ([q("ok", ["203.0.113.10"])], [o("unfinished")], E, "not-measured"),
    # the reverse: the OS answers (hosts file, another resolver) while DNS does not
    ([q("timeout")], [o("ok", ["203.0.113.10"])], F, "dns-timeout"),
    ([q("ok", ["10.0.0.1"])], [o("ok", ["10.0.0.1"])], F, "dns-sinkhole"),
])
def test_dns_verdicts(queries, os_results, status, reason):
    r = judge(queries, os_results)
    assert (r.status, r.reason) == (status, reason), r.summary
    assert (r.status == P) == ("proof" in r.evidence)
    if status == P:
        assert r.evidence["proof"]["zoom.us"]["address"] == "203.0.113.10"
        assert r.evidence["proof"]["zoom.us"]["os_address"] == "203.0.113.10"


def test_dns_without_os_lookup_passes_on_dns_proof_alone():
    r = judge([q("ok", ["203.0.113.10"])], [], os_lookup=False)
    assert r.status == P and "os_address" not in r.evidence["proof"]["zoom.us"]


# -- issue 21 section 2: silence is a measurement; unknown is for a cut-short one ------------

def test_waits_are_planned_inside_the_time_left():
    from roomprobe.core.probe import PLAN_SHARE, silence_measured
    c = ctx(seconds=2.0)
    assert 1.5 < c.plan(2.0) <= 2.0 * PLAN_SHARE  # a 2 s check waits ~1.6 s and concludes
    assert ctx(seconds=10.0).plan(2.0) == 2.0  # time enough: the probe's own timeout
    assert silence_measured(1.6, 2.0) and silence_measured(0.5, 0.5)  # own timeout reached
    assert not silence_measured(0.76, 2.0)  # the deadline left too short a wait to judge


def _silent_dns(monkeypatch, seconds: float) -> Result:
    """The dns probe against a resolver that never answers (each query waits its timeout)."""
    def query(server, port, name, rdtype, timeout):
        time.sleep(timeout)
        return {"outcome": "timeout", "rcode": None, "answers": [], "ms": round(timeout * 1000, 1)}

    monkeypatch.setattr(dns, "query", query)
    opts = dns.Options(names=("zoom.us",), types=("A",), resolvers=("203.0.113.53",), os_lookup=False)
    return dns.run(ctx(opts, seconds=seconds))


def test_dns_silence_in_a_short_check_is_a_measured_timeout(monkeypatch):
    """dns.lifetime 2 s in a 2 s check: the wait is planned at ~1.6 s and concluded on."""
    r = _silent_dns(monkeypatch, 2.0)
    assert (r.status, r.reason) == (F, "dns-timeout"), r.summary
    waited = r.evidence["queries"][0]["waited_s"]
    assert 1.0 <= waited < 2.0 and f"silent for {waited:g} s" in r.findings[0].message


def test_dns_silence_the_deadline_cut_short_is_not_measured(monkeypatch):
    r = _silent_dns(monkeypatch, 1.0)
    assert (r.status, r.reason) == (E, "not-measured") and "--timeout" in r.summary
    assert r.evidence["queries"][0]["outcome"] == "unfinished"
