"""interfaces: what networks this host is on.

Checks: every interface (kind wired | wifi | loopback | virtual | unknown, up/down, addresses
with prefix length, MAC, Wi-Fi SSID), the default gateway(s) and whether raw sockets (ARP) work.
How: psutil and netifaces, plus the OS for interface kind and SSID.
Concludes: fail when no interface outside loopback is up with an address (nothing else can work);
warn when there is no default gateway (the LAN may work, Zoom's cloud cannot).
"""

from __future__ import annotations

from roomprobe.core.probe import Context, Finding, Probe, Result, Severity, Status
from roomprobe.net import osnet


def run(ctx: Context) -> Result:
    ifaces = list(osnet.interfaces())
    gateways = list(osnet.default_gateways())
    raw = osnet.raw_sockets()
    evidence = {"interfaces": ifaces, "default_gateway": gateways, "raw_sockets": raw}

    usable = [i for i in ifaces if i["up"] and i["kind"] != "loopback" and any(
        not a["address"].startswith("fe80") for a in i["addresses"])]
    if not usable:
        return Result(Status.FAIL, "no-network", "no interface is up with an address", evidence, [
            Finding("no-network", Severity.FAIL, "No network interface is up with an IP address.",
                    {"interfaces": [i["name"] for i in ifaces]},
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
    return Result(Status.PASS, "ok", f"up: {names}; gateway {gw}", evidence)


PROBE = Probe(
    id="interfaces",
    title="Network interfaces, gateway and privileges",
    run=run,
    timeout_s=3.0,
    description="Lists interfaces (wired/Wi-Fi, SSID, addresses), default gateways, raw-socket access.",
)
