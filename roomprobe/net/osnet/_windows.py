"""Windows: interface kinds from friendly names, SSID from netsh, admin and Npcap for raw frames."""

from __future__ import annotations

import functools
import os
import subprocess
from typing import Any

from roomprobe.net.osnet import parsers


def _run(cmd: list[str], timeout: float = 3.0) -> str | None:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0)).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None


def interface_kind(name: str) -> str:
    return parsers.windows_interface_kind(name)


@functools.lru_cache(maxsize=1)
def _netsh_wlan() -> str:
    return _run(["netsh", "wlan", "show", "interfaces"]) or ""


def wifi_ssid(name: str) -> str | None:
    return parsers.netsh_wlan_ssid(_netsh_wlan(), name)


def is_admin() -> bool:
    try:
        import ctypes

        return bool(ctypes.windll.shell32.IsUserAnAdmin())  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return False


def raw_sockets() -> bool:
    """scapy sends raw frames on Windows through Npcap, as an administrator."""
    system_root = os.environ.get("SYSTEMROOT", r"C:\Windows")
    return is_admin() and os.path.isdir(os.path.join(system_root, "System32", "Npcap"))


def route_to(peer: str) -> dict[str, Any] | None:
    return None  # the portable fallback (source address + gateways) is exact enough here


def neighbor(peer: str) -> dict[str, Any] | None:
    return None
