"""Bypass lists (no_proxy, WinINet ProxyOverride, macOS ExceptionsList, GNOME ignore-hosts).

Semantics, as curl and Python's requests apply ``no_proxy`` (docs/proxy.md has the table):

- ``*`` alone bypasses everything;
- a name matches itself and every sub-domain: ``zoom.us`` and ``.zoom.us`` both match ``zoom.us``
  and ``api.zoom.us`` (not ``notzoom.us``); matching ignores case and a trailing dot;
- ``*.corp.example``, ``10.*`` (WinINet wildcards) match by pattern;
- an IP address matches itself; CIDR ``10.0.0.0/8`` (and macOS' short ``169.254/16``) matches
  addresses inside (urllib ignores CIDR, so ``10.0.0.0/8`` there silently proxies the controller);
- ``host:port`` (and ``[v6]:port``) matches only requests to that port;
- ``<local>`` (WinINet) matches names without a dot.
"""

from __future__ import annotations

import fnmatch
import ipaddress


def _network(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    if "/" in entry and ":" not in entry:
        addr, _, plen = entry.partition("/")
        octets = addr.split(".")
        if 1 <= len(octets) < 4 and all(o.isdigit() for o in octets):
            addr = ".".join(octets + ["0"] * (4 - len(octets)))  # macOS "169.254/16"
        entry = f"{addr}/{plen}"
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return None


def split_list(value: str) -> list[str]:
    """A bypass string separated by commas, semicolons or spaces, as the various OSes write it."""
    return [e.strip() for e in value.replace(";", ",").replace(" ", ",").split(",") if e.strip()]


def _split_port(entry: str) -> tuple[str, int | None]:
    """``host:port`` / ``[v6]:port`` -> (host, port); a bare IPv6 address keeps its colons."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return host, int(port) if port.isdigit() else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        if port.isdigit():
            return host, int(port)
        return host, None
    return entry, None


def bypassed(host: str, entries: list[str], port: int | None = None) -> bool:
    """Would a request to ``host`` (on ``port``, when known) skip the proxy, given these entries?"""
    host = host.strip("[]").lower().rstrip(".")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for raw in entries:
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if entry == "<local>":
            if ip is None and "." not in host:
                return True
            continue
        if "://" in entry:
            entry = entry.split("://", 1)[1]
        net = _network(entry)
        if net is not None:
            if ip is not None and ip.version == net.version and ip in net:
                return True
            continue
        entry, entry_port = _split_port(entry)
        if entry_port is not None and port is not None and entry_port != port:
            continue
        entry = entry.rstrip(".")
        net = _network(entry)
        if net is not None:
            if ip is not None and ip.version == net.version and ip in net:
                return True
            continue
        if "*" in entry or "?" in entry:
            if fnmatch.fnmatchcase(host, entry):
                return True
            continue
        bare = entry.lstrip(".")
        if bare and (host == bare or host.endswith("." + bare)):
            return True
    return False
