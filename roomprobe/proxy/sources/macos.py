"""macOS: the system proxy configuration, from SystemConfiguration or ``scutil --proxy``.

Structured first: ``SCDynamicStoreCopyProxies`` through pyobjc (installed on macOS only, by a
platform marker) returns the dictionary ``scutil --proxy`` prints; without pyobjc, or when the
call fails, the command's text is parsed. Both land in :func:`source_from_dict`: fixed
HTTP/HTTPS/SOCKS proxies (every enabled one is kept: CFNetwork sends http:// to the HTTP proxy,
https:// to the HTTPS one and everything else, or a scheme without its own proxy, to SOCKS), the
PAC URL (ProxyAutoConfigURLString), auto-discovery (WPAD), the ExceptionsList bypass entries and
ExcludeSimpleHostnames ("Exclude simple hostnames": a name without a dot goes direct, which the
bypass list spells ``<local>`` as WinINet does).

When ``scutil`` cannot be run either, ``networksetup -getwebproxy`` / ``-getsecurewebproxy`` /
``-getsocksfirewallproxy`` per network service (in the order ``-listnetworkserviceorder``
gives, disabled services skipped) is the last source: it knows the fixed proxies only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from roomprobe.core import oscmd
from roomprobe.proxy.sources import Source

# (SCDynamicStore key prefix, Source.proxies key, proxy URL scheme)
_KINDS = (("HTTP", "http", "http"), ("HTTPS", "https", "http"), ("SOCKS", "all", "socks5"))
_NETWORKSETUP = (("HTTP", "-getwebproxy"), ("HTTPS", "-getsecurewebproxy"),
                 ("SOCKS", "-getsocksfirewallproxy"))
MAX_SERVICES = 16  # a Mac with more network services than this is no room Mac: stop asking

_KV = re.compile(r"^\s*(?P<key>[\w]+)\s*:\s*(?P<value>.*?)\s*$")
_ITEM = re.compile(r"^\s*\d+\s*:\s*(?P<value>.*?)\s*$")


def parse_scutil(text: str) -> Source:
    """``scutil --proxy`` output -> the macOS source."""
    values: dict[str, str] = {}
    lists: dict[str, list[str]] = {}
    current: str | None = None
    for line in text.splitlines():
        if current is not None:
            if line.strip() == "}":
                current = None
                continue
            m = _ITEM.match(line)
            if m:
                lists[current].append(m.group("value"))
            continue
        m = _KV.match(line)
        if not m:
            continue
        if m.group("value").startswith("<array>"):
            current = m.group("key")
            lists[current] = []
        else:
            values[m.group("key")] = m.group("value")
    return source_from_dict({**values, **lists}, "scutil --proxy")


def _flag(value: Any) -> bool:
    """An NSNumber/int/bool 1 or the text "1" is on; anything else is off."""
    if isinstance(value, bool):
        return value
    try:
        return int(str(value).strip()) == 1
    except ValueError:
        return False


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def source_from_dict(values: Mapping[str, Any], origin: str) -> Source:
    """The proxy dictionary (SCDynamicStoreCopyProxies' NSDictionary, or scutil's text parsed
    into one) to the macOS source. Values may be NSNumber/int or text; ExceptionsList a list."""
    exceptions = values.get("ExceptionsList")
    bypass = ([_text(x) for x in exceptions if _text(x)]
              if exceptions is not None and not isinstance(exceptions, (str, bytes)) else [])
    if _flag(values.get("ExcludeSimpleHostnames")) and "<local>" not in bypass:
        bypass.append("<local>")
    src = Source("macos", origin, bypass=bypass)
    for kind, scheme, url_scheme in _KINDS:
        host = _text(values.get(f"{kind}Proxy"))
        if _flag(values.get(f"{kind}Enable")) and host:
            port = _text(values.get(f"{kind}Port")) or ("8080" if kind != "SOCKS" else "1080")
            # SOCKS is kept beside HTTP/HTTPS: route() asks the scheme's own proxy first and
            # falls back to "all", which is what CFNetwork does with SOCKS.
            src.proxies[scheme] = f"{url_scheme}://{host}:{port}"
            src.settings[scheme] = f"{kind}Proxy"
    if _flag(values.get("ProxyAutoConfigEnable")):
        src.pac_url = _text(values.get("ProxyAutoConfigURLString")) or None
    src.auto_detect = _flag(values.get("ProxyAutoDiscoveryEnable"))
    return src


def parse_networksetup_proxy(text: str) -> dict[str, str]:
    """One ``networksetup -getwebproxy SERVICE`` (or -getsecurewebproxy, -getsocksfirewallproxy)
    answer: ``Enabled: Yes|No``, ``Server: HOST``, ``Port: N``, ``Authenticated Proxy Enabled:
    0|1`` (the format networksetup(8) documents). Returns {"Enabled", "Server", "Port"} as printed;
    lines without a colon (``** Error: ...``) are ignored."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("Enabled", "Server", "Port"):
            out[key.strip()] = value.strip()
    return out


def parse_service_order(text: str) -> list[str]:
    """``networksetup -listnetworkserviceorder``: the enabled services, in the order macOS tries
    them. Service lines read ``(1) Wi-Fi``; a disabled one ``(*) Thunderbolt Bridge``."""
    out: list[str] = []
    for line in text.splitlines():
        m = re.match(r"^\((\d+)\)\s+(.+?)\s*$", line)
        if m:
            out.append(m.group(2))
    return out


def source_from_networksetup(answers: Mapping[str, str], service: str) -> Source:
    """The three ``networksetup -get*proxy SERVICE`` answers (verb -> text) to the macOS source.

    networksetup prints no PAC URL, auto-discovery or bypass list in these answers, so only the
    fixed proxies are known; the origin says so."""
    values: dict[str, str] = {}
    for kind, verb in _NETWORKSETUP:
        got = parse_networksetup_proxy(answers.get(verb, ""))
        values[f"{kind}Enable"] = "1" if got.get("Enabled", "").lower() == "yes" else "0"
        values[f"{kind}Proxy"] = got.get("Server", "")
        port = got.get("Port", "")
        values[f"{kind}Port"] = port if port.isdigit() and port != "0" else ""
    return source_from_dict(values, f"networksetup -get*proxy {service!r} (fixed proxies only)")


def _networksetup() -> Source:
    """The fixed proxies of the first enabled network service that has one (service order)."""
    order = oscmd.run(["networksetup", "-listnetworkserviceorder"], timeout=5.0)
    if order.error:
        return Source("macos", "networksetup", error=order.error)
    services = parse_service_order(order.text)[:MAX_SERVICES]
    first: Source | None = None
    for service in services:
        answers = {verb: oscmd.run(["networksetup", verb, service], timeout=5.0).text
                   for _, verb in _NETWORKSETUP}
        src = source_from_networksetup(answers, service)
        if src.proxies:
            return src
        first = first or src
    return first or Source("macos", "networksetup", error="networksetup lists no enabled network service")


def _systemconfiguration() -> Mapping[str, Any] | None:  # pragma: no cover - macOS with pyobjc
    """SCDynamicStoreCopyProxies(None) as a plain dict; None when pyobjc is not installed."""
    try:
        import SystemConfiguration  # type: ignore[import-not-found]
    except ImportError:
        return None
    found = SystemConfiguration.SCDynamicStoreCopyProxies(None)
    return dict(found) if found is not None else None


def read() -> Source:
    """The live macOS source; a failing source is this source's error, not an exception."""
    try:
        values = _systemconfiguration()
    except Exception:  # pyobjc present but the call failed: scutil still answers
        values = None
    if values is not None:
        return source_from_dict(values, "SCDynamicStoreCopyProxies")
    out = oscmd.run(["scutil", "--proxy"], timeout=5.0)
    if not out.error:
        return parse_scutil(out.text)
    fallback = _networksetup()
    if fallback.error:
        return Source("macos", "scutil --proxy", error=f"{out.error}; {fallback.error}")
    return fallback
