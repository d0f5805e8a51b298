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

from roomprobe.proxy.sources.bypass import bypassed

__all__ = ["Source", "Route", "system_sources", "guarded", "route", "safe_url", "normalise_proxy",
           "proxy_problem", "PROXY_SCHEMES"]

# Proxy URL schemes roomprobe understands (what curl, browsers and PAC files can name).
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h", "socks4", "socks4a", "socks")


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
    # scheme -> the exact setting that holds its proxy (e.g. "HTTPS_PROXY"), for findings
    settings: dict[str, str] = field(default_factory=dict)
    # whose settings these are, for per-user sources (WinINet): a scheduled task running as
    # SYSTEM reads the Zoom Rooms user's hive, and the report must say which account it read
    user: str | None = None

    def where(self, scheme: str) -> str:
        """Where the proxy for ``scheme`` is set, as precisely as the source knows it."""
        name = self.settings.get(scheme) or self.settings.get("all")
        return f"{name} ({self.name})" if name else self.origin

    @property
    def active(self) -> bool:
        """Does this source send anything through a proxy (fixed, PAC or auto-detect)?"""
        return bool(self.proxies or self.pac_url or self.auto_detect)

    def to_evidence(self) -> dict[str, Any]:
        return {"name": self.name, "origin": self.origin, "active": self.active,
                "proxies": {k: safe_url(v) for k, v in self.proxies.items()},
                "bypass": list(self.bypass), "pac_url": self.pac_url and safe_url(self.pac_url),
                "auto_detect": self.auto_detect, "error": self.error,
                "settings": dict(self.settings), "user": self.user}


@dataclass
class Route:
    """What a source decides for one URL: ``proxy`` None means a direct connection.

    ``chain`` is every entry in the order a browser tries them (a PAC file's
    ``"PROXY a; PROXY b; DIRECT"``; None stands for DIRECT); ``proxy`` is its first entry.
    ``via`` is fixed | pac | wpad | bypass | direct | pac-error | invalid (a proxy setting that is
    no usable URL: ``error`` names the setting and what is wrong with it).
    """

    proxy: str | None
    via: str
    error: str | None = None
    chain: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.chain:
            self.chain = [self.proxy]


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


def proxy_problem(url: str, speaks: tuple[str, ...] = PROXY_SCHEMES, why: str = "") -> str | None:
    """Why ``url`` is no usable proxy URL (None: it is one). Never raises.

    The parsing is roomprobe.core.proxyurl's (the userinfo runs to the LAST ``@``, as curl
    reads it), shared by every place that reads a proxy setting. A caller that speaks to some
    proxy kinds only (the bandwidth measurement: HTTP) names them in ``speaks``, and ``why``."""
    from roomprobe.core.proxyurl import ProxyURLError, parse_proxy_url

    try:
        parsed = parse_proxy_url(url)
    except ProxyURLError as exc:
        return str(exc)
    if parsed.scheme not in PROXY_SCHEMES:
        return f"its scheme {parsed.scheme!r} is no proxy scheme ({', '.join(PROXY_SCHEMES[:4])})"
    if parsed.scheme not in speaks:
        names = " and ".join(s.upper() for s in speaks)
        return f"is a {parsed.scheme} proxy; the measurement speaks to {names} proxies only" + \
            (f" ({why})" if why else "")
    return None


def normalise_proxy(value: str, scheme: str = "http") -> str:
    """``host:port`` (registry, scutil, gsettings style) -> ``scheme://host:port``."""
    value = value.strip()
    return value if "://" in value else f"{scheme}://{value}"


def route(source: Source, url: str, pac_eval: Any = None, wpad_url: str | None = None) -> Route:
    """Which proxy ``source`` would use for ``url``, in the order WinINet and browsers decide:
    auto-detect (the WPAD file ``wpad_url``, when the source asks for it and one was found), then
    the PAC URL, then the fixed proxies with their bypass list (which applies to fixed proxies
    only, not to PAC files).

    ``pac_eval(pac_url, url) -> list[str]`` evaluates a PAC file (entries are proxy URLs or
    ``DIRECT``, in order). A PAC entry that is no usable proxy URL is skipped, as browsers do.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    for pac_url, via in ((wpad_url if source.auto_detect else None, "wpad"), (source.pac_url, "pac")):
        if not pac_url or pac_eval is None:
            continue
        try:
            entries = pac_eval(pac_url, url)
        except Exception as exc:
            return Route(None, "pac-error", str(exc) or type(exc).__name__)
        chain: list[str | None] = [None if e == "DIRECT" else e for e in entries
                                   if e == "DIRECT" or proxy_problem(e) is None]
        bad = [e for e in entries if e != "DIRECT" and proxy_problem(e) is not None]
        chain = chain or [None]
        return Route(chain[0], via, f"unusable PAC entries skipped: {', '.join(bad)}" if bad else None,
                     chain)
    proxy = source.proxies.get(parts.scheme) or source.proxies.get("all")
    if not proxy:
        return Route(None, "direct")
    if source.bypass and bypassed(host, source.bypass, _port(parts)):
        return Route(None, "bypass")
    problem = proxy_problem(proxy)
    if problem:
        scheme = parts.scheme if parts.scheme in source.proxies else "all"
        return Route(None, "invalid", f"{source.where(scheme)} = {safe_url(proxy)!r}: {problem}")
    return Route(proxy, "fixed")


def _port(parts: Any) -> int | None:
    try:
        return parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return None


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
    from roomprobe.proxy.sources import env

    out = [guarded("env", "environment", env.read)]
    try:
        if sys.platform == "win32":
            from roomprobe.proxy.sources import windows

            out += [guarded(name, origin, fn) for name, origin, fn in windows.READERS]
        elif sys.platform == "darwin":
            from roomprobe.proxy.sources import macos

            out.append(guarded("macos", "scutil --proxy", macos.read))
        elif include_gnome:
            from roomprobe.proxy.sources import gnome

            src = gnome.read()
            if src is not None:
                out.append(src)
    except Exception as exc:  # an import or platform surprise: still a report, with the reason
        out.append(Source("os", sys.platform, error=f"{type(exc).__name__}: {exc}"))
    return out
