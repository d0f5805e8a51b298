"""Linux desktops: GNOME's proxy settings (``gsettings list-recursively org.gnome.system.proxy``).

Only ``mode 'manual'`` (fixed proxies) and ``mode 'auto'`` (PAC URL, or WPAD when empty) send
traffic through a proxy; ``none`` is direct whatever the host fields say.
"""

from __future__ import annotations

import ast
import shutil
import subprocess

from roomprobe.proxy.sources import Source

SCHEMA = "org.gnome.system.proxy"


def _value(text: str) -> object:
    text = text.strip()
    if text in ("true", "false"):
        return text == "true"
    for prefix in ("@as ", "uint32 "):
        text = text.removeprefix(prefix)
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_gsettings(text: str) -> Source:
    """``gsettings list-recursively org.gnome.system.proxy`` -> the GNOME source."""
    vals: dict[str, object] = {}
    for line in text.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[0].startswith(SCHEMA):
            sub = parts[0][len(SCHEMA):].lstrip(".")
            vals[f"{sub}.{parts[1]}" if sub else parts[1]] = _value(parts[2])
    ignore = vals.get("ignore-hosts") or []
    src = Source("gnome", f"gsettings {SCHEMA}", bypass=list(ignore) if isinstance(ignore, list) else [])
    mode = vals.get("mode")
    if mode == "manual":
        for scheme in ("http", "https"):
            host, port = vals.get(f"{scheme}.host"), vals.get(f"{scheme}.port")
            if host:
                user = vals.get("http.authentication-user") if scheme == "http" and vals.get(
                    "http.use-authentication") else None
                cred = f"{user}:{vals.get('http.authentication-password', '')}@" if user else ""
                src.proxies[scheme] = f"http://{cred}{host}:{port}"
        if vals.get("socks.host"):
            src.proxies.setdefault("all", f"socks5://{vals['socks.host']}:{vals.get('socks.port')}")
    elif mode == "auto":
        src.pac_url = str(vals.get("autoconfig-url") or "") or None
        src.auto_detect = src.pac_url is None
    return src


def read() -> Source | None:
    """The live GNOME source, or None when gsettings or the schema is not installed."""
    if shutil.which("gsettings") is None:
        return None
    out = subprocess.run(["gsettings", "list-recursively", SCHEMA], capture_output=True, text=True,
                         timeout=2, check=False)
    return parse_gsettings(out.stdout) if out.returncode == 0 and out.stdout else None
