"""A stand-in for Zoom's cloud inside the lab router: HTTPS web host, TCP 8801/8802 listeners,
coturn STUN servers, a control STUN server, and the room's resolver files that map lab names.

Addresses (router loopback): .10 web (HTTPS 443), .11 media/zone (TCP 8801, 8802),
.12 STUN (UDP 3478, 3479, 8801), .13 control STUN (UDP 3478), .14 a host that is up but runs no
STUN server (it answers UDP with ICMP port-unreachable), .20 web proxy (tinyproxy 8888).
Zoom's published ranges are stood in for by a range file with 203.0.113.0/24 (the lab cloud).
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from lab import REPO, Host, Lab
from labca import LabCA

WEB, MEDIA, STUN, CONTROL, PROXY = "203.0.113.10", "203.0.113.11", "203.0.113.12", "203.0.113.13", "203.0.113.20"
NOSTUN = "203.0.113.14"
NAMES = {"web.zoomlab.test": WEB, "www.zoomlab.test": WEB, "zone.zoomlab.test": MEDIA,
         "stun.zoomlab.test": STUN, "control.zoomlab.test": CONTROL, "nostun.zoomlab.test": NOSTUN}
ZOOM_RANGES = "# lab stand-in for Zoom.txt\n203.0.113.0/24\n"

# Any name not in the hosts file fails at once, and never leaves the namespace.
RESOLV_LOCAL = "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"


def hosts_text() -> str:
    return "127.0.0.1 localhost\n" + "".join(f"{ip} {name}\n" for name, ip in NAMES.items())


@dataclass
class Cloud:
    lab: Lab
    ca: LabCA
    dir: Path
    web_proc: subprocess.Popen | None = None

    def config(self, *, ca: bool = True, control: bool = False, extra: str = "",
               stun_hosts: tuple[str, ...] = ("stun.zoomlab.test",),
               media_hosts: tuple[str, ...] = ("zone.zoomlab.test",)) -> Path:
        """A config file pointing the cloud probe at the lab cloud (short timeouts), with a
        range file standing in for Zoom.txt and the app stand-in's process name."""
        ranges = self.dir / "Zoom.txt"
        ranges.write_text(ZOOM_RANGES)
        text = f"""
[probes.cloud]
web_urls = ["https://web.zoomlab.test/", "https://www.zoomlab.test/"]
media_hosts = {list(media_hosts)!r}
stun_hosts = {list(stun_hosts)!r}
tcp_ports = [8801, 8802]
udp_ports = [3478, 3479, 8801]
ca_file = "{self.ca.cert_path if ca else ''}"
control_host = "{'control.zoomlab.test:3478' if control else ''}"
connect_timeout = 1.5
stun_timeout = 1.0
zoom_ranges = ["{ranges}"]
range_check_names = ["web.zoomlab.test"]
app_process_names = ["ZoomRooms.exe", "ZoomRooms"]
{extra}
"""
        path = self.dir / f"cloud-{ca}-{control}-{abs(hash((extra, stun_hosts, media_hosts)))}.toml"
        path.write_text(text)
        return path

    def web(self, status: int = 200) -> subprocess.Popen:
        cert = self.ca.issue(f"web{status}", ["web.zoomlab.test", "www.zoomlab.test"])
        proc = self.lab.router_popen([sys.executable, str(REPO / "tests" / "https_server.py"),
                                      str(cert.cert), str(cert.key), WEB, "443", str(status)],
                                     stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "listening"
        self.web_proc = proc
        return proc

    def restart_web(self, status: int) -> None:
        """Replace the web server (only the one this Cloud started) with one answering ``status``."""
        if self.web_proc is not None:
            self.web_proc.kill()
            self.web_proc.wait(timeout=5)
        self.web(status)

    def proxy(self) -> str:
        """tinyproxy on .20:8888 allowing CONNECT to 443; returns the proxy URL."""
        # The proxy resolves the lab names itself, from the router's own resolver files.
        router = SimpleNamespace(ns=self.lab.router)
        self.lab.etc_file(router, "hosts", hosts_text())  # type: ignore[arg-type]
        self.lab.etc_file(router, "resolv.conf", RESOLV_LOCAL)  # type: ignore[arg-type]
        conf = self.dir / "tinyproxy.conf"
        conf.write_text(f"Port 8888\nListen {PROXY}\nTimeout 10\nAllow 198.51.100.0/24\n"
                        "ConnectPort 443\nMaxClients 20\nLogLevel Error\n")
        self.lab.router_popen(["tinyproxy", "-d", "-c", str(conf)])
        wait_port(self.lab, "t", 8888)
        return f"http://{PROXY}:8888"


def zoom_app(room: Host, *specs: str, comm: str = "ZoomRooms") -> subprocess.Popen:
    """The Zoom Rooms stand-in in the room namespace, holding real sockets (tests/zoomapp.py):
    specs like ``udp:203.0.113.12:8801`` or ``tcp:203.0.113.10:443``."""
    proc = room.popen([sys.executable, str(REPO / "tests" / "zoomapp.py"), comm, *specs],
                      stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def wait_port(lab: Lab, proto: str, port: int, addr: str | None = None, timeout: float = 10) -> None:
    """Until something listens on ``proto`` (t|u) ``port`` in the router namespace."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        out = lab.router_exec(["ss", f"-Hln{proto}", f"sport = :{port}"]).stdout
        if out.strip() and (addr is None or addr in out):
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {proto} {port} in the router")


def build(lab: Lab, tmp: Path, room_octet: int = 20) -> tuple[Cloud, Host]:
    """The full healthy cloud and a room host whose resolver knows the lab names."""
    for addr in (WEB, MEDIA, STUN, CONTROL, NOSTUN, PROXY):
        lab.add_cloud_address(int(addr.rsplit(".", 1)[1]))
    cloud = Cloud(lab, LabCA(tmp / "ca"), tmp)
    cloud.web(200)
    for port in (8801, 8802):
        proc = lab.router_popen([sys.executable, str(REPO / "tests" / "listener.py"), "zoomzc", MEDIA,
                                 str(port), "hold"], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "listening"
    for i, (ips, port) in enumerate([((STUN, CONTROL), 3478), ((STUN,), 3479), ((STUN,), 8801)]):
        listen = [arg for ip in ips for arg in ("--listening-ip", ip)]
        lab.router_popen(["turnserver", "-n", *listen, "--listening-port", str(port), "--no-tls",
                          "--no-dtls", "--stun-only", "--no-cli", "--log-file", "stdout",
                          "--pidfile", str(tmp / f"turn{i}.pid"), "--userdb", str(tmp / f"turn{i}.db")])
    for port, addr in ((3478, CONTROL), (3478, STUN), (3479, STUN), (8801, STUN)):
        wait_port(lab, "u", port, addr)
    room = lab.add_host("room", "lan", room_octet)
    lab.etc_file(room, "hosts", hosts_text())
    lab.etc_file(room, "resolv.conf", RESOLV_LOCAL)
    return cloud, room
