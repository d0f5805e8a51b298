"""macOS: hardware ports from networksetup, routes from route(8), neighbours from arp(8)."""

from __future__ import annotations

import functools
import os
import subprocess
from typing import Any

from roomprobe.net.osnet import parsers


def _run(cmd: list[str], timeout: float = 3.0) -> str | None:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None


@functools.lru_cache(maxsize=1)
def _ports() -> dict[str, str]:
    return parsers.networksetup_hardware_ports(_run(["networksetup", "-listallhardwareports"]) or "")


def interface_kind(name: str) -> str:
    return parsers.macos_kind(name, _ports().get(name))


def wifi_ssid(name: str) -> str | None:
    return parsers.macos_airport_network(_run(["networksetup", "-getairportnetwork", name]) or "")


def raw_sockets() -> bool:
    return os.geteuid() == 0  # /dev/bpf* is root-only by default


def route_to(peer: str) -> dict[str, Any] | None:
    out = _run(["route", "-n", "get", peer])
    if not out:
        return None
    r = parsers.macos_route_get(out)
    return {"interface": r["interface"], "source": None, "gateway": r["gateway"]}


def neighbor(peer: str) -> dict[str, Any] | None:
    out = _run(["arp", "-n", peer])
    return parsers.macos_arp(out) if out else None


def is_admin() -> bool:
    return os.geteuid() == 0
