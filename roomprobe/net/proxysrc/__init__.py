"""Where proxy settings live, each source read and reported separately.

Tools that read only the environment give false answers for Zoom Rooms: Zoom uses the OS
settings (WinINet per user, WinHTTP for services, macOS system configuration, PAC and WPAD), and
a scheduled task does not even see the logged-in user's settings. So every source is collected
on its own, with where it came from, and ``route()`` answers "which proxy would this source use
for that URL" including PAC evaluation and CIDR-aware bypass lists.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from roomprobe.net.proxysrc.bypass import bypassed

__all__ = ["Source", "Route", "system_sources", "guarded", "route", "safe_url", "normalise_proxy"]


@dataclass
class Source:
    """One place proxy settings came from. ``proxies`` maps a URL scheme (or ``all``) to a proxy."""

    name: str  # env | wininet | winhttp | macos | gnome | pac | wpad
    origin: str  # human-readable: the variable names, registry key, command
    proxies: dict[str, str] = field(default_factory=dict)
    bypass: list[str] = field(default_factory=list)
    pac_url: str | None = None
    auto_detect: bool = False
    error: str | None = None

    @property
    def active(self) -> bool:
        """Does this source send anything through a proxy (fixed, PAC or auto-detect)?"""
        return bool(self.proxies or self.pac_url or self.auto_detect)

    def to_evidence(self) -> dict[str, Any]:
        return {"name": self.name, "origin": self.origin, "active": self.active,
                "proxies": {k: safe_url(v) for k, v in self.proxies.items()},
                "bypass": list(self.bypass), "pac_url": self.pac_url and safe_url(self.pac_url),
                "auto_detect": self.auto_detect, "error": self.error}


@dataclass
class Route:
    """What a source decides for one URL: ``proxy`` None means a direct connection."""

    proxy: str | None
    via: str  # fixed | pac | bypass | direct | pac-error
    error: str | None = None


def safe_url(url: str) -> str:
    """A proxy or PAC URL without its ``user:password@`` and with query values masked.

    Evidence never carries credentials; the parsing (a raw ``@``, ``/`` or ``#`` inside a
    password) is roomprobe.core.redact's, so there is one rule for every place a URL is shown.
    """
    from roomprobe.core.redact import MASK, redact_text

    text = redact_text(url)
    for userinfo in (f"{MASK}:{MASK}@", f"{MASK}@"):
        if "://" + userinfo in text:
            return text.replace("://" + userinfo, "://", 1)
        if text.startswith(userinfo):
            return text[len(userinfo):]
    return text


def normalise_proxy(value: str, scheme: str = "http") -> str:
    """``host:port`` (registry, scutil, gsettings style) -> ``scheme://host:port``."""
    value = value.strip()
    return value if "://" in value else f"{scheme}://{value}"


def route(source: Source, url: str, pac_eval: Any = None) -> Route:
    """Which proxy ``source`` would use for ``url``.

    ``pac_eval(pac_url, url) -> list[str]`` evaluates a PAC file (the probe passes a cached one);
    entries are proxy URLs or ``DIRECT``; the first is what a browser tries first.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if source.bypass and bypassed(host, source.bypass):
        return Route(None, "bypass")
    if source.pac_url and pac_eval is not None:
        try:
            chosen = pac_eval(source.pac_url, url)
        except Exception as exc:
            return Route(None, "pac-error", f"{type(exc).__name__}: {exc}")
        first = chosen[0] if chosen else "DIRECT"
        return Route(None if first == "DIRECT" else first, "pac")
    proxy = source.proxies.get(parts.scheme) or source.proxies.get("all")
    return Route(proxy, "fixed") if proxy else Route(None, "direct")


def guarded(name: str, origin: str, read: Callable[[], Source]) -> Source:
    """``read()``, or a Source carrying its error: one unreadable source never hides another."""
    try:
        return read()
    except Exception as exc:
        return Source(name, origin, error=f"{type(exc).__name__}: {exc}")


def system_sources(include_gnome: bool = True) -> list[Source]:
    """Every source this OS has, environment first (no network traffic; PAC not fetched).

    Each OS source is read under its own guard (``guarded``): on Windows a failing WinHTTP
    read leaves the WinINet source standing, and the other way round.
    """
    from roomprobe.net.proxysrc import env

    out = [guarded("env", "environment", env.read)]
    try:
        if sys.platform == "win32":
            from roomprobe.net.proxysrc import windows

            out += [guarded(name, origin, fn) for name, origin, fn in windows.READERS]
        elif sys.platform == "darwin":
            from roomprobe.net.proxysrc import macos

            out.append(guarded("macos", "scutil --proxy", macos.read))
        elif include_gnome:
            from roomprobe.net.proxysrc import gnome

            src = gnome.read()
            if src is not None:
                out.append(src)
    except Exception as exc:  # an import or platform surprise: still a report, with the reason
        out.append(Source("os", sys.platform, error=f"{type(exc).__name__}: {exc}"))
    return out
