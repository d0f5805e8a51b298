"""macOS: the system proxy configuration as ``scutil --proxy`` prints it.

Covers fixed HTTP/HTTPS/SOCKS proxies, the PAC URL (ProxyAutoConfigURLString), auto-discovery
(WPAD) and the ExceptionsList bypass entries.
"""

from __future__ import annotations

import re

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
    src = Source("macos", "scutil --proxy", bypass=lists.get("ExceptionsList", []))
    for kind, scheme, url_scheme in (("HTTP", "http", "http"), ("HTTPS", "https", "http"),
                                     ("SOCKS", "all", "socks5")):
        if values.get(f"{kind}Enable") == "1" and values.get(f"{kind}Proxy"):
            port = values.get(f"{kind}Port", "8080" if kind != "SOCKS" else "1080")
            if not (scheme == "all" and src.proxies):
                src.proxies[scheme] = f"{url_scheme}://{values[f'{kind}Proxy']}:{port}"
    if values.get("ProxyAutoConfigEnable") == "1":
        src.pac_url = values.get("ProxyAutoConfigURLString") or None
    src.auto_detect = values.get("ProxyAutoDiscoveryEnable") == "1"
    return src


def read() -> Source:
    """The live macOS source; a failing scutil is this source's error, not an exception."""
    out = oscmd.run(["scutil", "--proxy"], timeout=5.0)
    if out.error:
        return Source("macos", "scutil --proxy", error=out.error)
    return parse_scutil(out.text)
