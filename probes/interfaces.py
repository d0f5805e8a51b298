"""interfaces: what networks this host is on.

Lists interfaces (wired/Wi-Fi, SSID, addresses), default gateways, raw-socket access.

Checks: every interface (kind wired | wifi | loopback | virtual | unknown, up/down, addresses
with prefix length, MAC, Wi-Fi SSID), the default gateway(s) and whether raw sockets (ARP) work.
How: psutil and netifaces, plus the OS for interface kind and SSID.
Concludes: fail when no interface outside loopback is up with an address (nothing else can work);
warn when there is no default gateway (the LAN may work, Zoom's cloud cannot).
PASS proves: the OS reports at least one interface other than loopback up with a routable
address (not link-local: 169.254.0.0/16 means DHCP gave nothing, fe80::/10 is for the link
only) and a default gateway. It does not prove the gateway answers (cloud and dns do that).
"""

from __future__ import annotations

from typing import Any

from roomprobe.core.probe import Context, Finding, Probe, Result, Severity, Status, described
from roomprobe.host import osnet


def usable_interfaces(ifaces: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Interfaces up, not loopback, with at least one routable address."""
    return [i for i in ifaces if i["up"] and i["kind"] != "loopback"
            and any(osnet.routable(a["address"]) for a in i["addresses"])]


def run(ctx: Context) -> Result:
    ifaces = list(osnet.interfaces())
    gateways = list(osnet.default_gateways())
    raw = osnet.raw_sockets()
    evidence = {"interfaces": ifaces, "default_gateway": gateways, "raw_sockets": raw}

    usable = usable_interfaces(ifaces)
    if not usable:
        link_local = sorted({a["address"] for i in ifaces if i["up"] and i["kind"] != "loopback"
                             for a in i["addresses"] if a["address"].startswith("169.254.")})
        extra = (f" (only the link-local {', '.join(link_local)}: no DHCP answer)"
                 if link_local else "")
        return Result(Status.FAIL, "no-network", f"no interface is up with a routable address{extra}",
                      evidence, [
            Finding("no-network", Severity.FAIL,
                    f"No network interface is up with a routable IP address{extra}.",
                    {"interfaces": [i["name"] for i in ifaces], "link_local": link_local},
                    hint="Connect the cable or join the Wi-Fi, then check DHCP gave an address.")])

    names = ", ".join(f"{i['name']} ({i['kind']}{', ' + i['ssid'] if i.get('ssid') else ''})"
                      for i in usable)
    if not gateways:
        return Result(Status.WARN, "no-default-gateway", f"up: {names}; no default gateway",
                      evidence, [Finding(
                          "no-default-gateway", Severity.WARN,
                          "There is no default gateway: the local network may work, Zoom's cloud cannot.",
                          {}, hint="Check the DHCP lease or the static IP settings (gateway field).")])
    gw = ", ".join(f"{g['gateway']} via {g['interface']}" for g in gateways)
    proof = {"interfaces": {i["name"]: [a["address"] for a in i["addresses"] if osnet.routable(a["address"])]
                            for i in usable},
             "default_gateway": [f"{g['gateway']} via {g['interface']}" for g in gateways]}
    return Result.passed("ok", f"up: {names}; gateway {gw}", evidence, proof)


PROBE = Probe("interfaces", "Network interfaces, gateway and privileges", run, timeout_s=3.0,
              description=described(__doc__))
