"""A lab subnet with hundreds of room addresses, for the sweep's lab test and bench/sweep.py.

On top of tests/lab.py's Lab (its switch namespace, prefix and teardown): a bridge holding one
/22 of the RFC 2544 benchmarking range (198.18.0.0/15, never routed on a real network), a
scanner namespace at 198.18.0.1 and a few target namespaces, each carrying many addresses
(``ip -batch``) of one kind:

  open      a listener on 0.0.0.0:9090 (large backlog: the scan must not overflow it) that holds
            each connection, as Zoom Rooms holds its controller's
  refused   nothing listens: the kernel answers RST
  dropped   nftables drops TCP 9090 (the host still answers ARP): filtered
  absent    no host has the address: no ARP answer

The mixed list (MIXED_KINDS) adds rooms rejecting with ICMP admin-prohibited, rooms behind a
rate-limited link (tbf), and routed rooms behind a router over a slow link (198.18.8.0/22).

Kinds are interleaved over the address range so no tool gains from their order.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from lab import Host, Lab, sh

NET = "198.18.0"  # the /22 is 198.18.0.0 - 198.18.3.255
PLEN = 22
SCANNER = "198.18.0.1"
KINDS = ("open", "refused", "dropped", "absent")
# The mixed list adds, on the scanner's link: rooms whose firewall rejects with ICMP
# admin-prohibited (the kernel rate-limits those ICMPs: most rooms of a busy rejecting host stay
# silent), rooms behind a rate-limited link (tbf 256 kbit/s: answers queue, the RTT grows);
# and behind a router whose leg is a 1 Mbit/s link: open, refused, dropped and absent rooms (its
# ARP for an absent one gives up after seconds, its ICMP host-unreachable is rate-limited).
MIXED_KINDS = (*KINDS, "rejected", "slow-open", "slow-refused", "r-open", "r-refused", "r-dropped",
               "r-absent")
MIXED = {"open": 250, "refused": 150, "dropped": 150, "absent": 50, "rejected": 100,
         "slow-open": 50, "slow-refused": 50, "r-open": 80, "r-refused": 60, "r-dropped": 40,
         "r-absent": 20}
ROUTER_L = "198.18.3.254"  # the router on the scanner's /22 (on-link addresses end far below)
ROUTED_NET = "198.18.8"  # 198.18.8.0/22 behind the router
ROUTED_PLEN = 22
ROUTER_R = "198.18.8.1"
ROUTER_RATE = "1mbit"  # sch_netem is not on this kernel: the router's leg is a slow link instead
REJECT_9090 = """
table ip sweepreject {
  chain input { type filter hook input priority 0; policy accept;
    tcp dport 9090 reject with icmp type admin-prohibited
  }
}
"""
DROP_9090 = """
table inet sweepdrop {
  chain input { type filter hook input priority 0; policy accept;
    tcp dport 9090 drop
  }
}
"""
LISTENER = (
    "import socket,sys\n"
    "s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
    "s.bind(('0.0.0.0',9090));s.listen(4096);print('listening',flush=True)\n"
    "held=[]\n"
    "while True:\n c,_=s.accept();held.append(c)\n"
)
# what roomprobe's port state is in nmap's words (nmap cannot tell a dead host from a drop)
NMAP_WORD = {"open": "open", "refused": "closed", "filtered": "filtered", "unreachable": "filtered"}


def address(i: int) -> str:
    """The i-th target address: 198.18.0.10 upward through the /22."""
    n = 10 + i
    return f"198.18.{n // 256}.{n % 256}"


def routed_address(i: int) -> str:
    """The i-th routed target address: 198.18.8.10 upward."""
    n = 10 + i
    return f"198.18.{8 + n // 256}.{n % 256}"


@dataclass
class SweepLab:
    """Targets by kind: ``expected[address] = kind``; ``scanner`` runs roomprobe and nmap."""

    lab: Lab
    scanner: Host
    expected: dict[str, str] = field(default_factory=dict)

    def addresses(self) -> list[str]:
        return list(self.expected)

    def nmap(self, addresses: list[str], timeout: float = 300) -> tuple[dict[str, str], float]:
        """``nmap -n -Pn -p 9090 -T4`` from the scanner: {address: state}, wall seconds."""
        import time

        listfile = self.lab.tmp / "nmap-targets.txt"
        listfile.write_text("\n".join(addresses) + "\n")
        t0 = time.monotonic()
        out = self.scanner.run(["nmap", "-n", "-Pn", "-p", "9090", "-T4", "-iL", str(listfile),
                                "-oX", "-"], timeout=timeout).stdout
        seconds = time.monotonic() - t0
        states: dict[str, str] = {}
        for host in ET.fromstring(out).iter("host"):
            addr = host.find("address").get("addr")  # type: ignore[union-attr]
            port = host.find("ports/port/state")
            states[str(addr)] = port.get("state") if port is not None else "host-down"  # type: ignore[union-attr]
        for a in addresses:  # a host nmap left out of its output
            states.setdefault(a, "host-down")
        return states, seconds


def build(lab: Lab, counts: dict[str, int], hosts_per_kind: int = 2) -> SweepLab:
    """Plug the scanner and the target namespaces into a new bridge; ``counts`` per kind
    (KINDS for the plain list, MIXED_KINDS for the mixed one)."""
    sh(["ip", "-n", lab.switch, "link", "add", "swp", "type", "bridge"])
    sh(["ip", "-n", lab.switch, "link", "set", "swp", "up"])
    ns = lab._ns("scan")
    lab._plug(ns, "p-scan", "swp", f"{SCANNER}/{PLEN}", ifname="eth0")
    scanner = Host(lab, "scan", ns, SCANNER, PLEN, "swp", "p-scan")
    sl = SweepLab(lab, scanner)
    unknown = set(counts) - set(MIXED_KINDS)
    assert not unknown, f"unknown lab kinds {unknown}"
    mixed = _interleave({k: counts.get(k, 0) for k in MIXED_KINDS if counts.get(k)})
    per_host: dict[tuple[str, int], list[str]] = {}
    seen: dict[str, int] = {}
    n_link = n_routed = 0
    for kind in mixed:
        if kind.startswith("r-"):
            addr, n_routed = routed_address(n_routed), n_routed + 1
        else:
            addr, n_link = address(n_link), n_link + 1
        sl.expected[addr] = kind
        if kind not in ("absent", "r-absent"):
            n = seen.get(kind, 0)
            seen[kind] = n + 1
            per_host.setdefault((kind, n % hosts_per_kind), []).append(addr)
    if n_routed:
        _router(lab, scanner)
    for (kind, k), addrs in sorted(per_host.items()):
        routed = kind.startswith("r-")
        base = kind.removeprefix("r-").removeprefix("slow-")
        name = f"{kind.replace('slow-', 's').replace('r-', 'r')[:5]}{k}"
        bridge, plen = ("swr", ROUTED_PLEN) if routed else ("swp", PLEN)
        tns = lab._ns(name)
        lab._plug(tns, f"p-{name}", bridge, f"{addrs[0]}/{plen}", ifname="eth0")
        batch = "".join(f"addr add {a}/{plen} dev eth0\n" for a in addrs[1:])
        if batch:
            sh(["ip", "-n", tns, "-batch", "-"], input=batch, timeout=120)
        if routed:
            sh(["ip", "-n", tns, "route", "add", "default", "via", ROUTER_R])
        host = Host(lab, name, tns, addrs[0], plen, bridge, f"p-{name}")
        if kind.startswith("slow-"):  # a rate-limited link: answers queue behind each other
            sh(["ip", "netns", "exec", tns, "tc", "qdisc", "add", "dev", "eth0", "root", "tbf",
                "rate", "256kbit", "burst", "1600", "latency", "1s"])
        if base == "open":
            proc = host.popen([sys.executable, "-c", LISTENER], stdout=subprocess.PIPE, text=True)
            assert proc.stdout is not None and proc.stdout.readline().strip() == "listening"
        elif base == "dropped":
            host.nft(DROP_9090)
        elif base == "rejected":
            host.nft(REJECT_9090)
    return sl


def _router(lab: Lab, scanner: Host) -> None:
    """A router between the scanner's /22 and ROUTED_NET, over a ROUTER_RATE link (tbf)."""
    sh(["ip", "-n", lab.switch, "link", "add", "swr", "type", "bridge"])
    sh(["ip", "-n", lab.switch, "link", "set", "swr", "up"])
    rns = lab._ns("srtr")
    lab._plug(rns, "p-srtr", "swp", f"{ROUTER_L}/{PLEN}", ifname="eth0")
    lab._plug(rns, "p-srtr2", "swr", f"{ROUTER_R}/{ROUTED_PLEN}", ifname="eth1")
    sh(["ip", "netns", "exec", rns, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
    sh(["ip", "netns", "exec", rns, "tc", "qdisc", "add", "dev", "eth1", "root", "tbf", "rate",
        ROUTER_RATE, "burst", "3000", "latency", "1s"])
    sh(["ip", "-n", scanner.ns, "route", "add", f"{ROUTED_NET}.0/{ROUTED_PLEN}", "via", ROUTER_L])


def _interleave(counts: dict[str, int]) -> list[str]:
    """A sequence with each kind spread evenly (largest remainder first at every step)."""
    total = sum(counts.values())
    placed = dict.fromkeys(counts, 0)
    out = []
    for i in range(1, total + 1):
        kind = max(counts, key=lambda k: (counts[k] * i / total - placed[k], counts[k]))
        placed[kind] += 1
        out.append(kind)
    return out


def agreement(ours: dict[str, str], nmap: dict[str, str]) -> tuple[int, list[tuple[str, str, str]]]:
    """How many addresses both tools put in the same state, and the ones they disagree on."""
    same, diff = 0, []
    for addr, state in ours.items():
        if NMAP_WORD.get(state) == nmap.get(addr) or (state == "unreachable" and nmap.get(addr) == "host-down"):
            same += 1
        else:
            diff.append((addr, state, nmap.get(addr, "?")))
    return same, diff


def states_of(sweep_json: dict[str, Any]) -> dict[str, str]:
    return {r["targets"]["room"]: r["sweep"]["state"] for r in sweep_json["rooms"]}
