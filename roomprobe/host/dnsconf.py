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
  When the default resolver has no nameserver (or none it can reach) and only scoped ones exist
  (a VPN that put its servers on its utun interface only), ordinary lookups fail on that Mac:
  that is reported as the problem, and the scoped servers are never asked as if they were
  general (they would answer our bound-less queries and make a broken Mac PASS).

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
           "parse_hosts", "parse_resolver_spec", "windows_up_resolvers", "macos_resolvers",
           "scoped_only", "SCOPED_ONLY"]

# Marks the problem "the default resolver is unusable and only scoped resolvers exist" (macOS),
# so the dns probe can give it its own finding.
SCOPED_ONLY = "only scoped resolvers exist"

_KEY_RE = re.compile(r"^\s*(?P<key>[a-z_ ]+?)(?:\[(?P<idx>\d+)\])?\s*:\s*(?P<value>.*?)\s*$")


def parse_scutil_dns(text: str) -> list[dict[str, Any]]:
    """Parse ``scutil --dns``: one dict per resolver block, in order, with its section.

    Each dict has ``section`` ("default", "scoped" or "service-specific"), ``number``,
    ``nameservers`` (list), ``search`` (list), and when present ``domain``, ``flags`` (list),
    ``if_index``, ``interface``, ``options``, ``order``, ``port``, ``reachable`` (from
    ``reach : 0x... (Reachable)``, or the bare ``Reachable`` / ``Not Reachable`` line older
    macOS prints).
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
        if stripped in ("Reachable", "Not Reachable"):
            cur["reachable"] = stripped == "Reachable"
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
        elif key == "reach":
            cur["reachable"] = "Not Reachable" not in value and "Reachable" in value
    return out


def _general_blocks(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [b for b in blocks if b["section"] == "default" and "domain" not in b
            and b.get("options") != "mdns" and "Supplemental" not in b.get("flags", [])]


def general_nameservers(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The resolvers macOS uses for an ordinary public name such as zoom.us.

    Those are default-section blocks without a ``domain`` (per-domain and reverse zones), not
    mDNS and not flagged Supplemental (VPN split DNS), in ``order``; duplicates dropped.
    Scoped resolvers are never returned: macOS asks them only for queries bound to their
    interface (see :func:`macos_resolvers`). Entries that are not IP addresses (edited
    placeholders) are skipped.
    """
    return _nameservers(_general_blocks(blocks), "scutil --dns resolver")


def macos_resolvers(blocks: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
    """(general resolvers, problem) from ``scutil --dns`` blocks.

    The problem is set when the default resolver has no nameserver, or every one it has is
    marked Not Reachable, while scoped resolvers exist: then an ordinary lookup on that Mac
    fails (seen with VPN clients that configure DNS on their utun interface only), and the
    resolvers returned are none, so nothing can PASS on servers macOS does not ask.
    """
    general = _general_blocks(blocks)
    found = _nameservers(general, "scutil --dns resolver")
    scoped = _nameservers([b for b in blocks if b["section"] == "scoped" and "domain" not in b],
                          "scutil --dns scoped resolver")
    unreachable = bool(found) and all(b.get("reachable") is False
                                      for b in general if b["nameservers"])
    if scoped and (not found or unreachable):
        where = ", ".join(f"{s['address']}" + (f" on {s['source'].rsplit('(', 1)[1].rstrip(')')}"
                                                if s["source"].endswith(")") else "")
                          for s in scoped[:4])
        default = ("has no nameserver" if not found else
                   "lists " + ", ".join(f["address"] for f in found[:4]) + " but macOS marks them"
                   " Not Reachable")
        return [], (f"the default resolver (scutil --dns) {default} and {SCOPED_ONLY} ({where}), "
                    "which macOS asks only for lookups bound to that interface: ordinary lookups "
                    "such as zoom.us fail on this Mac")
    return found, None


def scoped_only(problem: str | None) -> bool:
    """Is ``problem`` (from :func:`system_resolvers`) the macOS scoped-resolvers-only case?"""
    return bool(problem) and SCOPED_ONLY in str(problem)


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


def _macos_resolvers() -> tuple[list[dict[str, Any]], str | None]:
    out = oscmd.run(["scutil", "--dns"], timeout=3.0)
    return macos_resolvers(parse_scutil_dns(out.text)) if out.ok else ([], None)


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
        from roomprobe.host.osnet import _windows

        records, label = _windows.adapter_records()
    except Exception:  # adapter data unreadable: the registry's list as it is
        return found, None
    return windows_up_resolvers(found, records, label)


def system_resolvers() -> tuple[list[dict[str, Any]], str | None]:
    """(resolvers, problem): each resolver is {"address", "port", "source"}.

    ``problem`` says why the list is empty (no configuration file, no nameserver lines).
    """
    if sys.platform == "darwin":
        found, problem = _macos_resolvers()
        if found or problem:
            return found, problem
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
