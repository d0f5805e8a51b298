"""A path to "Zoom" through five routers in network namespaces, for the path probe's tests.

    room 10.23.1.10 -- r1 "site gateway" 10.23.1.1 | 10.23.2.1
                    -- r2 "site firewall" 10.23.2.2 | 192.0.2.1
                    -- r3 "edge" (first public hop) 192.0.2.2 | 198.51.100.1
                    -- r4 "provider" 198.51.100.2 | 203.0.113.65
                    -- r5 "Zoom border" 203.0.113.66 | 203.0.113.1
                    -- zoom 203.0.113.10 (a ranges file names 203.0.113.0/24 as Zoom's)

Hop n answers from its address facing the room, so the trace reads 10.23.1.1, 10.23.2.2,
192.0.2.2, 198.51.100.2, 203.0.113.66, 203.0.113.10. Only documentation (RFC 5737) and private
addresses, existing only inside these namespaces. Every name carries the lab's per-run prefix
(tests/lab.py), so parallel runs never collide and a killed run is swept later.

Routers answer ICMP without rate limits (``icmp_ratelimit=0``) except where a test asks for one:
the faults are switched on with real tools (nftables, sysctl, tc, iperf3, ip link mtu, VXLAN).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import REPO, _kill_ns_pids, sh

ROUTERS = ("r1", "r2", "r3", "r4", "r5")
# link name -> (left ns, left addr, right ns, right addr, prefix)
LINKS = [
    ("l0", "room", "10.23.1.10", "r1", "10.23.1.1", 24),
    ("l1", "r1", "10.23.2.1", "r2", "10.23.2.2", 24),
    ("l2", "r2", "192.0.2.1", "r3", "192.0.2.2", 26),
    ("l3", "r3", "198.51.100.1", "r4", "198.51.100.2", 26),
    ("l4", "r4", "203.0.113.65", "r5", "203.0.113.66", 26),
    ("l5", "r5", "203.0.113.1", "zoom", "203.0.113.10", 26),
]
ROOM = "10.23.1.10"
ZOOM = "203.0.113.10"
HOP_ADDRS = ["10.23.1.1", "10.23.2.2", "192.0.2.2", "198.51.100.2", "203.0.113.66", ZOOM]
ZOOM_RANGES = "203.0.113.0/24\n"


def nobody_python() -> str:
    """A Python that user ``nobody`` can run with roomprobe's dependencies.

    Why: the tests' own interpreter may live under /root (pyenv), which ``nobody`` cannot read;
    the unprivileged runs need an interpreter and site-packages outside it. Built once per
    source tree (about 40 s, from the configured package index) and reused; the lab puts
    ``REPO`` first on PYTHONPATH, so the code under test is always this tree's.
    """
    check = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    probe = "import click, psutil, platformdirs, jsonschema, prometheus_client, dns"
    if subprocess.run([*check, sys.executable, "-c", probe], capture_output=True).returncode == 0:
        return sys.executable
    key = hashlib.sha256(str(REPO).encode() + (REPO / "pyproject.toml").read_bytes()).hexdigest()[:12]
    venv = Path(tempfile.gettempdir()) / f"roomprobe-nobody-{key}"
    py = venv / "bin" / "python"
    with open(Path(tempfile.gettempdir()) / f"roomprobe-nobody-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if subprocess.run([*check, str(py), "-c", probe], capture_output=True).returncode != 0:
            base = shutil.which("python3", path="/usr/bin:/usr/local/bin") or "python3"
            sh([base, "-m", "venv", str(venv)], timeout=120)
            sh([str(py), "-m", "pip", "install", "-q", "-e", str(REPO)], timeout=600)
    return str(py)


@dataclass
class PathLab:
    prefix: str = field(default_factory=lambda: f"rpl{os.getpid()}x{secrets.token_hex(2)}-")
    ns: dict[str, str] = field(default_factory=dict)
    procs: list[subprocess.Popen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix=self.prefix))
        self.ranges = self.tmp / "zoom-ranges.txt"
        self.ranges.write_text(ZOOM_RANGES)
        self.config = self.tmp / "roomprobe.toml"
        self.config.write_text(f'[probes.path]\nzoom_ranges = ["{self.ranges}"]\n')
        self.out = self.tmp / "out"  # where the unprivileged runs may write
        self.out.mkdir()
        os.chmod(self.tmp, 0o755)
        os.chmod(self.out, 0o777)
        try:
            for name in ("room", *ROUTERS, "zoom"):
                full = self.prefix + name
                sh(["ip", "netns", "add", full])
                self.ns[name] = full
                sh(["ip", "-n", full, "link", "set", "lo", "up"])
                if name in ROUTERS:
                    self.sysctl(name, "net.ipv4.ip_forward=1")
                self.sysctl(name, "net.ipv4.icmp_ratelimit=0")
            for link, left, laddr, right, raddr, plen in LINKS:
                a, b = f"{link}{left}"[:15], f"{link}{right}"[:15]
                sh(["ip", "link", "add", a, "netns", self.ns[left], "type", "veth", "peer", "name", b,
                    "netns", self.ns[right]])
                for ns, dev, addr in ((left, a, laddr), (right, b, raddr)):
                    sh(["ip", "-n", self.ns[ns], "addr", "add", f"{addr}/{plen}", "dev", dev])
                    sh(["ip", "-n", self.ns[ns], "link", "set", dev, "up"])
            # Default routes towards Zoom, and return routes towards the room.
            for _link, left, _la, _right, raddr, _p in LINKS[:-1]:
                sh(["ip", "-n", self.ns[left], "route", "add", "default", "via", raddr])
            for _link, _left, laddr, right, _ra, _p in LINKS[1:]:
                sh(["ip", "-n", self.ns[right], "route", "add", "10.23.0.0/16", "via", laddr])
                sh(["ip", "-n", self.ns[right], "route", "add", "192.0.2.0/24", "via", laddr])
                sh(["ip", "-n", self.ns[right], "route", "add", "198.51.100.0/24", "via", laddr])
            for full in self.ns.values():  # no resolver: a lookup fails at once, never leaves the lab
                d = Path("/etc/netns") / full
                d.mkdir(parents=True, exist_ok=True)
                (d / "resolv.conf").write_text("nameserver 127.0.0.1\n")
            # Members of every group may open ICMP datagram sockets in the room (tests of "icmp").
            self.sysctl("room", "net.ipv4.ping_group_range=0 2147483647")
            self.wait_ready()
        except BaseException:
            self.close()
            raise

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Until every veth has its carrier (it comes a moment after 'link set up')."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not any("NO-CARRIER" in self.run(n, ["ip", "-br", "link"]).stdout for n in self.ns):
                return
            time.sleep(0.05)
        raise RuntimeError("the path lab did not come up: a link has no carrier")

    # -- helpers ------------------------------------------------------------------------------
    def sysctl(self, name: str, setting: str) -> None:
        sh(["ip", "netns", "exec", self.ns[name], "sysctl", "-qw", setting])

    def run(self, name: str, cmd: list[str], **kw: Any) -> subprocess.CompletedProcess:
        return sh(["ip", "netns", "exec", self.ns[name], *cmd], **kw)

    def nft(self, name: str, ruleset: str) -> None:
        sh(["ip", "netns", "exec", self.ns[name], "nft", "-f", "-"], input=ruleset)

    def popen(self, name: str, cmd: list[str], **kw: Any) -> subprocess.Popen:
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns[name], *cmd], **kw)
        self.procs.append(proc)
        return proc

    def _cli(self, args: tuple[str, ...], as_root: bool) -> tuple[list[str], dict[str, str]]:
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env.update({"ROOMPROBE_CONFIG": str(self.config), "NO_COLOR": "1", "HOME": str(self.out),
                    "XDG_CACHE_HOME": str(self.out), "ROOMPROBE_HISTORY_DB": str(self.out / "history.sqlite3"),
                    "PYTHONPATH": str(REPO)})
        user = [] if as_root else ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                   "--inh-caps=-all", "--bounding-set=-all"]
        python = sys.executable if as_root else nobody_python()
        return ["ip", "netns", "exec", self.ns["room"], *user, python, "-m", "roomprobe", *args], env

    def roomprobe(self, *args: str, timeout: float = 120, as_root: bool = False) -> subprocess.CompletedProcess:
        """The CLI in the room namespace as user ``nobody`` (no capabilities at all), the way a
        technician without administrator rights runs it."""
        cmd, env = self._cli(args, as_root)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=str(self.out))

    def roomprobe_popen(self, *args: str) -> subprocess.Popen:
        """The same, left running (``ip netns exec`` and ``setpriv`` exec it: the pid is Python's)."""
        cmd, env = self._cli(args, False)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                cwd=str(self.out))
        self.procs.append(proc)
        return proc

    def mtr(self, count: int, *extra: str) -> list[dict[str, Any]]:
        """``mtr --report -n -c N -G 1`` from the room: [{hop, host, loss, avg}] (reference)."""
        out = self.run("room", ["mtr", "--report", "--report-wide", "-n", "-c", str(count), "-G", "1",
                                *extra, ZOOM], timeout=60 + 3 * count).stdout
        return parse_mtr(out)

    def agent(self, where: str, addr: str, token: str) -> subprocess.Popen:
        """``roomprobe serve --agent`` in ``where`` on ``addr`` (the peer that traces back)."""
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env["PYTHONPATH"] = str(REPO)
        proc = self.popen(where, [sys.executable, "-m", "roomprobe", "serve", "--bind", addr, "--token", token,
                                  "--duration", "300", "--agent"], stdout=subprocess.PIPE, text=True, env=env)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "room check agent" in line and "session token" in line, line  # it has started
        return proc

    # -- faults -------------------------------------------------------------------------------
    def drop_share_in(self, router: str, n: int, *, towards_room: bool = False) -> None:
        """Drop 1 in ``n`` packets arriving at ``router`` from the room's side, counted per TTL
        value (its own counter per remaining TTL) so every hop behind sees exactly 1/n, whatever
        order the probes of a round come in. In prerouting: the packet that would expire here is
        dropped too, so the loss starts AT this router."""
        dev = self._dev_towards_zoom(router) if towards_room else self._dev_towards_room(router)
        # Every TTL value its own counter (answers coming back carry TTLs near 64).
        rules = "\n".join(f"    iifname {dev} ip ttl {t} numgen inc mod {n} == 0 drop" for t in range(1, 65))
        self.nft(router, f"table ip fault {{ chain pre {{ type filter hook prerouting priority -300;\n"
                         f"{rules}\n  }}\n}}\n")

    def drop_random_in(self, router: str, pct: int) -> None:
        """Drop ``pct``% of packets arriving at ``router`` from the room's side, at random."""
        dev = self._dev_towards_room(router)
        self.nft(router, f"table ip fault {{ chain pre {{ type filter hook prerouting priority -300;\n"
                         f"    iifname {dev} numgen random mod 100 < {pct} drop\n  }}\n}}\n")

    def ratelimit_icmp(self, router: str, every_ms: int = 4000) -> None:
        """The router's own ICMP rate limit: one time-exceeded per ``every_ms`` after a burst."""
        self.sysctl(router, f"net.ipv4.icmp_ratelimit={every_ms}")

    def no_icmp(self, router: str) -> None:
        """The router forwards but never sends time exceeded (a silent hop)."""
        self.nft(router, "table ip fault { chain out { type filter hook output priority 0;\n"
                         "    icmp type time-exceeded drop\n  }\n}\n")

    def mtu_step(self, router: str, mtu: int, *, frag_needed: bool = True) -> None:
        """The link beyond ``router`` (towards Zoom) has a smaller MTU; without ``frag_needed`` the
        router's "fragmentation needed" is dropped: a PMTU black hole."""
        dev = self._dev_towards_zoom(router)
        sh(["ip", "-n", self.ns[router], "link", "set", dev, "mtu", str(mtu)])
        nxt = ROUTERS[ROUTERS.index(router) + 1] if router != "r5" else "zoom"
        peer = next(f"{lk}{r}"[:15] for lk, left, _a, r, _b, _p in LINKS if left == router)
        sh(["ip", "-n", self.ns[nxt], "link", "set", peer, "mtu", str(mtu)])
        if not frag_needed:
            self.nft(router, "table ip fault { chain out { type filter hook output priority 0;\n"
                             "    icmp type destination-unreachable icmp code frag-needed drop\n  }\n}\n")

    def queue(self, router: str, rate: str = "2mbit", buffer_ms: int = 150) -> subprocess.Popen:
        """A standing queue from ``router`` on: a tbf with a long buffer on its link towards Zoom,
        kept full by a cubic TCP flow (iperf3) from the room's side to Zoom. Returns the flow."""
        dev = self._dev_towards_zoom(router)
        sh(["ip", "netns", "exec", self.ns[router], "tc", "qdisc", "replace", "dev", dev, "root", "tbf",
            "rate", rate, "burst", "16kb", "latency", f"{buffer_ms}ms"])
        srv = self.popen("zoom", ["iperf3", "-s", "-B", ZOOM, "-p", "5201"])
        del srv
        time.sleep(0.5)
        return self.popen("room", ["iperf3", "-c", ZOOM, "-p", "5201", "-t", "300", "-C", "cubic"])

    def vxlan_room(self) -> None:
        """The room's traffic to Zoom goes through a VXLAN tunnel to r3 (a VPN on the room
        device): hop 1 is the tunnel's far end, r1 and r2 vanish from the path."""
        sh(["ip", "-n", self.ns["room"], "link", "add", "vx0", "type", "vxlan", "id", "23", "remote",
            "192.0.2.2", "local", ROOM, "dstport", "4789"])
        sh(["ip", "-n", self.ns["r3"], "link", "add", "vx0", "type", "vxlan", "id", "23", "remote",
            ROOM, "local", "192.0.2.2", "dstport", "4789"])
        for ns, addr in (("room", "10.99.0.2/30"), ("r3", "10.99.0.1/30")):
            sh(["ip", "-n", self.ns[ns], "addr", "add", addr, "dev", "vx0"])
            sh(["ip", "-n", self.ns[ns], "link", "set", "vx0", "mtu", "1450"])  # 50 bytes of VXLAN
            sh(["ip", "-n", self.ns[ns], "link", "set", "vx0", "up"])
        sh(["ip", "-n", self.ns["room"], "route", "add", f"{ZOOM}/32", "via", "10.99.0.1", "dev", "vx0"])
        for r in ("r4", "r5", "zoom"):  # the way back to the tunnel's inner address
            via = next(la for _lk, left, la, right, _ra, _p in LINKS if right == r)
            sh(["ip", "-n", self.ns[r], "route", "add", "10.99.0.0/30", "via", via])

    def _dev_towards_room(self, router: str) -> str:
        return next(f"{lk}{r}"[:15] for lk, _l, _a, r, _b, _p in LINKS if r == router)

    def _dev_towards_zoom(self, router: str) -> str:
        return next(f"{lk}{left}"[:15] for lk, left, _a, _r, _b, _p in LINKS if left == router)

    # -- teardown -----------------------------------------------------------------------------
    def close(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(Exception):
                proc.kill()
                proc.wait(timeout=5)
        for ns in self.ns.values():
            _kill_ns_pids(ns)
            sh(["ip", "netns", "del", ns], check=False)
            shutil.rmtree(f"/etc/netns/{ns}", ignore_errors=True)
        self.ns.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> PathLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_MTR_ROW = re.compile(r"^\s*(\d+)\.\|--\s+(\S+)\s+([\d.]+)%?\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)")


def parse_mtr(text: str) -> list[dict[str, Any]]:
    """Rows of ``mtr --report``: hop, host (``???`` for silence), Loss%, Snt, Last, Avg."""
    rows = []
    for line in text.splitlines():
        m = _MTR_ROW.match(line)
        if m:
            rows.append({"hop": int(m.group(1)), "host": m.group(2), "loss": float(m.group(3)),
                         "sent": int(m.group(4)), "avg": float(m.group(6))})
    return rows
