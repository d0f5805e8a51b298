"""Issue 13 in the lab: every way a dns or controller-port measurement can fail, made with real
parts (a deleted route, nftables in the room's or controller's own namespace, a router that
drops, a process that does not listen, nsswitch without DNS), and each test fails if the outcome
were called PASS. Also the incomplete run: UNKNOWN and exit 3, unless a failure was measured.
"""

from __future__ import annotations

import pytest
from labdns import start_dnsmasq

pytestmark = pytest.mark.lab

NAMES = "dns.names=zoom.us,www.zoom.us"
ALLOW = "dns.allow_networks=203.0.113.0/24,2001:db8::/32"
ZOOM = {"zoom.us": ["203.0.113.10", "2001:db8::10"]}

OUT_DROP_53 = """
table inet roomfw {
  chain output { type filter hook output priority 0; policy accept;
    udp dport 53 drop
    tcp dport 53 drop
  }
}
"""

OUT_DROP_9090 = """
table inet ctrlfw {
  chain output { type filter hook output priority 0; policy accept;
    tcp dport 9090 drop
  }
}
"""


def silent_at(lab, octet: int) -> str:
    """An address the router holds but drops every packet to: silence, no ICMP."""
    addr = lab.add_cloud_address(octet)
    lab.router_exec(["nft", "-f", "-"], input=f"""
table inet silent{octet} {{
  chain input {{ type filter hook input priority 0; policy accept;
    ip daddr {addr} drop
  }}
}}
""")
    return addr


def room_with_dns(lab, *servers: str):
    room = lab.add_host("room", "lan", 20)
    lab.etc_file(room, "resolv.conf", "".join(f"nameserver {s}\n" for s in servers))
    lab.etc_file(room, "hosts", "127.0.0.1 localhost\n")
    return room


def check_dns(host, *extra: str):
    out = host.roomprobe("check", "--only", "dns", "--format", "json", "--set", NAMES,
                         "--set", ALLOW, *extra)
    assert out.rc in (0, 1, 2, 3), out.stdout + out.stderr
    return out


def not_pass(out, probe: str) -> dict:
    p = out.probe(probe)
    assert p["status"] != "pass", p
    assert "proof" not in p["evidence"]
    return p


# -- dns ------------------------------------------------------------------------------------

def test_dns_no_route_is_a_failure_not_pass(lab):
    """Issue 13 item 1: every query fails at once with ENETUNREACH and the OS resolver too."""
    srv = start_dnsmasq(lab, 53, ZOOM)
    room = room_with_dns(lab, srv)
    room.run(["ip", "route", "del", "default"])
    out = check_dns(room)
    dns = not_pass(out, "dns")
    assert out.rc == 2 and out.report["status"] == "fail"
    assert dns["status"] == "fail" and dns["reason"] == "dns-unreachable"
    assert {q["errno"] for q in dns["evidence"]["queries"]} == {"ENETUNREACH"}
    assert all(q["ms"] < 200 for q in dns["evidence"]["queries"])  # at once, not a timeout
    assert all(o["outcome"] != "ok" for o in dns["evidence"]["os"])


def test_dns_blocked_by_the_rooms_own_firewall(lab):
    srv = start_dnsmasq(lab, 53, ZOOM)
    room = room_with_dns(lab, srv)
    room.nft(OUT_DROP_53)
    out = check_dns(room)
    dns = not_pass(out, "dns")
    assert out.rc == 2 and dns["reason"] == "dns-blocked-locally"
    assert {q["errno"] for q in dns["evidence"]["queries"]} == {"EPERM"}
    f = next(f for f in out.report["findings"] if f["id"] == "dns-blocked-locally")
    assert f["severity"] == "fail" and "firewall" in f["hint"]


def test_dns_deadline_shorter_than_the_wait_is_unknown(lab):
    """A silent resolver, and a check deadline (1 s) shorter than dns.lifetime (2 s) and the
    system resolver's 5 s: nothing was measured, so UNKNOWN and exit 3, never PASS or FAIL."""
    room = room_with_dns(lab, silent_at(lab, 70))
    out = check_dns(room, "--timeout", "1")
    dns = not_pass(out, "dns")
    assert dns["status"] == "error" and dns["reason"] == "not-measured", dns
    assert {q["outcome"] for q in dns["evidence"]["queries"]} == {"unfinished"}
    assert "--timeout" in dns["summary"]
    assert out.rc == 3 and out.report["status"] == "unknown" and out.report["complete"] is False
    # The same silence waited out in full is a measured failure.
    out = check_dns(room, "--timeout", "4", "--set", "dns.lifetime=1.0")
    assert out.rc == 2 and out.probe("dns")["reason"] == "dns-timeout"


def test_silent_resolver_in_a_2s_check_is_a_measured_timeout(lab):
    """Issue 21 section 2: dns.lifetime (2 s) is planned inside the time left, so a 2 s check
    waits about 1.6 s, hears nothing and concludes: FAIL dns-timeout naming the silence and the
    seconds waited, not error/not-measured ("run with a longer --timeout")."""
    room = room_with_dns(lab, silent_at(lab, 72))
    out = check_dns(room, "--timeout", "2")
    dns = not_pass(out, "dns")
    assert dns["status"] == "fail" and dns["reason"] == "dns-timeout", dns
    queries = dns["evidence"]["queries"]
    assert {q["outcome"] for q in queries} == {"timeout"}
    waited = {q["waited_s"] for q in queries}
    assert all(1.0 <= w < 2.0 for w in waited), waited  # the planned wait, not dns.lifetime
    f = next(f for f in out.report["findings"] if f["id"] == "dns-timeout")
    assert f["severity"] == "fail" and f"silent for {min(waited):g} s" in f["message"], f["message"]
    assert out.rc == 2 and out.report["status"] == "fail"


def test_dns_answers_but_the_os_resolver_does_not(lab):
    """nsswitch without "dns": getaddrinfo (what Zoom uses) fails while the server answers."""
    srv = start_dnsmasq(lab, 53, ZOOM)
    room = room_with_dns(lab, srv)
    lab.etc_file(room, "nsswitch.conf", "hosts: files\n")
    out = check_dns(room)
    dns = not_pass(out, "dns")
    assert out.rc == 2 and dns["reason"] == "dns-os-fails"
    assert all(q["outcome"] == "ok" for q in dns["evidence"]["queries"])
    assert {o["outcome"] for o in dns["evidence"]["os"]} <= {"nxdomain", "empty", "error"}


def test_os_resolver_answers_but_the_probed_dns_does_not(lab):
    """The reverse: the system's resolver works, the configured one sends ICMP port-unreachable
    (an address with nothing on port 53)."""
    srv = start_dnsmasq(lab, 53, ZOOM)
    room = room_with_dns(lab, srv)
    dead = lab.add_cloud_address(61)
    out = check_dns(room, "--set", f"dns.resolvers={dead}", "--set", "dns.lifetime=1.0")
    dns = not_pass(out, "dns")
    assert out.rc == 2 and dns["reason"] == "dns-timeout"
    assert any(o["outcome"] == "ok" for o in dns["evidence"]["os"])


def test_dns_healthy_pass_carries_its_proof(lab):
    srv = start_dnsmasq(lab, 53, ZOOM)
    room = room_with_dns(lab, srv)
    out = check_dns(room)
    dns = out.probe("dns")
    assert out.rc == 0 and dns["status"] == "pass"
    proof = dns["evidence"]["proof"]
    assert set(proof) == {"zoom.us", "www.zoom.us"}
    assert proof["zoom.us"]["resolver"] == srv and proof["zoom.us"]["os_address"] in ZOOM["zoom.us"]


# -- controller-port --------------------------------------------------------------------------

def hosts(lab, ctrl_segment: str = "lan"):
    room = lab.add_host("room", "lan", 20)
    ctrl = lab.add_host("ctrl", ctrl_segment, 30 if ctrl_segment == "lan" else 150)
    return room, ctrl


def check_port(ctrl, room, *extra: str):
    out = ctrl.roomprobe("check", "--room", room.addr, "--only", "subnet,controller-port",
                         "--format", "json", *extra)
    assert out.rc in (0, 1, 2, 3), out.stdout + out.stderr
    return out


def test_port_blocked_by_this_hosts_firewall_is_no_verdict(lab):
    """The controller side's own nftables drops the SYN (TCP sees silence, not EPERM): the OS
    never asked ARP for the on-link room, so nothing left this host. Neither PASS nor a verdict
    about the room ("no ARP answer" would be false): no verdict, exit 3."""
    room, ctrl = hosts(lab)
    room.listen(9090)
    ctrl.nft(OUT_DROP_9090)
    out = check_port(ctrl, room)
    port = not_pass(out, "controller-port")
    assert port["status"] == "error" and port["reason"] == "blocked-locally"
    assert port["evidence"]["error"] == "timeout" and port["evidence"]["neighbor"]["state"] == "none"
    assert out.probe("subnet")["status"] == "pass"
    assert out.rc == 3 and out.report["status"] == "unknown"


def test_port_no_route_is_unreachable(lab):
    room, ctrl = hosts(lab, "vl2")
    room.listen(9090)
    ctrl.run(["ip", "route", "del", "default"])
    out = check_port(ctrl, room)
    port = not_pass(out, "controller-port")
    assert port["status"] == "fail" and port["evidence"]["state"] == "unreachable"
    assert port["evidence"]["error"] == "ENETUNREACH" and out.rc == 2


def test_port_icmp_port_unreachable_is_a_firewalls_reject(lab):
    """The room's firewall rejects with ICMP port-unreachable: the errno is ECONNREFUSED, as for a
    reset, but a TCP stack answers a closed port with a reset, never ICMP: a firewall's reject
    (filtered, port-rejected, the ICMP and its sender named), not "nothing listens"."""
    room, ctrl = hosts(lab)
    room.listen(9090)
    room.nft("""
table inet roomfw {
  chain input { type filter hook input priority 0; policy accept;
    tcp dport 9090 reject with icmp type port-unreachable
  }
}
""")
    out = check_port(ctrl, room)
    port = not_pass(out, "controller-port")
    assert port["status"] == "fail" and port["evidence"]["state"] == "filtered"
    assert port["reason"] == "port-rejected" and port["evidence"]["rejected"] == "port-unreachable"
    assert port["evidence"]["icmp"]["from"] == room.addr
    assert port["evidence"]["error"] == "ECONNREFUSED" and out.rc == 2


def test_port_silence_cut_short_by_the_deadline_is_unknown(lab):
    """A router that drops, and a check deadline (1 s) that leaves less than a second to wait:
    too short to call silence a measurement (core.probe.silence_measured)."""
    room, ctrl = hosts(lab, "vl2")
    lab.router_exec(["nft", "-f", "-"], input="""
table inet blackhole {
  chain bh_forward { type filter hook forward priority 0; policy drop;
  }
}
""")
    out = check_port(ctrl, room, "--timeout", "1")
    port = not_pass(out, "controller-port")
    assert port["status"] == "error" and port["reason"] == "deadline"
    assert port["evidence"]["waited_s"] < port["evidence"]["timeout_s"]
    assert out.rc == 3 and out.report["status"] == "unknown" and out.report["complete"] is False
    # Waited out in full, the same silence is a measured failure.
    out = check_port(ctrl, room, "--timeout", "3", "--set", "controller-port.connect_timeout=1.5")
    assert out.probe("controller-port")["reason"] == "port-filtered" and out.rc == 2
    # A 2 s check plans its wait inside the time left (about 1.6 s of connect_timeout's 2.5 s)
    # and concludes on the silence: a measured failure with the seconds waited, not unknown.
    out = check_port(ctrl, room, "--timeout", "2")
    port = out.probe("controller-port")
    assert port["status"] == "fail" and port["reason"] == "port-filtered", port
    assert 1.0 <= port["evidence"]["waited_s"] < port["evidence"]["timeout_s"]
    assert f"no answer for {port['evidence']['waited_s']:.2f} s" in port["summary"]
    assert out.rc == 2 and out.report["status"] == "fail"


def test_a_measured_failure_outranks_an_unmeasured_probe(lab):
    """Precedence: dns has no verdict (deadline), controller-port measured a refusal: exit 2."""
    room, ctrl = hosts(lab)
    lab.etc_file(ctrl, "resolv.conf", f"nameserver {silent_at(lab, 71)}\n")
    out = ctrl.roomprobe("check", "--room", room.addr, "--only", "controller-port,dns",
                         "--format", "json", "--timeout", "1", "--set", NAMES)
    assert out.probe("dns")["status"] == "error"
    assert out.probe("controller-port")["reason"] == "port-refused"
    assert out.rc == 2 and out.report["status"] == "fail" and out.report["complete"] is False


def test_proxy_direct_tls_behind_a_silent_resolver_is_measured(lab):
    """Issue 21 section 2, the proxy probe: no proxy applies, and the resolver never answers
    for Zoom's name. The direct TLS check waits out its planned wait and concludes (the usual
    tls-not-checked warning, naming the silence), instead of error/unfinished."""
    room = room_with_dns(lab, silent_at(lab, 73))
    out = room.roomprobe("check", "--only", "proxy", "--format", "json", "--timeout", "3")
    p = not_pass(out, "proxy")
    assert p["status"] == "warn" and p["reason"] == "tls-not-checked", p
    assert "no answer for" in p["summary"] and "the whole wait" in p["summary"]
    assert out.rc == 1 and out.report["complete"] is True
