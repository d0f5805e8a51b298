"""Which proxy the system would use for a URL: the one question every HTTP-speaking probe asks.

Zoom goes through the system proxy, so the cloud and bandwidth probes must too, or they measure
a path Zoom does not take. This module is the single answer to ``proxy_for(url)``; the proxy
probe owns collecting the sources (environment, WinINet, WinHTTP, macOS, PAC, WPAD).

For now it reads the environment (lowercase wins) with its bypass list.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit


def env_proxies() -> dict[str, str]:
    """``*_proxy`` variables; the lowercase spelling wins, as curl and most tools do."""
    out: dict[str, str] = {}
    for key, value in os.environ.items():
        k = key.lower()
        if k.endswith("_proxy") and value and (key == k or k not in out):
            out[k[: -len("_proxy")]] = value
    return out


def proxy_for(url: str) -> str | None:
    """The proxy URL the system would use for ``url``, or None for a direct connection."""
    parts = urlsplit(url)
    proxies = env_proxies()
    host = parts.hostname or ""
    bypass = proxies.get("no", "")
    if bypass and _bypassed(host, bypass):
        return None
    return proxies.get(parts.scheme) or proxies.get("all")


def _bypassed(host: str, no_proxy: str) -> bool:
    import ipaddress

    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        try:
            net = ipaddress.ip_network(entry, strict=False)
            if ipaddress.ip_address(host) in net:
                return True
            continue
        except ValueError:
            pass
        entry = entry.lstrip(".")
        if host.lower() == entry or host.lower().endswith("." + entry):
            return True
    return False
