"""Which DNS resolvers this host is configured with, and what its hosts file pins.

The dns probe asks every configured resolver separately (a room with one good and one dead
resolver fails over slowly, and only a per-resolver view shows which one is at fault). Where
the list comes from, by OS:

- Linux and other Unixes: dnspython reading /etc/resolv.conf.
- Windows: dnspython reading the registry, kept to the servers of adapters that are up
  (GetAdaptersAddresses, else ``ipconfig /all``): the registry also holds the servers of
  disconnected and disabled adapters, which Windows does not ask.
- macOS: ``scutil --dns`` (the resolver configuration the system really uses; /etc/resolv.conf
  there is only a partial copy). Per-domain ("Supplemental", mDNS ``local``, reverse zones) and
  scoped resolvers are not the default path for public names, so only the general ones count.

The hosts file is read directly so an override is evidence ("zoom.us is pinned on line 3"),
not an inference from differing answers.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
from pathlib import Path
from typing import Any

from roomprobe.core import oscmd

__all__ = ["system_resolvers", "parse_scutil_dns", "general_nameservers", "hosts_path",
           "parse_hosts", "parse_resolver_spec", "windows_up_resolvers"]

_KEY_RE = re.compile(r"^\s*(?P<key>[a-z_ ]+?)(?:\[(?P<idx>\d+)\])?\s*:\s*(?P<value>.*?)\s*$")


def parse_scutil_dns(text: str) -> list[dict[str, Any]]:
    """Parse ``scutil --dns``: one dict per resolver block, in order, with its section.

    Each dict has ``section`` ("default", "scoped" or "service-specific"), ``number``,
    ``nameservers`` (list), ``search`` (list), and when present ``domain``, ``flags`` (list),
    ``if_index``, ``interface``, ``options``, ``order``, ``port``.
    """
    section = "default"
    out: list[dict[str, Any]] = []
    cur: dict[str, Any] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("DNS configuration"):
            section = ("scoped" if "scoped" in stripped else
                       "service-specific" if "service-specific" in stripped else "default")
            cur = None
            continue
        m = re.match(r"^resolver #(\d+)$", stripped)
        if m:
            cur = {"section": section, "number": int(m.group(1)), "nameservers": [], "search": []}
            out.append(cur)
            continue
        if cur is None:
            continue
        km = _KEY_RE.match(line)
        if not km:
            continue
        key, value = km.group("key").strip(), km.group("value")
        if key == "nameserver":
            cur["nameservers"].append(value)
        elif key == "search domain":
            cur["search"].append(value)
        elif key == "flags":
            cur["flags"] = [f.strip() for f in value.split(",") if f.strip()]
        elif key == "if_index":
            im = re.match(r"^(\d+)\s*\((.*)\)$", value)
            if im:
                cur["if_index"], cur["interface"] = int(im.group(1)), im.group(2)
        elif key in ("order", "port", "timeout"):
            if value.isdigit():
                cur[key] = int(value)
        elif key in ("domain", "options"):
            cur[key] = value
    return out


def general_nameservers(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The resolvers macOS uses for an ordinary public name such as zoom.us.

    Those are default-section blocks without a ``domain`` (per-domain and reverse zones), not
    mDNS and not flagged Supplemental (VPN split DNS), in ``order``; duplicates dropped. When
    the default section has no nameserver at all (seen with a VPN whose only resolvers are
    scoped to its utun interface), the scoped resolvers are what answers: those are returned,
    marked "scoped". Entries that are not IP addresses (edited placeholders) are skipped.
    """
    picked = [b for b in blocks if b["section"] == "default" and "domain" not in b
              and b.get("options") != "mdns" and "Supplemental" not in b.get("flags", [])]
    out = _nameservers(picked, "scutil --dns resolver")
    if not out:
        scoped = [b for b in blocks if b["section"] == "scoped" and "domain" not in b]
        out = _nameservers(scoped, "scutil --dns scoped resolver")
    return out


def _nameservers(picked: list[dict[str, Any]], label: str) -> list[dict[str, Any]]:
    picked = sorted(picked, key=lambda b: (b.get("order", 10**9), b["number"]))
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    for b in picked:
        for ns in b["nameservers"]:
            try:
                ipaddress.ip_address(ns.split("%", 1)[0])
            except ValueError:
                continue
            key = (ns, int(b.get("port", 53)))
            if key in seen:
                continue
            seen.add(key)
            out.append({"address": ns, "port": key[1],
                        "source": f"{label} #{b['number']}"
                                  + (f" ({b['interface']})" if b.get("interface") else "")})
    return out


def _macos_resolvers() -> list[dict[str, Any]]:
    out = oscmd.run(["scutil", "--dns"], timeout=3.0)
    return general_nameservers(parse_scutil_dns(out.text)) if out.ok else []


def _norm(address: str) -> str:
    base = address.split("%", 1)[0]
    try:
        return str(ipaddress.ip_address(base))
    except ValueError:
        return base


def windows_up_resolvers(registry: list[dict[str, Any]], adapters: list[dict[str, Any]],
                         label: str = "adapters") -> tuple[list[dict[str, Any]], str | None]:
    """Keep the registry's resolvers that belong to an adapter that is up; (resolvers, problem).

    ``adapters``: {"name", "up", "dns_servers"} records (GetAdaptersAddresses or ``ipconfig
    /all``). None known (unreadable): the registry list unchanged. The registry order is kept
    and each source names its adapter; when the registry has none of the up adapters' servers
    (a changed registry layout), the adapters' own list is used. No up adapter with a server:
    nothing, and the problem names what was left out.
    """
    if not adapters:
        return registry, None
    owner: dict[str, str] = {}
    ordered: list[str] = []
    for a in adapters:
        if not a.get("up"):
            continue
        for ns in a.get("dns_servers") or []:
            key = _norm(str(ns))
            if key not in owner:
                owner[key] = str(a.get("name") or "?")
                ordered.append(key)
    kept = [{**r, "source": f"{r.get('source', 'registry')} ({owner[_norm(str(r['address']))]})"}
            for r in registry if _norm(str(r["address"])) in owner]
    if kept:
        return kept, None
    if ordered:
        return [{"address": ns, "port": 53, "source": f"{label} ({owner[ns]})"} for ns in ordered], None
    left = ", ".join(str(r["address"]) for r in registry)
    return [], ("no connected network adapter has a DNS server"
                + (f" (the registry lists {left} on adapters that are down)" if left else ""))


def _windows_filter(found: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
    """The registry's list kept to adapters that are up; the adapter data read under a guard."""
    try:
        from roomprobe.net.osnet import _windows

        records, label = _windows.adapter_records()
    except Exception:  # adapter data unreadable: the registry's list as it is
        return found, None
    return windows_up_resolvers(found, records, label)


def system_resolvers() -> tuple[list[dict[str, Any]], str | None]:
    """(resolvers, problem): each resolver is {"address", "port", "source"}.

    ``problem`` says why the list is empty (no configuration file, no nameserver lines).
    """
    if sys.platform == "darwin":
        found = _macos_resolvers()
        if found:
            return found, None
    import dns.resolver

    source = "registry" if sys.platform == "win32" else "/etc/resolv.conf"
    try:
        res = dns.resolver.Resolver(configure=True)
    except dns.resolver.NoResolverConfiguration as exc:
        return [], f"{source}: {exc or 'no nameservers'}"
    except OSError as exc:
        return [], f"{source}: {exc.strerror or exc}"
    out: list[dict[str, Any]] = []
    for ns in res.nameservers:
        addr = str(getattr(ns, "address", ns))
        port = int(getattr(ns, "port", res.port) or 53)
        out.append({"address": addr, "port": port, "source": source})
    if not out:
        return [], f"{source}: no nameservers"
    if sys.platform == "win32":
        return _windows_filter(out)
    return out, None


def parse_resolver_spec(spec: str) -> dict[str, Any]:
    """``ADDR`` or ``ADDR#PORT`` (dnsmasq's notation, unambiguous for IPv6) into a resolver dict.

    Raises ValueError with a readable message on anything else.
    """
    addr, _, port_s = spec.strip().partition("#")
    try:
        ipaddress.ip_address(addr.split("%")[0])
    except ValueError:
        raise ValueError(f"{spec!r} is not an IP address (ADDR or ADDR#PORT)") from None
    port = 53
    if port_s:
        if not port_s.isdigit() or not 0 < int(port_s) < 65536:
            raise ValueError(f"{spec!r}: bad port {port_s!r}")
        port = int(port_s)
    return {"address": addr, "port": port, "source": "config"}


def hosts_path() -> Path:
    """The hosts file the OS resolver reads."""
    if sys.platform == "win32":
        root = os.environ.get("SYSTEMROOT", r"C:\Windows")
        return Path(root) / "System32" / "drivers" / "etc" / "hosts"
    return Path("/etc/hosts")


def parse_hosts(text: str) -> dict[str, list[dict[str, Any]]]:
    """Hosts-file entries by lower-case name: [{"address", "line"}], comments ignored."""
    out: dict[str, list[dict[str, Any]]] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        fields = raw.split("#", 1)[0].split()
        if len(fields) < 2:
            continue
        try:
            ipaddress.ip_address(fields[0].split("%")[0])
        except ValueError:
            continue
        for name in fields[1:]:
            out.setdefault(name.lower().rstrip("."), []).append({"address": fields[0], "line": lineno})
    return out
