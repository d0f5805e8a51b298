"""Windows: WinINet per-user settings (HKCU Internet Settings) and WinHTTP machine-wide settings.

They differ on purpose: browsers and Zoom's UI use the logged-in user's WinINet settings, while
services and scheduled tasks use WinHTTP (``netsh winhttp show proxy``) or a different HKCU.
The parsers work on the text of ``reg query`` and ``netsh`` so they are tested on recorded output.
"""

from __future__ import annotations

import re
import subprocess

from roomprobe.net.proxysrc import Source, normalise_proxy
from roomprobe.net.proxysrc.bypass import split_list

INTERNET_SETTINGS = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Internet Settings"
CONNECTIONS = INTERNET_SETTINGS + r"\Connections"
WINHTTP_KEY = r"HKLM\Software\Microsoft\Windows\CurrentVersion\Internet Settings\Connections"

_REG_LINE = re.compile(r"^\s{2,}(?P<name>\S(?:.*?\S)?)\s{2,}(?P<type>REG_\w+)\s{2,}?(?P<value>.*)$")


def parse_reg_query(text: str) -> dict[str, str]:
    """``reg query KEY`` output -> {value name: value text} (DWORDs as ints in text, e.g. ``1``)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = _REG_LINE.match(line)
        if not m:
            continue
        value = m.group("value").strip()
        if m.group("type") == "REG_DWORD":
            value = str(int(value, 16))
        out[m.group("name")] = value
    return out


def parse_proxy_server(value: str) -> dict[str, str]:
    """WinINet/WinHTTP ``ProxyServer``: ``host:port`` (every scheme) or ``http=h:p;https=h:p``."""
    out: dict[str, str] = {}
    for part in (p.strip() for p in value.replace(" ", ";").split(";")):
        if not part:
            continue
        if "=" in part:
            scheme, _, hostport = part.partition("=")
            scheme = scheme.strip().lower()
            kind = "socks" if scheme == "socks" else "http"
            out[scheme] = normalise_proxy(hostport, kind)
        else:
            out["all"] = normalise_proxy(part)
    return out


def connection_flags(blob_hex: str) -> int | None:
    """Flags of a DefaultConnectionSettings/WinHttpSettings blob (0x2 proxy, 0x4 PAC, 0x8 auto-detect)."""
    try:
        blob = bytes.fromhex(blob_hex.strip())
    except ValueError:
        return None
    return blob[8] if len(blob) > 8 else None


def wininet_source(values: dict[str, str], connections: dict[str, str] | None = None,
                   origin: str = INTERNET_SETTINGS) -> Source:
    """The per-user WinINet source from the ``Internet Settings`` values."""
    src = Source("wininet", origin)
    if values.get("ProxyEnable") == "1" and values.get("ProxyServer"):
        src.proxies = parse_proxy_server(values["ProxyServer"])
    if values.get("ProxyOverride"):
        src.bypass = split_list(values["ProxyOverride"])
    src.pac_url = values.get("AutoConfigURL") or None
    auto = values.get("AutoDetect") == "1"
    flags = connection_flags((connections or {}).get("DefaultConnectionSettings", ""))
    if flags is not None:
        auto = auto or bool(flags & 0x08)
    src.auto_detect = auto
    return src


def parse_winhttp_blob(blob_hex: str) -> Source:
    """The ``WinHttpSettings`` REG_BINARY: version, counter, flags, proxy string, bypass string."""
    src = Source("winhttp", WINHTTP_KEY + r"\WinHttpSettings")
    try:
        blob = bytes.fromhex(blob_hex.strip())
        flags = int.from_bytes(blob[8:12], "little")
        plen = int.from_bytes(blob[12:16], "little")
        proxy = blob[16:16 + plen].decode("ascii", "replace")
        off = 16 + plen
        blen = int.from_bytes(blob[off:off + 4], "little")
        bypass = blob[off + 4:off + 4 + blen].decode("ascii", "replace")
    except (ValueError, IndexError) as exc:
        src.error = f"unreadable WinHttpSettings: {exc}"
        return src
    if flags & 0x02 and proxy:
        src.proxies = parse_proxy_server(proxy)
        src.bypass = split_list(bypass)
    return src


def parse_netsh_winhttp(text: str) -> Source:
    """``netsh winhttp show proxy`` output (English): direct access, or proxy and bypass list."""
    src = Source("winhttp", "netsh winhttp show proxy")
    proxy = re.search(r"Proxy Server\(s\)\s*:\s*(\S.*?)\s*$", text, re.M)
    bypass = re.search(r"Bypass List\s*:\s*(\S.*?)\s*$", text, re.M)
    if proxy:
        src.proxies = parse_proxy_server(proxy.group(1))
        if bypass and bypass.group(1) != "(none)":
            src.bypass = split_list(bypass.group(1))
    elif "Direct access" not in text:
        src.error = "unrecognised netsh output: " + " ".join(text.split())[:120]
    return src


def _run(cmd: list[str]) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=3, check=False).stdout


def read() -> list[Source]:
    """The live WinINet (this user) and WinHTTP (machine) sources."""
    user = parse_reg_query(_run(["reg", "query", INTERNET_SETTINGS]))
    conns = parse_reg_query(_run(["reg", "query", CONNECTIONS, "/v", "DefaultConnectionSettings"]))
    out = [wininet_source(user, conns)]
    text = _run(["netsh", "winhttp", "show", "proxy"])
    if "WinHTTP" in text:
        out.append(parse_netsh_winhttp(text))
    else:  # localized netsh output: read the registry value instead
        blob = parse_reg_query(_run(["reg", "query", WINHTTP_KEY, "/v", "WinHttpSettings"]))
        out.append(parse_winhttp_blob(blob.get("WinHttpSettings", "")) if blob else
                   Source("winhttp", "netsh winhttp show proxy", error="unreadable"))
    return out
