"""A real room network built from Linux network namespaces, for the tests and the benchmarks.

Topology (every name carries a per-run prefix, so parallel runs never collide):

    switch ns:  bridge "lan" (198.51.100.0/25) and bridge "vl2" (198.51.100.128/25): two VLANs
    router ns:  198.51.100.1 on lan, 198.51.100.129 on vl2, forwarding on; "cloud" addresses
                in 203.0.113.0/24 on its loopback, where labs run services (DNS, proxy, HTTPS)
    hosts:      one ns each (room, controller, ...), eth0 plugged into a bridge, default route
                via the router

Only documentation address ranges (RFC 5737) are used, and they exist only inside these
namespaces: nothing here can reach or be reached from a real network.

Faults are switched on with real tools: nftables rules inside a host, bridge port isolation
(the Wi-Fi "client isolation" feature), processes listening or not.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PREFIX_RE = re.compile(r"^rpl(\d+)x[0-9a-f]{4}-")

# segment -> (first three octets, prefix length, router's last octet)
SEGMENTS = {
    "lan": ("198.51.100", 25, 1),
    "vl2": ("198.51.100", 25, 129),
}
CLOUD_NET = ("203.0.113", 24)
LAB_DNS = "203.0.113.53"  # dnsmasq in the router ns: every host's resolver
LAB_ZOOM = "203.0.113.10"  # what the lab DNS answers for Zoom's names (A)
LAB_ZOOM6 = "2001:db8::10"  # and for AAAA (documentation range, never routed)
ZOOM_DOMAINS = ("zoom.us", "zoom.com")

# What roomprobe reads in the lab (ROOMPROBE_CONFIG): the lab's own answers are legitimate.
LAB_CONFIG = """
[check]
# Probes of the cloud, the proxy path and the link run in their own lab tests (with --only),
# against lab services: the basic lab has no TLS service for Zoom's names, so the proxy probe
# could only (rightly) say "TLS not checked" there.
skip = ["cloud", "bandwidth", "proxy", "quality", "path"]  # path: its own chain lab (pathlab.py)

[probes.dns]
allow_networks = ["203.0.113.0/24", "2001:db8::/32"]
"""


def lab_unavailable_reason() -> str | None:
    """Why the lab cannot run here, or None. Tests skip with this reason."""
    if sys.platform != "linux":
        return "the lab needs Linux network namespaces"
    if os.geteuid() != 0:
        return "the lab needs root (ip netns); run the tests as root"
    for tool in ("ip", "bridge", "nft", "setpriv"):
        if shutil.which(tool) is None:
            return f"the lab needs '{tool}' (apt-get install iproute2 nftables util-linux)"
    return None


def sh(cmd: list[str], *, check: bool = True, timeout: float = 30, **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, timeout=timeout, capture_output=True, text=True, **kw)


def sweep_stale() -> None:
    """Delete namespaces left behind by lab runs whose process died (e.g. a killed pytest)."""
    out = sh(["ip", "netns", "list"], check=False).stdout
    for line in out.splitlines():
        name = line.split()[0] if line.strip() else ""
        m = PREFIX_RE.match(name)
        if not m:
            continue
        pid = int(m.group(1))
        try:
            os.kill(pid, 0)
            continue  # still alive: not ours to delete
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        _kill_ns_pids(name)
        sh(["ip", "netns", "del", name], check=False)
        shutil.rmtree(f"/etc/netns/{name}", ignore_errors=True)


def _wait_udp53(ns: str, addr: str, timeout: float = 5.0) -> None:
    """Wait until something in ``ns`` is bound to addr:53/udp, so tests never race dnsmasq."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        out = sh(["ip", "netns", "exec", ns, "ss", "-Hlun", f"src {addr}:53"], check=False).stdout
        if out.strip():
            return
        time.sleep(0.02)
    raise RuntimeError(f"dnsmasq did not start on {addr}:53 in {ns}")


def _kill_ns_pids(ns: str) -> None:
    out = sh(["ip", "netns", "pids", ns], check=False).stdout
    for pid in out.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


@dataclass
class LabRun:
    """The outcome of running the roomprobe CLI inside a lab host."""

    rc: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def report(self) -> dict[str, Any]:
        """The JSON report, validated against the published schema every time it is read."""
        from roomprobe.report.build import load_schema

        data = json.loads(self.stdout)
        import jsonschema

        jsonschema.validate(data, load_schema())
        return data

    def probe(self, probe_id: str) -> dict[str, Any]:
        for p in self.report["probes"]:
            if p["id"] == probe_id:
                return p
        raise KeyError(f"probe {probe_id!r} not in report: {self.stdout[:500]}")

    def finding_ids(self) -> set[str]:
        return {f["id"] for f in self.report["findings"]}


@dataclass
class Host:
    lab: Lab
    name: str
    ns: str
    addr: str  # without prefix
    prefix: int
    segment: str
    port: str  # this host's port name on the switch

    def exec_prefix(self, unprivileged: bool = False) -> list[str]:
        """``ip netns exec``; unprivileged drops CAP_NET_RAW/CAP_NET_ADMIN (no raw sockets), the
        way a normal user runs it, while still reading the root-installed Python."""
        cmd = ["ip", "netns", "exec", self.ns]
        if unprivileged:
            drop = "-net_raw,-net_admin"
            cmd += ["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}"]
        return cmd

    def run(self, cmd: list[str], *, check: bool = True, timeout: float = 30,
            **kw: Any) -> subprocess.CompletedProcess:
        return sh(self.exec_prefix() + cmd, check=check, timeout=timeout, **kw)

    def popen(self, cmd: list[str], **kw: Any) -> subprocess.Popen:
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        proc = subprocess.Popen(self.exec_prefix() + cmd, **kw)
        self.lab.procs.append(proc)
        return proc

    def nft(self, ruleset: str) -> None:
        """Load an nftables ruleset into this host (the host firewall)."""
        sh(self.exec_prefix() + ["nft", "-f", "-"], input=ruleset)

    def listen(self, port: int, *, comm: str = "ZoomRooms", bind: str = "0.0.0.0",
               mode: str = "hold") -> subprocess.Popen:
        """A TCP listener whose process name is ``comm`` (stands in for Zoom Rooms, or a squatter).

        ``mode``: "hold" keeps each connection open (as Zoom Rooms holds its controller's),
        "close" closes it at once (FIN), "reset" resets it at once (a service that accepts and
        drops). Waits until the socket is listening so the test never races it.
        """
        proc = self.popen([sys.executable, str(REPO / "tests" / "listener.py"), comm, bind, str(port),
                           mode],
                          stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "listening", f"listener failed to start: {line!r}"
        return proc

    def serve(self, token: str, *extra: str, duration: float = 120) -> tuple[subprocess.Popen, str]:
        """``roomprobe serve`` on this host's address; returns once it printed its start line
        (which must not show a token given with --token), with that line."""
        proc = self.popen([sys.executable, "-m", "roomprobe", "serve", "--bind", self.addr,
                           "--token", token, "--duration", f"{duration:g}", *extra],
                          stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "session token: " in line and token not in line, line
        return proc, line

    def roomprobe(self, *args: str, unprivileged: bool = False, timeout: float = 60,
                  env: dict[str, str] | None = None) -> LabRun:
        """Run the CLI inside this host exactly as a user would: a subprocess, real sockets."""
        full_env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        full_env.update({"ROOMPROBE_CONFIG": str(self.lab.config_path), "NO_COLOR": "1"})
        # Benches use the lab outside pytest (whose conftest sets this): keep their runs out of
        # the real user's history too.
        full_env.setdefault("ROOMPROBE_HISTORY_DB", str(self.lab.tmp / "history.sqlite3"))
        if env:
            full_env.update(env)
        t0 = time.monotonic()
        proc = subprocess.run(self.exec_prefix(unprivileged) + [sys.executable, "-m", "roomprobe", *args],
                              capture_output=True, text=True, timeout=timeout, env=full_env)
        return LabRun(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t0)


@dataclass
class Lab:
    """Build with ``Lab()``, tear down with ``close()`` (the fixture does it even on failure)."""

    prefix: str = field(default_factory=lambda: f"rpl{os.getpid()}x{secrets.token_hex(2)}-")
    procs: list[subprocess.Popen] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    hosts: dict[str, Host] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix=self.prefix))
        self.config_path = self.tmp / "roomprobe.toml"
        self.config_path.write_text(LAB_CONFIG)
        self.dns_proc: subprocess.Popen | None = None
        try:
            self.switch = self._ns("sw")
            for br in SEGMENTS:
                sh(["ip", "-n", self.switch, "link", "add", br, "type", "bridge"])
                sh(["ip", "-n", self.switch, "link", "set", br, "up"])
            self.router = self._ns("rt")
            sh(["ip", "netns", "exec", self.router, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
            for br, (net, plen, gw) in SEGMENTS.items():
                self._plug(self.router, f"r-{br}", br, f"{net}.{gw}/{plen}")
            self.add_cloud_address(1)
            self.add_cloud_address(int(LAB_DNS.rsplit(".", 1)[1]))
            self.add_cloud_address(int(LAB_ZOOM.rsplit(".", 1)[1]))
            self.start_dns()
        except BaseException:
            self.close()
            raise

    # -- building -------------------------------------------------------------------------
    def _ns(self, short: str) -> str:
        name = self.prefix + short
        sh(["ip", "netns", "add", name])
        self.namespaces.append(name)
        sh(["ip", "-n", name, "link", "set", "lo", "up"])
        return name

    def _plug(self, ns: str, port: str, bridge: str, cidr: str, ifname: str | None = None) -> None:
        """A veth from ``ns`` (named ``ifname`` or ``port``) into ``bridge`` on the switch."""
        inner = ifname or port
        sh(["ip", "link", "add", inner, "netns", ns, "type", "veth", "peer", "name", port,
            "netns", self.switch])
        sh(["ip", "-n", self.switch, "link", "set", port, "master", bridge, "up"])
        sh(["ip", "-n", ns, "addr", "add", cidr, "dev", inner])
        sh(["ip", "-n", ns, "link", "set", inner, "up"])

    def add_host(self, name: str, segment: str, host_octet: int) -> Host:
        """A host on ``segment`` ("lan": .2-.126, "vl2": .130-.254), default route via the router."""
        net, plen, gw = SEGMENTS[segment]
        ns = self._ns(name)
        port = f"p-{name}"[:15]
        addr = f"{net}.{host_octet}"
        self._plug(ns, port, segment, f"{addr}/{plen}", ifname="eth0")
        sh(["ip", "-n", ns, "route", "add", "default", "via", f"{net}.{gw}"])
        host = Host(self, name, ns, addr, plen, segment, port)
        self.hosts[name] = host
        self.etc_file(host, "resolv.conf", f"nameserver {LAB_DNS}\n")
        self.etc_file(host, "hosts", f"127.0.0.1 localhost\n{addr} {name}.lab {name}\n")
        return host

    def start_dns(self, *extra: str, answers: bool = True) -> subprocess.Popen:
        """(Re)start the lab's dnsmasq on LAB_DNS. By default it answers Zoom's domains with
        LAB_ZOOM and REFUSES everything else (no upstream); ``extra`` adds dnsmasq options
        (faults), ``answers=False`` leaves the Zoom answers out."""
        self.stop_dns()
        cmd = ["dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
               f"--listen-address={LAB_DNS}", "--bind-interfaces", "--port=53",
               f"--pid-file={self.tmp / 'dnsmasq.pid'}", "--user=root"]
        if answers:
            cmd += [f"--address=/{d}/{ip}" for d in ZOOM_DOMAINS for ip in (LAB_ZOOM, LAB_ZOOM6)]
        self.dns_proc = self.router_popen(cmd + list(extra))
        _wait_udp53(self.router, LAB_DNS)
        return self.dns_proc

    def stop_dns(self) -> None:
        if self.dns_proc is not None:
            self.dns_proc.kill()
            self.dns_proc.wait(timeout=5)
            self.dns_proc = None

    # -- faults -----------------------------------------------------------------------------
    def isolate(self, *hosts: Host) -> None:
        """Bridge port isolation: isolated ports cannot talk to each other (Wi-Fi client
        isolation), but still reach the router."""
        for h in hosts:
            sh(["bridge", "-n", self.switch, "link", "set", "dev", h.port, "isolated", "on"])

    def router_exec(self, cmd: list[str], **kw: Any) -> subprocess.CompletedProcess:
        return sh(["ip", "netns", "exec", self.router, *cmd], **kw)

    def router_popen(self, cmd: list[str], **kw: Any) -> subprocess.Popen:
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        proc = subprocess.Popen(["ip", "netns", "exec", self.router, *cmd], **kw)
        self.procs.append(proc)
        return proc

    def add_cloud_address(self, octet: int) -> str:
        """A stand-in internet host: an address on the router's loopback, routed to from every host.

        (Loopback rather than a dummy interface: the dummy module is not on every kernel.)
        """
        addr = f"{CLOUD_NET[0]}.{octet}"
        sh(["ip", "-n", self.router, "addr", "replace", f"{addr}/32", "dev", "lo"])  # idempotent
        return addr

    def etc_file(self, host: Host, name: str, text: str) -> Path:
        """A per-namespace /etc file (ip netns exec bind-mounts /etc/netns/NS/NAME over /etc/NAME)."""
        d = Path("/etc/netns") / host.ns
        d.mkdir(parents=True, exist_ok=True)
        path = d / name
        path.write_text(text)
        return path

    # -- teardown -----------------------------------------------------------------------------
    def close(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(Exception):
                proc.kill()
                proc.wait(timeout=5)
        for ns in reversed(self.namespaces):
            _kill_ns_pids(ns)
            sh(["ip", "netns", "del", ns], check=False)
            shutil.rmtree(f"/etc/netns/{ns}", ignore_errors=True)
        self.namespaces.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def require_tool(name: str, package: str) -> str:
    """The tool's path; skips the test when it is missing, except under .ci/run (ROOMPROBE_CI),
    which installs it: there a missing tool fails, so a test is never silently skipped in CI."""
    import pytest

    path = shutil.which(name)
    if path is None:
        if os.environ.get("ROOMPROBE_CI"):
            pytest.fail(f"{name} is missing, but .ci/run installs it (APT_PACKAGES: {package})")
        pytest.skip(f"{name} is not installed (apt-get install {package})")
    return path
