"""Any other OS: only what psutil and netifaces can tell."""

from __future__ import annotations

import os
from typing import Any


def interface_kind(name: str) -> str:
    return "loopback" if name.startswith("lo") else "unknown"


def wifi_ssid(name: str) -> str | None:
    return None


def raw_sockets() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def route_to(peer: str) -> dict[str, Any] | None:
    return None


def neighbor(peer: str) -> dict[str, Any] | None:
    return None


def is_admin() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0
