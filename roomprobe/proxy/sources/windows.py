"""Windows: WinINet per-user settings (HKCU Internet Settings) and WinHTTP machine-wide settings.

They differ on purpose: browsers and Zoom's UI use the logged-in user's WinINet settings, while
services and scheduled tasks use WinHTTP (``netsh winhttp show proxy``) or a different HKCU.
Both are read from the registry with ``winreg`` (language-independent; WinHTTP's binary
WinHttpSettings blob is decoded here), falling back to ``reg query`` and ``netsh`` through
roomprobe.core.oscmd (OEM code page) whose text parsers match by structure, not English words,
and are tested on recorded real output in several languages.
"""

from __future__ import annotations

import re

from roomprobe.core import oscmd
from roomprobe.host.osnet import winuser
from roomprobe.host.osnet.winuser import Registry
from roomprobe.proxy.sources import Source, normalise_proxy
from roomprobe.proxy.sources.bypass import split_list

USER_SUB = r"Software\Microsoft\Windows\CurrentVersion\Internet Settings"
INTERNET_SETTINGS = "HKCU\\" + USER_SUB
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


_NONE_VALUE = re.compile(r"^\(\s*[^;.:/\s]+\s*\)$")  # "(none)", "(なし)", "(keine)"


def parse_netsh_winhttp(text: str) -> Source:
    """``netsh winhttp show proxy`` output, in any language, matched by structure.

    The header line names "WinHTTP" (a product name, untranslated) and ends with a colon.
    Direct access is a sentence with no "key : value" line after it. A proxy is two
    "key : value" lines: the proxy server(s) first, then the bypass list, where a single
    parenthesised word ("(none)", "(なし)") means no list.
    """
    src = Source("winhttp", "netsh winhttp show proxy")
    lines = [ln.replace("\uff1a", ":").replace("\xa0", " ") for ln in text.splitlines()]
    head = next((i for i, ln in enumerate(lines) if "WinHTTP" in ln and ln.rstrip().endswith(":")), None)
    if head is None:
        src.error = "unrecognised netsh output: " + " ".join(text.split())[:120]
        return src
    body = [ln.strip() for ln in lines[head + 1:] if ln.strip()]
    pairs = [(k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in body) if _]
    pairs = [(k, v) for k, v in pairs if k and v]
    if not pairs:
        if not body:
            src.error = "netsh printed the WinHTTP header and nothing else"
        return src  # "Direct access (no proxy server)." in the user's language
    proxy = pairs[0][1]
    if not re.search(r"[\w\].-]+:\d+|=", proxy):
        src.error = "unrecognised netsh proxy line: " + proxy[:120]
        return src
    src.proxies = parse_proxy_server(proxy)
    if len(pairs) > 1 and not _NONE_VALUE.match(pairs[1][1]):
        src.bypass = split_list(pairs[1][1])
    return src


def _reg_values(key: str, names: tuple[str, ...] | None = None) -> dict[str, str]:
    """Values of an HKCU/HKLM key through winreg, as ``parse_reg_query`` gives them.

    DWORDs become decimal text and binaries hex, so one code path serves both readers.
    Raises OSError (key missing, access denied) or ImportError (not Windows).
    """
    from roomprobe.host.osnet.winuser import WinReg

    return WinReg().values(key, names)


def _reg_query(key: str, value: str | None = None) -> dict[str, str]:
    """The registry through ``reg query`` (oscmd: OEM code page, timeout, never raises)."""
    cmd = ["reg", "query", key] + (["/v", value] if value else [])
    out = oscmd.run(cmd, timeout=5.0)
    if out.error and value is None:
        raise OSError(out.error)
    return parse_reg_query(out.text)


def _wininet_at(reg: Registry, base: str) -> Source:
    r"""The WinINet source from ``base`` (``HKCU\...`` or ``HKU\<SID>\...`` Internet Settings)."""
    try:
        values = reg.values(base)
    except OSError as exc:
        return Source("wininet", "registry " + base, error=f"unreadable: {exc}")
    try:
        conns = reg.values(base + r"\Connections", ("DefaultConnectionSettings",))
    except OSError:
        conns = {}
    return wininet_source(values, conns, "registry " + base)


def wininet_from_registry(reg: Registry, me: str, as_system: bool, zoom_owners: list[str]) -> Source:
    r"""The WinINet settings the Zoom Rooms app uses, and whose they are (``Source.user``).

    As a normal account: this account's HKCU (the app's own when --run-as names its user).
    As SYSTEM (a task scheduled without --run-as): the Zoom Rooms user's hive ``HKU\<SID>``
    (found by :func:`roomprobe.host.osnet.winuser.find_room_user`). If that user is known but
    its hive is not loaded, the source is an error (SYSTEM's own settings would describe another
    path than the app's); if no Zoom Rooms user exists at all, SYSTEM's own settings are read
    and ``user`` says so.
    """
    if not as_system:
        src = _wininet_at(reg, INTERNET_SETTINGS)
        src.user = me
        return src
    room = winuser.find_room_user(reg, zoom_owners)
    if room.sid and room.error is None:
        src = _wininet_at(reg, f"HKU\\{room.sid}\\{USER_SUB}")
        src.user = room.label()
        return src
    if room.name or room.sid:  # the app's user exists, its settings cannot be read now
        return Source("wininet", "registry HKU\\<Zoom Rooms user>\\" + USER_SUB, user=room.label(),
                      error=f"running as SYSTEM and {room.error}; schedule the check with "
                            f"--run-as {room.name or 'THE-ROOM-USER'}, or run it while that user is logged on")
    src = _wininet_at(reg, INTERNET_SETTINGS)
    src.user = f"SYSTEM ({room.error}: these are SYSTEM's own settings, not the Zoom Rooms app's)"
    return src


def _whoami() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no USERNAME variable: the report still says whose settings it read
        return "this account"


def read_wininet() -> Source:
    """The Zoom Rooms user's WinINet settings: winreg first, ``reg query`` when winreg is unavailable."""
    try:
        reg = winuser.WinReg()
    except ImportError:
        reg = None
    if reg is not None:
        system = winuser.running_as_system()
        owners = winuser.zoom_rooms_owners() if system else []
        return wininet_from_registry(reg, _whoami(), system, owners)
    user = _reg_query(INTERNET_SETTINGS)
    conns = _reg_query(CONNECTIONS, "DefaultConnectionSettings")
    src = wininet_source(user, conns, "reg query " + INTERNET_SETTINGS)
    src.user = _whoami()
    return src


def read_winhttp() -> Source:
    """Machine-wide WinHTTP: the WinHttpSettings blob (no language involved), else netsh."""
    try:
        blob = _reg_values(WINHTTP_KEY, ("WinHttpSettings",)).get("WinHttpSettings")
    except ImportError:  # no winreg (a test, an odd build): reg query reads the same value
        blob = _reg_query(WINHTTP_KEY, "WinHttpSettings").get("WinHttpSettings")
    except OSError:  # never configured (no value) or access denied: netsh answers
        blob = None
    if blob:
        src = parse_winhttp_blob(blob)
        if src.error is None:
            return src
    out = oscmd.run(["netsh", "winhttp", "show", "proxy"], timeout=5.0)
    src = parse_netsh_winhttp(out.text)
    if out.error and src.error:
        src.error = out.error
    return src


# Each reader is guarded on its own by proxysrc.system_sources: one failing never hides the other.
READERS = (("wininet", INTERNET_SETTINGS, read_wininet), ("winhttp", WINHTTP_KEY, read_winhttp))


def read() -> list[Source]:
    """The live WinINet (this user) and WinHTTP (machine) sources, each read on its own."""
    from roomprobe.proxy.sources import guarded

    return [guarded(name, origin, fn) for name, origin, fn in READERS]
