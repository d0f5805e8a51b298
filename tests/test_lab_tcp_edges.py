"""TCP 9090 at the edges (issue 21, sections 3 and 4), in a real lab, from controller-port and sweep.

Rooms, each a namespace with a listener on 9090 standing in for Zoom Rooms:
  admin    nftables ``reject with icmp type admin-prohibited`` (firewalld's default reject)
  host     nftables ``reject with icmp type host-prohibited``
  port     nftables plain ``reject``: an ICMP port-unreachable in the room's own name (the
           listener runs: the room is known to listen, so this is a firewall's forged reject)
  routed   on the other subnet, the router rejects with admin-prohibited in its own name
  reset    the listener accepts and resets at once (SO_LINGER 0): a service that accepts and drops
  closed   the listener accepts and closes at once (FIN)
  held     the listener holds the connection: healthy

And one IPv6 room behind ``reject with icmpv6 type admin-prohibited`` (EACCES on Linux).

Every rejected room is ``filtered`` with the ICMP named and its sender, never an ARP problem
(``check`` on the same room says the room answered ARP); every accept-then-drop room is open
(as nmap says), then reset/closed, a WARN. nmap from the same namespace is the reference.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET

import pytest

pytestmark = pytest.mark.lab

REJECTS = {"admin": "admin-prohibited", "host": "host-prohibited", "port": "port-unreachable"}
ROOM_FW = """
table ip roomfw {{
  chain input {{ type filter hook input priority 0; policy accept;
    tcp dport 9090 {verdict}
  }}
}}
"""
ROUTER_FW = """
table ip rtfw {{
  chain forward_9090 {{ type filter hook forward priority 0; policy accept;
    ip daddr {room} tcp dport 9090 reject with icmp type admin-prohibited
  }}
}}
"""


@pytest.fixture(scope="module")
def edges():
    from lab import Lab, lab_unavailable_reason

    if (why := lab_unavailable_reason()) is not None:
        pytest.skip(why)
    if shutil.which("nmap") is None:
        pytest.skip("nmap is not installed (apt-get install nmap)")
    with Lab() as lab:
        ctrl = lab.add_host("ctrl", "lan", 30)
        rooms = {}
        for octet, name in enumerate(("admin", "host", "port", "reset", "closed", "held"), 20):
            room = rooms[name] = lab.add_host(name, "lan", octet)
            room.listen(9090, mode={"reset": "reset", "closed": "close"}.get(name, "hold"))
        rooms["admin"].nft(ROOM_FW.format(verdict="reject with icmp type admin-prohibited"))
        rooms["host"].nft(ROOM_FW.format(verdict="reject with icmp type host-prohibited"))
        rooms["port"].nft(ROOM_FW.format(verdict="reject"))
        routed = rooms["routed"] = lab.add_host("routed", "vl2", 150)
        routed.listen(9090)
        lab.router_exec(["nft", "-f", "-"], input=ROUTER_FW.format(room=routed.addr))
        addrs = [r.addr for r in rooms.values()]
        sweep = ctrl.roomprobe("sweep", *addrs, "--format", "json", timeout=90)
        nmap = ctrl.run(["nmap", "-n", "-Pn", "-p", "9090", "-T4", "-oX", "-", *addrs],
                        timeout=120).stdout
        nmap_states = {str(h.find("address").get("addr")): h.find("ports/port/state").get("state")
                       for h in ET.fromstring(nmap).iter("host")}
        checks = {name: ctrl.roomprobe("check", "--room", room.addr, "--only",
                                       "subnet,controller-port", "--format", "json", timeout=60)
                  for name, room in rooms.items()}
        yield {"rooms": rooms, "sweep": sweep, "data": json.loads(sweep.stdout), "nmap": nmap_states,
               "checks": checks, "router": "198.51.100.1"}


def _swept(edges, name):
    addr = edges["rooms"][name].addr
    return next(r for r in edges["data"]["rooms"] if r["targets"]["room"] == addr)


def _probe(rep, pid):
    return next(p for p in rep["probes"] if p["id"] == pid)


@pytest.mark.parametrize("name", ["admin", "host", "port"])
def test_controller_port_names_the_firewalls_reject(edges, name):
    out = edges["checks"][name]
    room = edges["rooms"][name].addr
    port = out.probe("controller-port")
    assert port["status"] == "fail" and port["reason"] == "port-rejected", port
    ev = port["evidence"]
    assert ev["state"] == "filtered" and ev["rejected"] == REJECTS[name]
    assert ev["icmp"]["icmp"] == REJECTS[name] and ev["icmp"]["from"] == room
    assert f"ICMP {REJECTS[name]} from {room}" in port["summary"]
    assert "ARP" not in json.dumps(out.report["findings"])
    # check on the same room: the room answered ARP (it is there; a firewall said no)
    sub = out.probe("subnet")
    assert sub["status"] == "pass" and sub["evidence"]["arp"]["answered"] is True
    assert out.report["diagnosis"][0]["code"] == 2002
    assert "port-rejected" in out.report["diagnosis"][0]["because"]


@pytest.mark.parametrize("name", ["admin", "host", "port"])
def test_sweep_names_the_firewalls_reject_never_arp(edges, name):
    rep = _swept(edges, name)
    room = edges["rooms"][name].addr
    assert rep["sweep"]["state"] == "filtered" and edges["nmap"][room] == "filtered"
    port = _probe(rep, "controller-port")
    assert port["status"] == "fail" and port["reason"] == "port-rejected", port
    assert f"ICMP {REJECTS[name]} from {room}" in port["summary"]
    fids = {f["id"] for f in rep["findings"]}
    assert fids == {"port-rejected"}, rep["findings"]
    reach = _probe(rep, "reachability")
    assert reach["status"] == "pass" and reach["evidence"]["arp"]["answered"] is True, reach
    assert "does not answer ARP" not in json.dumps(rep)


def test_a_routers_reject_names_the_router(edges):
    rep, out = _swept(edges, "routed"), edges["checks"]["routed"]
    for port in (_probe(rep, "controller-port"), out.probe("controller-port")):
        assert port["reason"] == "port-rejected", port
        assert port["evidence"]["icmp"]["from"] == edges["router"]
        assert f"ICMP admin-prohibited from {edges['router']}" in port["summary"]
    assert edges["nmap"][edges["rooms"]["routed"].addr] == "filtered"


@pytest.mark.parametrize("name, after", [("reset", "reset"), ("closed", "closed")])
def test_accept_then_drop_is_open_then_dropped(edges, name, after):
    room = edges["rooms"][name].addr
    assert edges["nmap"][room] == "open"
    rep = _swept(edges, name)
    assert rep["sweep"]["state"] == "open" and rep["status"] == "warn", rep["probes"]
    port = _probe(rep, "controller-port")
    assert port["status"] == "warn" and port["reason"] == "port-open-dropped"
    assert port["evidence"]["after"] == after
    assert f"open, then {after} by the peer" in port["summary"]
    assert _probe(rep, "reachability")["status"] == "pass"
    out = edges["checks"][name]
    port = out.probe("controller-port")
    assert port["status"] == "warn" and port["reason"] == "port-open-dropped", port
    assert port["evidence"]["state"] == "open" and port["evidence"]["after"] == after
    assert f"open, then {after} by the peer" in port["summary"]
    assert out.rc == 1 and "port-open-dropped" in out.finding_ids()


def test_a_held_connection_passes(edges):
    room = edges["rooms"]["held"].addr
    assert edges["nmap"][room] == "open"
    rep = _swept(edges, "held")
    assert rep["status"] == "pass" and rep["sweep"]["state"] == "open"
    port = edges["checks"]["held"].probe("controller-port")
    assert port["status"] == "pass" and port["evidence"]["after"] is None
    assert port["evidence"]["watched_s"] > 0


def test_sweep_states_agree_with_nmap(edges):
    from sweeplab import NMAP_WORD

    for rep in edges["data"]["rooms"]:
        addr = rep["targets"]["room"]
        assert NMAP_WORD[rep["sweep"]["state"]] == edges["nmap"][addr], (addr, rep["sweep"])
    assert edges["sweep"].rc == 2 and "Traceback" not in edges["sweep"].stderr


def test_ipv6_admin_prohibited_is_a_reject_not_this_hosts_firewall(lab):
    """Linux reports ICMPv6 admin-prohibited as EACCES, the errno of this host's own firewall
    refusing to send: the error queue shows the room's firewall sent it."""
    from lab import sh

    ctrl, room = lab.add_host("ctrl", "lan", 30), lab.add_host("six", "lan", 20)
    for host, addr in ((ctrl, "2001:db8:100::30"), (room, "2001:db8:100::20")):
        sh(["ip", "-n", host.ns, "addr", "add", f"{addr}/64", "dev", "eth0", "nodad"])
    room.listen(9090, bind="::")
    room.nft("table ip6 roomfw6 {\n chain input { type filter hook input priority 0; policy accept;\n"
             "  tcp dport 9090 reject with icmpv6 type admin-prohibited\n }\n}\n")
    out = ctrl.roomprobe("check", "--room", "2001:db8:100::20", "--only", "controller-port",
                         "--format", "json")
    port = out.probe("controller-port")
    assert port["status"] == "fail" and port["reason"] == "port-rejected", port
    assert port["evidence"]["error"] == "EACCES" and port["evidence"]["icmp"]["from"] == "2001:db8:100::20"
    assert "ICMPv6 admin-prohibited from 2001:db8:100::20" in port["summary"]
    sweep = json.loads(ctrl.roomprobe("sweep", "2001:db8:100::20", "--format", "json").stdout)
    port = sweep["rooms"][0]["probes"][0]
    assert port["reason"] == "port-rejected" and sweep["rooms"][0]["sweep"]["state"] == "filtered"
