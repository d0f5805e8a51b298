"""The resolvers this host is configured to use, per OS.

dnspython reads resolv.conf (Linux, and macOS's generated copy) and the registry (Windows). On
macOS the truth is ``scutil --dns`` (per-interface and scoped resolvers), parsed here and tested
on a recorded output.
"""

from __future__ import annotations

import re
import subprocess
import sys


def parse_scutil_dns(text: str) -> list[str]:
    """Nameservers of the main resolver configuration (before "DNS configuration (for scoped
    queries)"), in order, without duplicates."""
    main = text.split("DNS configuration (for scoped queries)", 1)[0]
    out: list[str] = []
    current_is_domain_specific = False
    for line in main.splitlines():
        line = line.strip()
        if line.startswith("resolver #"):
            current_is_domain_specific = False
        elif line.startswith("domain") and ":" in line:
            current_is_domain_specific = True  # e.g. "local" mDNS resolvers, per-domain VPN DNS
        m = re.match(r"nameserver\[\d+\]\s*:\s*(\S+)", line)
        if m and not current_is_domain_specific and m.group(1) not in out:
            out.append(m.group(1))
    return out


def system_resolvers() -> list[str]:
    """The configured resolvers; [] when there are none (which is itself a finding)."""
    if sys.platform == "darwin":
        try:
            text = subprocess.run(["scutil", "--dns"], capture_output=True, text=True,
                                  timeout=3).stdout
            found = parse_scutil_dns(text)
            if found:
                return found
        except (OSError, subprocess.TimeoutExpired):
            pass
    import dns.resolver

    try:
        return [str(ns) for ns in dns.resolver.Resolver(configure=True).nameservers]
    except dns.resolver.NoResolverConfiguration:
        return []
