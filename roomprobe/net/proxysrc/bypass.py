"""Bypass lists (no_proxy, WinINet ProxyOverride, macOS ExceptionsList, GNOME ignore-hosts).

urllib's bypass ignores CIDR entries, so ``10.0.0.0/8`` in no_proxy silently proxies the
controller. This matcher understands CIDR (also macOS' short ``169.254/16``), wildcards
(``*.corp.example``, ``10.*``), leading-dot suffixes, ``<local>`` (names without a dot) and ``*``.
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
    return [e for e in value.replace(";", ",").replace(" ", ",").split(",") if e.strip()]


def bypassed(host: str, entries: list[str]) -> bool:
    """Would a request to ``host`` skip the proxy, given these bypass entries?"""
    host = host.strip("[]").lower()
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
        net = _network(entry)
        if net is not None:
            if ip is not None and ip.version == net.version and ip in net:
                return True
            continue
        if "://" in entry:
            entry = entry.split("://", 1)[1]
        if entry.count(":") == 1:  # host:port: the port is not ours to check
            entry = entry.split(":", 1)[0]
        if "*" in entry or "?" in entry:
            if fnmatch.fnmatchcase(host, entry):
                return True
            continue
        bare = entry.lstrip(".")
        if host == bare or host.endswith("." + bare):
            return True
    return False
