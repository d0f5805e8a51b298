"""DNS servers for lab tests: dnsmasq (the real thing) and a fake for faults it cannot make.

Both run in the router namespace on a "cloud" address (203.0.113.x), are started through
``lab.router_popen`` (so the lab's teardown kills them) and are ready when the call returns.
Point a host at them with ``lab.etc_file(host, "resolv.conf", f"nameserver {addr}\\n")``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from lab import LAB_DNS

HERE = Path(__file__).resolve().parent


def _wait_udp53(lab, addr: str, port: int = 53, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        out = lab.router_exec(["ss", "-Hlun", f"src {addr}:{port}"], check=False).stdout
        if out.strip():
            return
        time.sleep(0.05)
    raise RuntimeError(f"no DNS server came up on {addr}:{port}")


def start_dnsmasq(lab, octet: int, records: Mapping[str, str | Sequence[str]] | None = None,
                  extra: Sequence[str] = ()) -> str:
    """dnsmasq answering ``records`` ({domain: address or [addresses]}, subdomains included) on
    203.0.113.<octet>. A domain given only IPv4 addresses gets REFUSED for AAAA (nothing to
    forward to): give it an IPv6 address too (2001:db8::/32) for a clean dual-stack answer.

    No upstream: any other name gets REFUSED. ``extra`` adds dnsmasq options for faults, e.g.
    ``--address=/#/`` (NXDOMAIN for everything) or ``--address=/zoom.us/0.0.0.0`` (sinkhole).
    Returns the server's address.
    """
    addr = lab.add_cloud_address(octet)
    if addr == LAB_DNS:
        lab.stop_dns()  # this test's server replaces the lab's default one
    cmd = ["dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
           "--pid-file=", f"--listen-address={addr}", "--bind-interfaces", "--port=53"]
    for name, ips in (records or {}).items():
        cmd += [f"--address=/{name}/{ip}" for ip in ([ips] if isinstance(ips, str) else ips)]
    cmd += list(extra)
    proc = lab.router_popen(cmd, stderr=subprocess.PIPE, text=True)
    try:
        _wait_udp53(lab, addr)
    except RuntimeError:
        proc.kill()
        raise RuntimeError(f"dnsmasq failed: {proc.communicate(timeout=5)[1]}") from None
    return addr


def start_fake_dns(lab, octet: int, mode: str, delay: float = 0.0, answer: str = "203.0.113.10") -> str:
    """The tests' fake DNS server on 203.0.113.<octet>: mode refused | servfail | empty | answer (after
    ``delay`` seconds). Returns the server's address."""
    addr = lab.add_cloud_address(octet)
    if addr == LAB_DNS:
        lab.stop_dns()
    proc = lab.router_popen([sys.executable, str(HERE / "fakedns.py"), addr, "53", mode, str(delay), answer],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "listening", f"fake DNS failed to start: {line!r}"
    return addr
