"""macOS: hardware ports from networksetup, routes from route(8), neighbours from arp(8).

Every command goes through roomprobe.core.oscmd (bytes decoded here, timeout, never raises).
The SSID: CoreWLAN through pyobjc when installed (``CWInterface.ssid()``), else
``networksetup -getairportnetwork``; when it says "not associated", ``ipconfig getsummary``
tells a real disconnection from macOS 14.4+/15 hiding the name from a process without location
permission (``SSID : <redacted>``).
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Any

from roomprobe.core import oscmd
from roomprobe.host.osnet import parsers


def _run(cmd: list[str], timeout: float = 3.0) -> str | None:
    out = oscmd.run(cmd, timeout)
    return out.text if out.ok else None


@functools.lru_cache(maxsize=1)
def _ports() -> dict[str, str]:
    return parsers.networksetup_hardware_ports(_run(["networksetup", "-listallhardwareports"]) or "")


def interface_kind(name: str) -> str:
    return parsers.macos_kind(name, _ports().get(name))


@functools.lru_cache(maxsize=8)
def _airport(name: str) -> str:
    return oscmd.run(["networksetup", "-getairportnetwork", name]).text


def _corewlan_ssid(name: str) -> str | None:
    """CoreWLAN's SSID (None without pyobjc, when not associated or hidden by macOS)."""
    try:
        import CoreWLAN  # type: ignore[import-not-found]

        cw = CoreWLAN.CWWiFiClient.sharedWiFiClient().interfaceWithName_(name)
        ssid = cw.ssid() if cw is not None else None
    except Exception:  # pyobjc missing or CoreWLAN refusing: the commands answer
        return None
    return str(ssid) if ssid else None


def wifi_ssid(name: str) -> str | None:
    return _corewlan_ssid(name) or parsers.macos_airport_network(_airport(name))


def wifi_note(name: str) -> str | None:
    """"SSID hidden by macOS (location permission)" when connected but redacted, else None."""
    if _corewlan_ssid(name) or parsers.macos_airport_network(_airport(name)):
        return None
    return parsers.macos_wifi_note(_airport(name), oscmd.run(["ipconfig", "getsummary", name]).text)


def raw_sockets() -> bool:
    return sys.platform != "win32" and os.geteuid() == 0  # /dev/bpf* is root-only by default


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
    return sys.platform != "win32" and os.geteuid() == 0
