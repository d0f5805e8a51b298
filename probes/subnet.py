"""subnet: are the controller and the room on the same IP subnet, and can they see each other?

Same subnet as the peer? Otherwise the route; on the same subnet, does it answer ARP.

Checks: whether the peer (the controller when we run on the room, the room when we run next to
the controller) lies in the subnet of one of our interfaces; if not, the route we would use.
How: the interface table and the OS route lookup; on the same subnet, with raw sockets, an ARP
request to the peer (scapy, imported only here). We never send hairpin probes to ourselves
through the gateway: firewalls read those as LAND attacks.
Concludes: another subnet is a warning (Zoom Rooms wants controller and room on one network;
routed setups work only if 9090 is allowed across, which controller-port tests). Same subnet but
no ARP answer is a failure: Wi-Fi client isolation, a VLAN split, or the peer is off. Without
raw sockets the ARP step is skipped with a hint, never a crash.
PASS proves: the peer's address lies inside the network of one of this host's interfaces, as
the OS reports it (reason ``same-subnet``), and the peer answered our ARP request (evidence
``arp.answered``, its MAC in the proof). Without raw sockets or for IPv6 no ARP is sent: the
reason is then ``same-subnet-arp-unchecked`` and PASS proves the address arithmetic only, not
that the peer is up or visible (the ``arp-skipped-unprivileged`` info finding says so;
controller-port's connect is the reachability proof).
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from typing import Any

from roomprobe.core.probe import Context, Finding, Probe, Result, Severity, Status, described
from roomprobe.host import osnet


@dataclass(frozen=True)
class Options:
    """The subnet probe's options: ``[probes.subnet]`` in the config file, ``--set``."""

    arp_tries: int = 3
    arp_timeout: float = 0.5


def arp_request(iface: str, peer: str, source: str, tries: int, timeout: float,
                ctx: Context) -> dict[str, Any]:
    """Ask "who has ``peer``?" on ``iface``; returns {"answered", "mac", "tries", "rtt_ms"}."""
    from scapy.config import conf
    from scapy.layers.l2 import ARP, Ether
    from scapy.sendrecv import srp1

    conf.verb = 0
    frame = Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=peer, psrc=source)
    for attempt in range(1, tries + 1):
        wait = ctx.budget(timeout)
        t0 = time.monotonic()
        answer = srp1(frame, iface=iface, timeout=wait, verbose=0)
        if answer is not None and ARP in answer:
            return {"answered": True, "mac": answer[ARP].hwsrc, "tries": attempt,
                    "rtt_ms": round((time.monotonic() - t0) * 1000, 2)}
        if ctx.remaining() < 0.2:
            return {"answered": False, "mac": None, "tries": attempt, "rtt_ms": None}
    return {"answered": False, "mac": None, "tries": tries, "rtt_ms": None}


def run(ctx: Context) -> Result:
    peer = ctx.targets.peer
    assert peer is not None  # the runner skips probes that need a peer when there is none
    who = "controller" if ctx.targets.role == "room" else "room"
    ip = ipaddress.ip_address(peer)
    evidence: dict[str, Any] = {"peer": peer, "peer_role": who}

    if peer in osnet.local_addresses() or ip.is_loopback:
        evidence["same_subnet"] = True
        return Result(Status.WARN, "peer-is-this-host",
                      f"the {who} address {peer} is this host itself", evidence, [Finding(
                          "peer-is-this-host", Severity.WARN,
                          f"The {who} address {peer} belongs to this host, so the path between "
                          "controller and room is not tested.", {"peer": peer},
                          hint=f"Give the {who}'s own LAN address (shown in its settings).")])

    on_link = osnet.interface_for_peer(peer)
    if on_link is None:
        route = osnet.route_to(peer)
        evidence.update(same_subnet=False, route=route)
        local = [f"{a['address']}/{a['prefixlen']}" for i in osnet.interfaces()
                 if i["kind"] != "loopback" for a in i["addresses"] if a["family"] == (
                     "ipv6" if ip.version == 6 else "ipv4")]
        evidence["local_networks"] = local
        via = f"via gateway {route.get('gateway')}" if route.get("gateway") else "with no gateway"
        return Result(Status.WARN, "peer-other-subnet",
                      f"{who} {peer} is on another subnet; traffic goes {via} on {route.get('interface')}",
                      evidence, [Finding(
                          "peer-other-subnet", Severity.WARN,
                          f"The {who} ({peer}) is not on this host's subnet ({', '.join(local) or 'none'}); "
                          f"traffic is routed {via}.",
                          {"peer": peer, "route": route, "local_networks": local},
                          hint="Put controller and room on the same network/VLAN, or allow TCP 9090 "
                               "between the two subnets on the router/firewall.")])

    evidence.update(same_subnet=True, **on_link)
    summary = f"{who} {peer} is on {on_link['network']} with {on_link['interface']}"
    subnet_proof = {"peer": peer, "network": on_link["network"], "interface": on_link["interface"],
                    "address": f"{on_link['address']}/{on_link['prefixlen']}"}
    if ip.version != 4:
        evidence["arp"] = {"status": "skip", "why": "IPv6 neighbour discovery is not probed"}
        return Result.passed("same-subnet-arp-unchecked", summary + " (no ARP for IPv6)", evidence,
                             subnet_proof)
    if not osnet.raw_sockets():
        evidence["arp"] = {"status": "skip", "why": "no raw-socket privilege"}
        return Result.passed("same-subnet-arp-unchecked", summary + "; ARP skipped (not privileged)",
                             evidence, subnet_proof, [Finding(
                          "arp-skipped-unprivileged", Severity.INFO,
                          "Could not check whether the peer answers ARP (client isolation) "
                          "without raw-socket privileges.", {},
                          hint="Run as root / Administrator (with Npcap on Windows) for the ARP check.")])

    arp = arp_request(on_link["interface"], peer, on_link["address"],
                      int(ctx.options.arp_tries), float(ctx.options.arp_timeout), ctx)
    evidence["arp"] = {"status": "done", **arp}
    if arp["answered"]:
        return Result.passed("same-subnet", f"{summary}; answers ARP from {arp['mac']}", evidence,
                             {**subnet_proof, "arp_mac": arp["mac"], "arp_rtt_ms": arp["rtt_ms"]})
    return Result(Status.FAIL, "peer-no-arp-reply",
                  f"{summary}, but it does not answer ARP ({arp['tries']} tries)", evidence, [Finding(
                      "peer-no-arp-reply", Severity.FAIL,
                      f"The {who} ({peer}) is on the same subnet but does not answer ARP: Wi-Fi "
                      "client isolation, a VLAN split inside one subnet, or the device is off.",
                      {"peer": peer, "interface": on_link["interface"], "tries": arp["tries"]},
                      hint="Check the device is on; on Wi-Fi, allow client-to-client traffic "
                           "(turn off client/AP isolation) for the room's SSID.")])


PROBE = Probe("subnet", "Controller and room on one subnet", run, needs=("peer",), timeout_s=3.0, options=Options,
              description=described(__doc__))
