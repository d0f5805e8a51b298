"""Linux: sysfs for interface kinds, iproute2's JSON output for routes and neighbours."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from roomprobe.host.osnet import parsers

SYS = Path("/sys/class/net")


def interface_kind(name: str) -> str:
    base = SYS / name
    if name == "lo":
        return "loopback"
    if (base / "wireless").exists() or (base / "phy80211").exists():
        return "wifi"
    if not base.exists():
        return "unknown"
    # Physical NICs have a backing device; veth, bridges, tunnels and dummies do not.
    return "wired" if (base / "device").exists() else "virtual"


def _run(cmd: list[str], timeout: float = 2.0) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None


def wifi_ssid(name: str) -> str | None:
    out = _run(["iw", "dev", name, "link"])
    return parsers.iw_link_ssid(out) if out else None


def raw_sockets() -> bool:
    if sys.platform != "linux":  # AF_PACKET is Linux's (this module is only loaded there)
        return False
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW).close()
        return True
    except (PermissionError, OSError, AttributeError):
        return False


def route_to(peer: str) -> dict[str, Any] | None:
    out = _run(["ip", "-j", "route", "get", peer])
    try:
        routes = json.loads(out) if out else []
    except ValueError:
        return None
    if not routes:
        return None
    r = routes[0]
    return {"interface": r.get("dev"), "source": r.get("prefsrc"), "gateway": r.get("gateway")}


def neighbor(peer: str) -> dict[str, Any] | None:
    out = _run(["ip", "-j", "neigh", "show", "to", peer])
    try:
        entries = json.loads(out) if out else []
    except ValueError:
        return None
    if not entries:
        return {"mac": None, "state": "none"}
    e = entries[0]
    states = [s.lower() for s in e.get("state", [])]
    return {"mac": e.get("lladdr"), "state": states[0] if states else "unknown",
            "interface": e.get("dev")}


def neighbor_table() -> dict[str, dict[str, Any]] | None:
    """Every neighbour entry at once (one ``ip -j neigh show``), keyed by address, in
    ``neighbor``'s shape (its first entry per address); None when iproute2 cannot tell.

    Why: a sweep looks up hundreds of silent rooms; one process per address cost more than the
    connects themselves."""
    out = _run(["ip", "-j", "neigh", "show"], timeout=5.0)
    try:
        entries = json.loads(out) if out else None
    except ValueError:
        return None
    if not isinstance(entries, list):
        return None
    table: dict[str, dict[str, Any]] = {}
    for e in entries:
        if not isinstance(e, dict) or not isinstance(e.get("dst"), str):
            continue
        states = [str(s).lower() for s in e.get("state", [])]
        table.setdefault(e["dst"], {"mac": e.get("lladdr"), "state": states[0] if states else "unknown",
                                    "interface": e.get("dev")})
    return table


def is_admin() -> bool:
    return sys.platform != "win32" and os.geteuid() == 0
