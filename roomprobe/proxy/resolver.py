"""Which proxy the system would use for a URL: the one question every HTTP-speaking probe asks.

Zoom goes through the system proxy, so the cloud and bandwidth probes must too, or they measure
a path Zoom does not take. This module is the single answer to "which proxy does this URL use"
(``Resolver``; ``proxy_for`` / ``route_for`` on a process-wide one), shared by every probe so
cloud, bandwidth and proxy never disagree. The sources themselves (environment, WinINet,
WinHTTP, macOS, GNOME, PAC) live in ``roomprobe.proxy.sources``.

Order, as Zoom and WinINet-style clients decide: the environment when any ``*_proxy`` variable is
set, otherwise the OS's per-user settings (WinINet / macOS / GNOME). Within a source:
auto-detect (WPAD: ``wpad.<search domain>``) first, then its PAC URL, then its fixed proxies and
bypass list. PAC and WPAD files are fetched directly, bounded in time and size, and evaluated in
a killable child process (``sources.pac``). A proxy setting that is no usable URL never raises:
``route_for`` says ``via="invalid"`` with the setting named, ``proxy_for`` answers None.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from roomprobe.proxy.sources import Route, Source, route, system_sources
from roomprobe.proxy.sources.env import variables
from roomprobe.proxy.sources.pac import PacCache, discover, search_domain, wpad_urls

# OS sources a user-session app (Zoom) follows; WinHTTP is for services and is only reported.
USER_SOURCES = ("env", "wininet", "macos", "gnome")


def env_proxies() -> dict[str, str]:
    """``*_proxy`` variables; the lowercase spelling wins, as curl and most tools do."""
    return {name: value for name, (_, value) in variables().items()}


@dataclass
class Resolver:
    """Sources, WPAD discovery and PAC evaluation, each done once and cached (thread-safe).

    ``wpad``: ``auto`` (discover only when a source asks for auto-detect), ``on`` or ``off``;
    ``wpad_domain``/``wpad_url`` override the DNS search domain (tests, odd networks).
    """

    pac_timeout: float = 2.0
    wpad: str = "auto"
    wpad_domain: str = ""
    wpad_url: str = ""
    wpad_timeout: float = 1.5
    os_sources: bool = True
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _sources: list[Source] | None = field(default=None, repr=False)
    _wpad: dict[str, Any] | None = field(default=None, repr=False)
    pacs: PacCache = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.pacs = PacCache(lambda: self.pac_timeout)

    def sources(self) -> list[Source]:
        """Every source of this OS, environment first (the environment is read on every call, the
        OS sources, which run commands, once)."""
        from roomprobe.proxy.sources import env

        with self._lock:
            if self._sources is None:
                self._sources = system_sources()[1:] if self.os_sources else []
            return [env.read(), *self._sources]

    def effective(self) -> Source | None:
        """The source a user-session app follows: the environment when set, else the first
        active per-user OS source."""
        for src in self.sources():
            if src.name in USER_SOURCES and src.active:
                return src
        return None

    def wpad_info(self, wanted: bool | None = None) -> dict[str, Any]:
        """WPAD discovery (once): ``{"mode", "domain", "candidates", "found", "tried"}``."""
        if wanted is None:
            wanted = self.wpad == "on" or (self.wpad == "auto" and any(
                s.auto_detect for s in self.sources()))
        with self._lock:
            if self._wpad is not None:
                return self._wpad
            info: dict[str, Any] = {"mode": self.wpad}
            if wanted and self.wpad != "off":
                domain = self.wpad_domain or search_domain()
                urls = [self.wpad_url] if self.wpad_url else wpad_urls(domain) if domain else []
                found, tried = discover(urls, self.wpad_timeout, self.pacs)
                info.update(domain=domain or None, candidates=urls, found=found, tried=tried)
            self._wpad = info
            return info

    def route(self, src: Source, url: str) -> Route:
        """Which proxies ``src`` uses for ``url`` (WPAD looked up when the source auto-detects)."""
        wpad = self.wpad_info()["found"] if src.auto_detect and self.wpad != "off" else None
        return route(src, url, self.pacs, wpad_url=wpad)

    def route_for(self, url: str) -> Route:
        """The route a user-session app takes for ``url``; never raises."""
        try:
            src = self.effective()
            return Route(None, "direct") if src is None else self.route(src, url)
        except Exception as exc:  # an unreadable source must not crash the probe that asks
            return Route(None, "invalid", f"proxy settings unreadable: {type(exc).__name__}: {exc}")

    def proxy_for(self, url: str) -> str | None:
        """The first proxy for ``url`` (None: direct, or a setting that is no usable proxy URL)."""
        return self.route_for(url).proxy


_default: Resolver | None = None
_default_lock = threading.Lock()


def resolver() -> Resolver:
    """The process-wide resolver every probe shares."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Resolver()
        return _default


def reset() -> None:
    """Forget cached sources, WPAD and PAC answers (tests; a long-running server between checks)."""
    global _default
    with _default_lock:
        _default = None


def effective_source() -> Source | None:
    """The source a user-session app would follow (see ``Resolver.effective``)."""
    return resolver().effective()


def route_for(url: str) -> Route:
    """The route (first proxy, full fallback chain, how it was decided) for ``url``."""
    return resolver().route_for(url)


def proxy_for(url: str) -> str | None:
    """The proxy URL the system would use for ``url``, or None for a direct connection."""
    return resolver().proxy_for(url)
