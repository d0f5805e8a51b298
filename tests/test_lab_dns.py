"""The dns probe in a real lab: dnsmasq (and a fake server for SERVFAIL and slowness) in the
router namespace, the room namespace pointed at it through its own /etc/resolv.conf and
/etc/hosts, and the roomprobe CLI run inside the room as a user would.

Only lab addresses are ever queried: the names are Zoom's, but they resolve inside the lab.
"""

from __future__ import annotations

import pytest
from labdns import start_dnsmasq, start_fake_dns

pytestmark = pytest.mark.lab

NAMES = "dns.names=zoom.us,www.zoom.us,api.zoom.us"
ALLOW = "dns.allow_networks=203.0.113.0/24,2001:db8::/32"  # the lab's "public" addresses
ZOOM = {"zoom.us": ["203.0.113.10", "2001:db8::10"]}


def room_with_dns(lab, *servers: str, hosts: str | None = None):
    room = lab.add_host("room", "lan", 20)
    lab.etc_file(room, "resolv.conf", "".join(f"nameserver {s}\n" for s in servers) or "# none\n")
    lab.etc_file(room, "hosts", hosts or "127.0.0.1 localhost\n")
    return room


def check_dns(host, *extra: str):
    out = host.roomprobe("check", "--only", "dns", "--format", "json", "--set", NAMES, "--set", ALLOW, *extra)
    assert out.rc in (0, 1, 2), out.stdout + out.stderr
    return out


def finding(out, fid: str) -> dict:
    return next(f for f in out.report["findings"] if f["id"] == fid)


def assert_diagnosis(out, fid: str, code: int = 10002) -> None:
    hits = [d for d in out.report["diagnosis"] if fid in d["because"]]
    assert any((d["product"], d["code"]) == ("zoom-client", code) for d in hits), out.report["diagnosis"]


def test_healthy_resolver(lab):
    srv = start_dnsmasq(lab, 53, ZOOM)
    room = room_with_dns(lab, srv)

    out = check_dns(room)
    assert out.rc == 0, out.stdout
    dns = out.probe("dns")
    assert dns["status"] == "pass" and dns["reason"] == "resolved"
    ev = dns["evidence"]
    assert ev["resolvers"] == [{"address": srv, "port": 53, "source": "/etc/resolv.conf", "label": srv}]
    assert len(ev["queries"]) == 6 and all(q["outcome"] == "ok" for q in ev["queries"])
    a = {q["name"]: q["answers"] for q in ev["queries"] if q["type"] == "A"}
    assert a == {n: ["203.0.113.10"] for n in ("zoom.us", "www.zoom.us", "api.zoom.us")}
    assert all(q["rcode"] == "NOERROR" and q["ms"] < 300 for q in ev["queries"])
    os_a = {o["name"]: o["answers"] for o in ev["os"] if o["type"] == "A"}
    assert os_a["zoom.us"] == ["203.0.113.10"]  # the OS path went through the same resolver
    assert out.report["findings"] == []
    assert ev["per_resolver"] == {srv: {"ok": 6, "max_ms": max(q["ms"] for q in ev["queries"])}}

    # A user who saw 10002: the lab proved every DNS cause fine.
    out = check_dns(room, "--code", "10002")
    ruled_out = " ".join(r["how"] for r in out.report["diagnosis"][0]["ruled_out"])
    for fid in ("dns-timeout", "dns-nxdomain", "dns-sinkhole", "dns-hosts-override"):
        assert fid in ruled_out

    # Without allow_networks the lab's documentation-range answers are not public: a sinkhole.
    out = room.roomprobe("check", "--only", "dns", "--format", "json", "--set", NAMES,
                         "--set", "dns.allow_networks=")  # (the lab's config file allows them)
    assert out.rc == 2
    assert "dns-sinkhole" in out.finding_ids()


def test_resolvers_option_overrides_the_system(lab):
    good = start_dnsmasq(lab, 53, ZOOM)
    room = room_with_dns(lab, lab.add_cloud_address(60))  # the system's resolver is dead
    out = check_dns(room, "--set", f"dns.resolvers={good}", "--set", "dns.os_lookup=false")
    assert out.rc == 0, out.stdout
    ev = out.probe("dns")["evidence"]
    assert ev["resolvers_from"] == "config" and ev["resolvers"][0]["address"] == good
    assert ev["os"] == []


def test_no_server_at_the_address_times_out_once(lab):
    dead1, dead2 = lab.add_cloud_address(60), lab.add_cloud_address(61)
    room = room_with_dns(lab, dead1, dead2)

    out = check_dns(room, "--set", "dns.lifetime=1.0")
    assert out.rc == 2
    dns = out.probe("dns")
    assert dns["status"] == "fail" and dns["reason"] == "dns-timeout"
    ev = dns["evidence"]
    assert {q["resolver"] for q in ev["queries"]} == {dead1, dead2}
    assert all(q["outcome"] == "timeout" for q in ev["queries"])
    # 12 queries in parallel: one timeout (1 s), not twelve; the stuck OS lookups stop at the deadline.
    assert ev["elapsed_ms"] < 3200, ev["elapsed_ms"]
    assert all(1000 <= q["ms"] < 1500 for q in ev["queries"])
    f = finding(out, "dns-timeout")
    assert f["severity"] == "fail" and set(f["evidence"]["names_unresolvable"]) == {
        "zoom.us", "www.zoom.us", "api.zoom.us"}
    assert f["hint"] and dead1 in f["message"]
    assert_diagnosis(out, "dns-timeout")


def test_check_with_every_resolver_dead_meets_its_deadline(lab):
    room = room_with_dns(lab, lab.add_cloud_address(60), lab.add_cloud_address(61))
    out = room.roomprobe("check", "--format", "json", "--timeout", "4", "--set", ALLOW)
    rep = out.report
    assert rep["complete"] is True and rep["duration_s"] <= 4 + 0.5, rep["duration_s"]
    dns = out.probe("dns")
    assert dns["status"] == "fail" and dns["reason"] == "dns-timeout"  # a result, not a runner timeout
    assert out.seconds < 4 + 3, out.seconds  # the whole process exits: no thread holds it up


def test_one_dead_resolver_of_two_is_a_warning(lab):
    good = start_dnsmasq(lab, 53, ZOOM)
    dead = lab.add_cloud_address(60)
    room = room_with_dns(lab, dead, good)

    out = check_dns(room, "--set", "dns.lifetime=1.0")
    assert out.rc == 1, out.stdout
    f = finding(out, "dns-timeout")
    assert f["severity"] == "warn" and f["evidence"]["names_unresolvable"] == []
    assert {q["resolver"] for q in f["evidence"]["queries"]} == {dead}


def test_refused(lab):
    srv = start_dnsmasq(lab, 53, {})  # no zone, no upstream: dnsmasq answers REFUSED
    room = room_with_dns(lab, srv)
    out = check_dns(room)
    assert out.rc == 2
    assert out.probe("dns")["reason"] == "dns-refused"
    f = finding(out, "dns-refused")
    assert f["severity"] == "fail" and {q["rcode"] for q in f["evidence"]["queries"]} == {"REFUSED"}
    assert "dns-timeout" not in out.finding_ids()
    assert_diagnosis(out, "dns-refused")


def test_servfail(lab):
    srv = start_fake_dns(lab, 53, "servfail")
    room = room_with_dns(lab, srv)
    out = check_dns(room)
    assert out.rc == 2
    assert out.probe("dns")["reason"] == "dns-servfail"
    assert {q["outcome"] for q in out.probe("dns")["evidence"]["queries"]} == {"servfail"}
    assert_diagnosis(out, "dns-servfail")


def test_nxdomain_for_everything_is_not_dns_works(lab):
    srv = start_dnsmasq(lab, 53, {}, ["--address=/#/"])
    room = room_with_dns(lab, srv)
    out = check_dns(room)
    assert out.rc == 2
    dns = out.probe("dns")
    assert dns["status"] == "fail" and dns["reason"] == "dns-nxdomain"
    assert all(q["ms"] < 300 for q in dns["evidence"]["queries"])  # instant, and still a failure
    assert {o["outcome"] for o in dns["evidence"]["os"]} == {"nxdomain"}
    assert finding(out, "dns-nxdomain")["evidence"]["names_unresolvable"] == ["api.zoom.us", "www.zoom.us",
                                                                              "zoom.us"]
    assert_diagnosis(out, "dns-nxdomain")


@pytest.mark.parametrize("addrs", [["0.0.0.0", "::"], ["127.0.0.1", "::1"], ["10.1.2.3", "fd00::1"]])
def test_sinkhole(lab, addrs):
    srv = start_dnsmasq(lab, 53, {"zoom.us": addrs})
    room = room_with_dns(lab, srv)
    out = check_dns(room, "--set", "dns.os_lookup=false")
    assert out.rc == 2
    assert out.probe("dns")["reason"] == "dns-sinkhole"
    f = finding(out, "dns-sinkhole")
    assert f["severity"] == "fail"
    seen = {a for ans in f["evidence"]["answers"] for a in ans["addresses"]}
    assert seen == set(addrs)
    assert_diagnosis(out, "dns-sinkhole", 5003)

    # A company's split-horizon range is legitimate once allowed.
    nets = {"0.0.0.0": "0.0.0.0/32,::/128", "127.0.0.1": "127.0.0.0/8,::1/128", "10.1.2.3": "10.0.0.0/8,fd00::/8"}
    out = room.roomprobe("check", "--only", "dns", "--format", "json", "--set", NAMES,
                         "--set", "dns.os_lookup=false", "--set", f"dns.allow_networks={nets[addrs[0]]}")
    assert out.rc == 0, out.stdout


def test_hosts_file_override(lab):
    srv = start_dnsmasq(lab, 53, ZOOM)
    room = room_with_dns(lab, srv, hosts="127.0.0.1 localhost\n203.0.113.66 zoom.us\n# a note\n"
                                         "127.0.0.1 www.zoom.us\n")
    out = check_dns(room)
    assert out.rc == 2
    dns = out.probe("dns")
    assert dns["reason"] == "dns-hosts-override"
    f = finding(out, "dns-hosts-override")
    assert f["severity"] == "fail"  # www.zoom.us pinned to loopback
    pins = {(o["name"], o["address"], o["source"]) for o in f["evidence"]["overrides"]}
    assert ("zoom.us", "203.0.113.66", "hosts file line 2") in pins
    assert ("www.zoom.us", "127.0.0.1", "hosts file line 4") in pins
    os_a = {o["name"]: o["answers"] for o in dns["evidence"]["os"] if o["type"] == "A"}
    assert os_a["zoom.us"] == ["203.0.113.66"] and os_a["api.zoom.us"] == ["203.0.113.10"]
    assert "api.zoom.us" not in {o["name"] for o in f["evidence"]["overrides"]}
    assert "dns-sinkhole" not in out.finding_ids()  # DNS itself is honest here
    assert_diagnosis(out, "dns-hosts-override", 5003)


def test_slow_resolver(lab):
    srv = start_fake_dns(lab, 53, "answer", delay=0.6)
    room = room_with_dns(lab, srv)
    out = check_dns(room, "--set", "dns.types=A", "--set", "dns.slow_ms=300", "--set", "dns.os_lookup=false")
    assert out.rc == 1, out.stdout
    dns = out.probe("dns")
    assert dns["status"] == "warn" and dns["reason"] == "dns-slow"
    stats = finding(out, "dns-slow")["evidence"]["resolvers"][0]
    assert stats["resolver"] == srv and stats["slow_queries"] == 3 and 600 <= stats["max_ms"] < 1500
    assert dns["evidence"]["elapsed_ms"] < 1500  # three slow queries in parallel, not in a row
    # The same resolver under a looser threshold is fine.
    out = check_dns(room, "--set", "dns.types=A", "--set", "dns.slow_ms=2000", "--set", "dns.os_lookup=false")
    assert out.rc == 0, out.stdout


def test_resolvers_disagree(lab):
    one = start_dnsmasq(lab, 53, ZOOM)
    two = start_dnsmasq(lab, 54, {"zoom.us": ["203.0.113.77", "2001:db8::77"]})
    room = room_with_dns(lab, one, two)
    out = check_dns(room, "--set", "dns.os_lookup=false")
    assert out.rc == 1, out.stdout
    assert out.finding_ids() == {"dns-resolvers-disagree"}
    d = finding(out, "dns-resolvers-disagree")["evidence"]["disagreements"]
    first = next(x for x in d if x["name"] == "zoom.us" and x["type"] == "A")
    assert first["answers"] == {one: ["203.0.113.10"], two: ["203.0.113.77"]}


def test_no_resolver_configured(lab):
    room = room_with_dns(lab)
    out = check_dns(room)
    assert out.rc == 2
    dns = out.probe("dns")
    assert dns["reason"] == "dns-no-resolver" and dns["evidence"]["resolvers"] == []
    assert "/etc/resolv.conf" in dns["evidence"]["no_resolver_why"]
    assert_diagnosis(out, "dns-no-resolver")
    # No resolver to ask: per-resolver faults were not tested, so they are not "ruled out".
    out = check_dns(room, "--code", "10002")
    ruled_out = " ".join(r["how"] for d in out.report["diagnosis"] for r in d.get("ruled_out", []))
    assert "dns-timeout" not in ruled_out and "dns-nxdomain" not in ruled_out


def test_empty_answers(lab):
    srv = start_fake_dns(lab, 53, "empty")
    room = room_with_dns(lab, srv)
    out = check_dns(room, "--set", "dns.os_lookup=false")
    assert out.rc == 2
    assert out.probe("dns")["reason"] == "dns-empty"
    f = finding(out, "dns-empty")
    assert f["severity"] == "fail" and {q["type"] for q in f["evidence"]["queries"]} == {"A/AAAA"}
    assert_diagnosis(out, "dns-empty")
