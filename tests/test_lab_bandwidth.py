"""The bandwidth probe in a real lab: ``roomprobe serve`` on the room, ``check --peer`` on the
controller, links shaped with ``tc tbf``, an internet endpoint behind tinyproxy, dead endpoints.

(sch_netem is not on this kernel, so latency faults come from a tbf queue that bloats.)
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.lab

TOKEN = "lab-token-12345"


def shape(host, mbit: int, latency: str = "400ms") -> None:
    host.run(["tc", "qdisc", "del", "dev", "eth0", "root"], check=False)
    host.run(["tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", f"{mbit}mbit",
              "burst", "32kbit", "latency", latency])


def start_serve(host, *extra: str) -> subprocess.Popen:
    proc = host.popen([sys.executable, "-m", "roomprobe", "serve", "--bind", host.addr, "--token",
                       TOKEN, "--duration", "120", *extra], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "session token: " + TOKEN in line, line
    return proc


def bw_check(ctrl, *args: str):
    return ctrl.roomprobe("check", "--format", "json", "--peer-token", TOKEN, *args, timeout=60)


def test_shaped_link_low_at_2_mbit_not_at_10_and_bloat_only_with_a_deep_queue(lab):
    room = lab.add_host("room", "lan", 20)
    ctrl = lab.add_host("ctrl", "lan", 30)
    start_serve(room, "--port", "9090")  # also stands in for Zoom Rooms on 9090

    for h in (room, ctrl):
        shape(h, 2, "400ms")  # 2 Mbit/s each way, 400 ms of queue: bloats under load
    out = bw_check(ctrl, "--room", room.addr, "--peer", room.addr)
    assert out.rc == 2, out.stdout + out.stderr
    bw = out.probe("bandwidth")
    ev = bw["evidence"]
    assert bw["status"] == "fail" and ev["path"] == "lan" and ev["proxy"] is None
    for d in ("download", "upload"):
        assert 1.6 <= ev[d]["mbps"] <= 2.3, ev[d]
    assert {"bandwidth-down-low", "bandwidth-up-low", "bufferbloat"} <= out.finding_ids()
    assert ev["download"]["loaded"]["median_ms"] - ev["idle"]["median_ms"] >= 100
    assert ev["seconds"] <= 11.0 and out.seconds < 20 and 0 < ev["bytes"] < 5e6
    assert out.probe("controller-port")["status"] == "pass"  # serve --port 9090 answered

    for h in (room, ctrl):
        shape(h, 10, "20ms")  # 10 Mbit/s with a short queue: enough, and no bloat
    out = bw_check(ctrl, "--peer", room.addr)
    ev = out.probe("bandwidth")["evidence"]
    for d in ("download", "upload"):
        assert 8.5 <= ev[d]["mbps"] <= 10.5, ev[d]
    assert not {"bandwidth-down-low", "bandwidth-up-low", "bufferbloat"} & out.finding_ids(), \
        out.report["findings"]
    assert out.probe("bandwidth")["status"] == "pass" and out.rc == 0, out.stdout


def test_more_displays_raise_the_bar(lab):
    room = lab.add_host("room", "lan", 20)
    ctrl = lab.add_host("ctrl", "lan", 30)
    start_serve(room)
    for h in (room, ctrl):
        shape(h, 5, "20ms")
    out = bw_check(ctrl, "--peer", room.addr, "--set", "bandwidth.displays=3")
    f = next(f for f in out.report["findings"] if f["id"] == "bandwidth-down-low")
    assert f["severity"] == "warn" and f["evidence"]["rooms_mbps"] == 6.0
    assert 4.0 <= f["evidence"]["mbps"] <= 5.3
    assert "bandwidth-up-low" not in out.finding_ids()  # 2 Mbps up suffices for any room


def test_unreachable_peer_and_wrong_token(lab):
    room = lab.add_host("room", "lan", 20)
    ctrl = lab.add_host("ctrl", "lan", 30)
    out = bw_check(ctrl, "--peer", room.addr)  # nothing serves yet: refused
    assert out.finding_ids() == {"bandwidth-endpoint-unreachable"} and out.rc == 2
    assert out.probe("bandwidth")["evidence"]["error"].startswith("ConnectionRefusedError")
    assert out.seconds < 10

    start_serve(room)
    out = ctrl.roomprobe("check", "--format", "json", "--peer", room.addr, "--peer-token",
                         "not-the-token")
    bw = out.probe("bandwidth")
    assert bw["evidence"]["http_status"] == 403 and "token" in bw["summary"]
    assert out.finding_ids() == {"bandwidth-endpoint-unreachable"}
    assert "not-the-token" not in out.stdout  # the token never lands in the report

    # a firewall that drops the port: one connect timeout, then the finding
    room.nft("table inet f {\n chain i { type filter hook input priority 0; policy accept;\n"
             "  tcp dport 9095 drop\n }\n}\n")
    out = bw_check(ctrl, "--peer", room.addr, "--set", "bandwidth.connect_timeout=1.5")
    assert out.finding_ids() == {"bandwidth-endpoint-unreachable"}
    assert "timeout" in out.probe("bandwidth")["evidence"]["error"] and out.seconds < 10


def test_internet_path_goes_through_the_system_proxy(lab, tmp_path):
    """The endpoint answers only the proxy (router firewall), so a result proves the path."""
    room = lab.add_host("room", "lan", 20)
    speed, proxy = lab.add_cloud_address(5), lab.add_cloud_address(3)
    lab.router_popen([sys.executable, "-m", "roomprobe", "serve", "--bind", speed, "--token", TOKEN,
                      "--duration", "120"])
    conf = tmp_path / "tinyproxy.conf"
    conf.write_text(f"Port 8888\nListen {proxy}\nTimeout 10\nAllow 198.51.100.0/24\nMaxClients 20\n"
                    "LogLevel Error\n")
    lab.router_popen(["tinyproxy", "-d", "-c", str(conf)])
    lab.router_exec(["nft", "-f", "-"], input=(
        "table inet onlyproxy {\n chain i { type filter hook input priority 0; policy accept;\n"
        f"  ip saddr 198.51.100.0/24 ip daddr {speed} tcp dport 9095 drop\n }}\n}}\n"))
    for _ in range(100):
        listening = lab.router_exec(["ss", "-Hltn"]).stdout
        if f"{proxy}:8888" in listening and f"{speed}:9095" in listening:
            break
        time.sleep(0.1)
    urls = ["--set", f"bandwidth.down_url=http://{speed}:9095/__down",
            "--set", f"bandwidth.up_url=http://{speed}:9095/__up", "--set", f"bandwidth.token={TOKEN}"]

    out = room.roomprobe("check", "--format", "json", "--bandwidth", *urls,
                         env={"http_proxy": f"http://{proxy}:8888"}, timeout=60)
    bw = out.probe("bandwidth")
    assert bw["status"] == "pass", bw
    assert bw["evidence"]["path"] == "internet" and bw["evidence"]["proxy"] == f"http://{proxy}:8888"
    assert bw["evidence"]["download"]["mbps"] > 10 and bw["evidence"]["upload"]["mbps"] > 10

    out = room.roomprobe("check", "--format", "json", "--bandwidth", *urls,
                         "--set", "bandwidth.connect_timeout=1", timeout=60)  # no proxy: dropped
    assert out.finding_ids() == {"bandwidth-endpoint-unreachable"}
    assert out.probe("bandwidth")["evidence"]["proxy"] is None


def test_a_link_already_busy_shows_high_idle_latency(lab):
    """No netem on this kernel: a background iperf3 flow fills a 2 Mbit/s tbf queue (400 ms) on
    the switch port towards the controller (a forwarding hop, like an access point), so even the
    'idle' round trips wait in it, as on a link someone else saturates."""
    room = lab.add_host("room", "lan", 20)
    ctrl = lab.add_host("ctrl", "lan", 30)
    start_serve(room)
    room.popen(["iperf3", "-s", "-B", room.addr])
    subprocess.run(["ip", "netns", "exec", lab.switch, "tc", "qdisc", "add", "dev", ctrl.port, "root",
                    "tbf", "rate", "2mbit", "burst", "32kbit", "latency", "400ms"], check=True)
    time.sleep(0.5)
    # room -> ctrl at a little over the link rate (UDP): the queue stays full
    ctrl.popen(["iperf3", "-c", room.addr, "-R", "-u", "-b", "2.4M", "-t", "40"])
    time.sleep(3.0)
    out = bw_check(ctrl, "--peer", room.addr)
    ev = out.probe("bandwidth")["evidence"]
    assert ev["idle"]["median_ms"] >= 100, ev["idle"]
    latency = next(f for f in out.report["findings"] if f["id"] == "latency-high")
    assert latency["severity"] == "warn" and latency["evidence"]["idle_median_ms"] >= 100
    assert ev["download"]["mbps"] is None or ev["download"]["mbps"] < 1.5  # the flood wins
    assert "bandwidth-down-low" in out.finding_ids()
