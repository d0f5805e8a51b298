"""Which proxy the system would use for a URL: the one question every HTTP-speaking probe asks.

Zoom goes through the system proxy, so the cloud and bandwidth probes must too, or they measure
a path Zoom does not take. This module is the single answer to ``proxy_for(url)``; the sources
themselves (environment, WinINet, WinHTTP, macOS, GNOME, PAC) live in ``roomprobe.net.proxysrc``.

Order, as Zoom and WinINet-style clients decide: the environment when any ``*_proxy`` variable is
set, otherwise the OS's per-user settings (WinINet / macOS / GNOME), whose PAC file is fetched and
evaluated (direct if it fails). Bypass lists understand CIDR entries, unlike urllib's.
"""

from __future__ import annotations

import threading

from roomprobe.net.proxysrc import Source, route, system_sources
from roomprobe.net.proxysrc.bypass import bypassed
from roomprobe.net.proxysrc.env import variables

# OS sources a user-session app (Zoom) follows; WinHTTP is for services and is only reported.
_USER_SOURCES = ("env", "wininet", "macos", "gnome")
_PAC_TIMEOUT = 2.0
_pac_lock = threading.Lock()
_pacs: dict[str, object] = {}


def env_proxies() -> dict[str, str]:
    """``*_proxy`` variables; the lowercase spelling wins, as curl and most tools do."""
    return {name: value for name, (_, value) in variables().items()}


def _pac_eval(pac_url: str, url: str) -> list[str]:
    from roomprobe.net.proxysrc import pac

    with _pac_lock:
        if pac_url not in _pacs:
            _pacs[pac_url] = pac.compile_pac(pac.fetch(pac_url, _PAC_TIMEOUT))
        return pac.evaluate(_pacs[pac_url], url)


def effective_source() -> Source | None:
    """The source a user-session app would follow: the first active one in the order above."""
    from roomprobe.net.proxysrc import env

    first = env.read()
    if first.active:  # the common case: no OS commands to run
        return first
    for src in system_sources():
        if src.name in _USER_SOURCES and src.active:
            return src
    return None


def proxy_for(url: str) -> str | None:
    """The proxy URL the system would use for ``url``, or None for a direct connection."""
    src = effective_source()
    if src is None:
        return None
    return route(src, url, _pac_eval).proxy


def _bypassed(host: str, no_proxy: str) -> bool:
    """Kept for callers of the old helper: CIDR-aware ``no_proxy`` matching."""
    from roomprobe.net.proxysrc.bypass import split_list

    return bypassed(host, split_list(no_proxy))
