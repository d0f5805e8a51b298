"""What this host's network looks like: interfaces, routes, neighbours, privileges.

One small interface for every OS. The portable parts use psutil and netifaces; the parts only the
OS can tell (interface kind, Wi-Fi SSID, the exact route) go through ``_linux``, ``_windows`` or
``_macos``, whose command-output parsers live in ``parsers`` and are tested on recorded outputs.
Results are cached for the run: several probes ask the same questions concurrently.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import platform
import socket
import sys
from collections.abc import Iterable
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _backend() -> Any:
    if sys.platform.startswith("linux"):
        from roomprobe.host.osnet import _linux as mod
    elif sys.platform == "win32":
        from roomprobe.host.osnet import _windows as mod
    elif sys.platform == "darwin":
        from roomprobe.host.osnet import _macos as mod
    else:
        from roomprobe.host.osnet import _generic as mod
    return mod


def host_info() -> dict[str, Any]:
    """Hostname and OS, as a support engineer would ask for them."""
    return {
        "hostname": socket.gethostname(),
        "os": platform.system() or sys.platform,
        "os_version": platform.release() if sys.platform != "win32" else platform.version(),
    }


@functools.lru_cache(maxsize=1)
def interfaces() -> tuple[dict[str, Any], ...]:
    """Every interface: name, kind, up, MAC, addresses with prefix length, SSID for Wi-Fi.

    A Wi-Fi interface without an SSID may carry ``ssid_note``: why the OS did not tell it
    (macOS/Windows location permission, netsh unreadable), so "hidden" is not read as "no Wi-Fi".
    """
    import psutil

    backend = _backend()
    stats = psutil.net_if_stats()
    out = []
    for name, addrs in sorted(psutil.net_if_addrs().items()):
        entry: dict[str, Any] = {"name": name, "kind": _kind(backend, name),
                                 "up": bool(stats[name].isup) if name in stats else False,
                                 "mac": None, "addresses": []}
        for a in addrs:
            if a.family == psutil.AF_LINK:
                entry["mac"] = a.address or None
            elif a.family in (socket.AF_INET, socket.AF_INET6):
                addr = a.address.split("%", 1)[0]
                entry["addresses"].append({
                    "family": "ipv4" if a.family == socket.AF_INET else "ipv6",
                    "address": addr,
                    "prefixlen": _prefixlen(a.netmask, a.family),
                })
        if entry["kind"] == "wifi":
            entry["ssid"], note = _wifi(backend, name)
            if note:
                entry["ssid_note"] = note
        out.append(entry)
    return tuple(out)


def _kind(backend: Any, name: str) -> str:
    try:
        return str(backend.interface_kind(name))
    except Exception:  # an OS source failing must not lose the interface list
        return "unknown"


def _wifi(backend: Any, name: str) -> tuple[str | None, str | None]:
    """(SSID, why there is none): an OS failure is a note, never a lost interface list."""
    try:
        ssid = backend.wifi_ssid(name)
        note = None if ssid else getattr(backend, "wifi_note", lambda _n: None)(name)
    except Exception as exc:  # a parser or OS surprise on one interface
        return None, f"SSID unreadable: {type(exc).__name__}: {exc}"
    return ssid, note


def _prefixlen(netmask: str | None, family: int) -> int | None:
    if not netmask:
        return None
    try:
        if family == socket.AF_INET6 and "/" in netmask:
            return int(netmask.rsplit("/", 1)[1])
        return ipaddress.ip_network(f"0.0.0.0/{netmask}" if family == socket.AF_INET
                                    else f"::/{netmask}").prefixlen
    except ValueError:
        return None


def routable(address: str) -> bool:
    """An address that can carry traffic beyond the link: not link-local, loopback or unspecified
    (a ``%scope`` suffix is ignored; anything that is no address is not routable)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return not (ip.is_link_local or ip.is_loopback or ip.is_unspecified)


def local_addresses() -> set[str]:
    return {a["address"] for i in interfaces() for a in i["addresses"]}


@functools.lru_cache(maxsize=1)
def default_gateways() -> tuple[dict[str, Any], ...]:
    """Default gateways per family, from the OS routing table (netifaces)."""
    import netifaces

    out = []
    gws = netifaces.gateways().get("default", {})
    for fam, label in ((netifaces.AF_INET, "ipv4"), (netifaces.AF_INET6, "ipv6")):
        if fam in gws:
            gw, ifname = gws[fam][0], gws[fam][1]
            out.append({"family": label, "gateway": gw, "interface": ifname})
    return tuple(out)


@functools.lru_cache(maxsize=1)
def raw_sockets() -> bool:
    """Can we send raw frames (ARP)? Needs root/CAP_NET_RAW, or admin with Npcap on Windows."""
    return bool(_backend().raw_sockets())


def source_address(peer: str) -> str | None:
    """The local address the OS would use to reach ``peer``; sends no packet (UDP connect)."""
    family = socket.AF_INET6 if ":" in peer else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((peer, 9))
            return s.getsockname()[0].split("%", 1)[0]
    except OSError:
        return None


def interface_for_peer(peer: str) -> dict[str, Any] | None:
    """The interface and address whose subnet contains ``peer`` (on-link), if any."""
    ip = ipaddress.ip_address(peer)
    for iface in interfaces():
        if iface["kind"] == "loopback" and not ip.is_loopback:
            continue
        for a in iface["addresses"]:
            if a["prefixlen"] is None:
                continue
            net = ipaddress.ip_interface(f"{a['address']}/{a['prefixlen']}").network
            if ip.version == net.version and ip in net and not _is_host_route(net):
                return {"interface": iface["name"], "kind": iface["kind"], "address": a["address"],
                        "prefixlen": a["prefixlen"], "network": str(net)}
    return None


def _is_host_route(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    return net.num_addresses == 1


def route_to(peer: str) -> dict[str, Any]:
    """How the OS would send to ``peer``: interface, source address, next-hop gateway (or None)."""
    route = _backend().route_to(peer)
    if route:
        if not route.get("source"):
            route["source"] = source_address(peer)
        return route
    src = source_address(peer)
    iface = next((i["name"] for i in interfaces() for a in i["addresses"] if a["address"] == src), None)
    on_link = interface_for_peer(peer)
    gw = None
    if on_link is None:
        fam = "ipv6" if ":" in peer else "ipv4"
        gw = next((g["gateway"] for g in default_gateways() if g["family"] == fam), None)
    return {"interface": iface, "source": src, "gateway": gw}


def neighbor(peer: str) -> dict[str, Any] | None:
    """The OS neighbour (ARP) entry for ``peer``: {"mac", "state"}; None if the OS cannot tell."""
    return _backend().neighbor(peer)


def neighbors(peers: Iterable[str]) -> dict[str, dict[str, Any] | None] | None:
    """``neighbor`` for many peers from one read of the whole table, where the OS offers one
    (Linux, Windows); None where it does not or the read failed (ask ``neighbor`` per peer).
    A peer absent from the table is ``{"mac": None, "state": "none"}``, as ``neighbor`` says."""
    peers = list(dict.fromkeys(peers))
    reader = getattr(_backend(), "neighbor_table", None)
    table = reader() if reader is not None else None
    if table is None:
        return None
    norm: dict[str, dict[str, Any]] = {}
    for addr, entry in table.items():
        try:
            norm.setdefault(str(ipaddress.ip_address(addr.split("%")[0])), entry)
        except ValueError:
            continue
    out: dict[str, dict[str, Any] | None] = {}
    for p in peers:
        try:
            key = str(ipaddress.ip_address(p))
        except ValueError:
            out[p] = None
            continue
        out[p] = norm.get(key, {"mac": None, "state": "none"})
    return out


def is_privileged() -> bool:
    if sys.platform == "win32":
        return bool(_backend().is_admin())
    return os.geteuid() == 0
