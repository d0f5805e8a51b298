"""macOS: the system proxy configuration, from SystemConfiguration or ``scutil --proxy``.

Structured first: ``SCDynamicStoreCopyProxies`` through pyobjc (installed on macOS only, by a
platform marker) returns the dictionary ``scutil --proxy`` prints; without pyobjc, or when the
call fails, the command's text is parsed. Both land in :func:`source_from_dict`: fixed
HTTP/HTTPS/SOCKS proxies, the PAC URL (ProxyAutoConfigURLString), auto-discovery (WPAD) and
the ExceptionsList bypass entries.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from roomprobe.core import oscmd
from roomprobe.net.proxysrc import Source

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
    src = Source("macos", origin, bypass=bypass)
    for kind, scheme, url_scheme in (("HTTP", "http", "http"), ("HTTPS", "https", "http"),
                                     ("SOCKS", "all", "socks5")):
        host = _text(values.get(f"{kind}Proxy"))
        if _flag(values.get(f"{kind}Enable")) and host:
            port = _text(values.get(f"{kind}Port")) or ("8080" if kind != "SOCKS" else "1080")
            if not (scheme == "all" and src.proxies):
                src.proxies[scheme] = f"{url_scheme}://{host}:{port}"
    if _flag(values.get("ProxyAutoConfigEnable")):
        src.pac_url = _text(values.get("ProxyAutoConfigURLString")) or None
    src.auto_detect = _flag(values.get("ProxyAutoDiscoveryEnable"))
    return src


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
    if out.error:
        return Source("macos", "scutil --proxy", error=out.error)
    return parse_scutil(out.text)
