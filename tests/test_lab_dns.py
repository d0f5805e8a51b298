"""The dns probe in the lab: dnsmasq (and a tiny server for SERVFAIL/slow) in the router ns.

Every host's resolv.conf points at the lab DNS (203.0.113.53); faults restart it with other
options, point the host elsewhere, or give the host its own hosts file.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from lab import LAB_DNS, LAB_ZOOM

pytestmark = pytest.mark.lab
HERE = Path(__file__).parent
NAMES = "zoom.us,www.zoom.us,api.zoom.us"


def dns_check(host, *extra: str):
    return host.roomprobe("check", "--only", "dns", "--format", "json",
                          "--set", f"dns.names={NAMES}", *extra)


def fake_dns(lab, addr: str, mode: str) -> None:
    proc = lab.router_popen([sys.executable, str(HERE / "fakedns.py"), addr, mode, LAB_ZOOM],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"


def test_healthy_resolution(lab):
    room = lab.add_host("room", "lan", 20)
    out = dns_check(room)
    assert out.rc == 0, out.stdout + out.stderr
    p = out.probe("dns")
    assert p["status"] == "pass" and p["evidence"]["resolvers"] == [LAB_DNS]
    a = [q for q in p["evidence"]["queries"] if q["type"] == "A"]
    assert {q["name"] for q in a} == set(NAMES.split(","))
    assert all(q["rcode"] == "NOERROR" and q["addresses"] == [LAB_ZOOM] for q in a)
    assert all(o["addresses"] and LAB_ZOOM in o["addresses"] for o in p["evidence"]["os"])


def test_lab_answers_are_a_sinkhole_unless_allowed(lab):
    """The same answers, without the lab's allow_networks: private answers for public names."""
    room = lab.add_host("room", "lan", 20)
    out = dns_check(room, "--set", "dns.allow_networks=")
    assert "dns-sinkhole" in out.finding_ids()


def test_sinkhole_answers(lab):
    room = lab.add_host("room", "lan", 20)
    lab.start_dns("--address=/zoom.us/0.0.0.0", answers=False)
    out = dns_check(room)
    assert out.rc == 2
    f = next(f for f in out.report["findings"] if f["id"] == "dns-sinkhole")
    assert {"name": "zoom.us", "address": "0.0.0.0"} in f["evidence"]["answers"]
    first = out.report["diagnosis"][0]
    assert first["product"] == "zoom-client" and "dns-sinkhole" in first["because"]


def test_nxdomain_for_everything(lab):
    room = lab.add_host("room", "lan", 20)
    lab.start_dns("--address=/#/", answers=False)
    out = dns_check(room)
    assert out.rc == 2
    assert "dns-nxdomain" in out.finding_ids()
    assert out.probe("dns")["status"] == "fail"  # NXDOMAIN is never "DNS works"


def test_refused(lab):
    room = lab.add_host("room", "lan", 20)
    lab.start_dns(answers=False)  # no upstream, no local answers: dnsmasq REFUSES
    out = dns_check(room)
    assert "dns-refused" in out.finding_ids()
    assert out.finding_ids() <= {"dns-refused"}


def test_servfail(lab):
    room = lab.add_host("room", "lan", 20)
    lab.add_cloud_address(54)
    fake_dns(lab, "203.0.113.54", "servfail")
    out = dns_check(room, "--set", "dns.resolvers=203.0.113.54")
    assert out.finding_ids() == {"dns-servfail"}


def test_slow_resolver(lab):
    room = lab.add_host("room", "lan", 20)
    lab.add_cloud_address(55)
    fake_dns(lab, "203.0.113.55", "slow:400")
    out = dns_check(room, "--set", "dns.resolvers=203.0.113.55", "--set", "dns.slow_ms=200",
                    "--set", "dns.record_types=A")
    assert out.finding_ids() == {"dns-slow"}, out.report["findings"]
    f = out.report["findings"][0]
    assert f["evidence"]["max_ms"] >= 400


def test_dead_resolver_costs_one_timeout_not_one_per_name(lab):
    room = lab.add_host("room", "lan", 20)
    lab.stop_dns()
    lab.router_exec(["nft", "-f", "-"], input="""
table inet dropdns {
  chain in_dns { type filter hook input priority 0; policy accept;
    udp dport 53 drop
    tcp dport 53 drop
  }
}
""")
    out = room.roomprobe("check", "--only", "dns", "--format", "json", "--timeout", "3")
    rep = out.report
    assert "dns-timeout" in out.finding_ids()
    assert rep["complete"] and out.probe("dns")["status"] == "fail"
    assert rep["duration_s"] < 3 + 0.6, rep["duration_s"]  # 5 names x 2 types x 2 s, concurrently


def test_no_server_at_the_address_is_unreachable(lab):
    room = lab.add_host("room", "lan", 20)
    lab.stop_dns()  # nothing listens: the router answers ICMP port unreachable
    out = dns_check(room)
    f = next(f for f in out.report["findings"] if f["id"] == "dns-timeout")
    assert f["evidence"]["error"].startswith("unreachable")


def test_no_resolver_configured(lab):
    room = lab.add_host("room", "lan", 20)
    lab.etc_file(room, "resolv.conf", "# nothing here\n")
    out = dns_check(room)
    assert out.finding_ids() == {"dns-no-resolver"}


def test_hosts_file_override(lab):
    room = lab.add_host("room", "lan", 20)
    lab.etc_file(room, "hosts", "127.0.0.1 localhost\n203.0.113.77 zoom.us\n")
    out = dns_check(room)
    f = next(f for f in out.report["findings"] if f["id"] == "dns-hosts-override")
    assert f["evidence"] == {"name": "zoom.us", "os_addresses": ["203.0.113.77"],
                             "dns": ["2001:db8::10", LAB_ZOOM]}


def test_resolvers_disagree(lab):
    room = lab.add_host("room", "lan", 20)
    lab.add_cloud_address(56)
    fake_dns(lab, "203.0.113.56", "slow:0")  # answers 203.0.113.10 for A ...
    lab.start_dns("--address=/zoom.us/203.0.113.99", answers=False)  # ... the lab DNS another
    out = dns_check(room, "--set", f"dns.resolvers={LAB_DNS},203.0.113.56", "--set",
                    "dns.record_types=A")
    assert "dns-resolvers-disagree" in out.finding_ids()
