"""Fleet exports checked with the tools fleets run, on loopback only: real checks (a real
bandwidth test against ``roomprobe serve`` on 127.0.0.1), their textfiles read by Debian's
prometheus-node-exporter and ``promtool check metrics``, the Nagios output parsed as a plugin's."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from reportkit import as_report

from roomprobe.fleet import metrics

TOKEN = "fleet-test-token-1"
NODE_EXPORTER = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
PROMTOOL = shutil.which("promtool")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update({"ROOMPROBE_CONFIG": os.devnull, "NO_COLOR": "1"})
    return subprocess.run([sys.executable, "-m", "roomprobe", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture(scope="module")
def peer():
    """``roomprobe serve`` on 127.0.0.1: the speed peer and the room's 9090 stand-in."""
    speed, zoom = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "roomprobe", "serve", "--bind", "127.0.0.1",
                             "--speed-port", str(speed), "--port", str(zoom), "--token", TOKEN,
                             "--duration", "300"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "session token: " in line and TOKEN not in line, line
        yield speed, zoom
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def two_rooms(peer, tmp_path_factory):
    """Two rooms' real checks (bandwidth + controller port), each with its own textfile."""
    speed, zoom = peer
    d = tmp_path_factory.mktemp("textfiles")
    out = {}
    for name in ("Room A", "Room B"):
        prom = d / f"roomprobe-{name[-1].lower()}.prom"
        js = d / f"{name[-1]}.json"
        r = cli("check", "--room", "127.0.0.1", "--room-name", name, "--port", str(zoom),
                "--only", "controller-port,bandwidth", "--peer", f"127.0.0.1:{speed}",
                "--peer-token", TOKEN, "--set", "bandwidth.duration=2", "--set", "bandwidth.streams=1",
                "--set", "bandwidth.min_steady=0.5", "--set", "bandwidth.omit=0.3",
                "--timeout", "15", "--format", "nagios", "--json", str(js),
                "--history-db", str(d / "h.sqlite3"), "--prometheus-textfile", str(prom))
        import json

        out[name] = (r, prom, json.loads(js.read_text()))
    return d, out


def fams(text: str) -> dict[str, list]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def test_bandwidth_is_exported_from_the_probes_real_evidence(two_rooms):
    _, rooms = two_rooms
    r, prom, rep = rooms["Room A"]
    assert r.returncode in (0, 1, 2), r.stdout + r.stderr
    bw = next(p for p in rep["probes"] if p["id"] == "bandwidth")
    assert bw["status"] != "skip" and bw["evidence"]["download"]["mbps"], bw
    fam = fams(prom.read_text())
    got = {s.labels["direction"]: s.value for s in fam["roomprobe_bandwidth_bytes_per_second"]}
    ev = bw["evidence"]
    assert got["download"] == pytest.approx(ev["download"]["mbps"] * 1e6 / 8)
    assert got["upload"] == pytest.approx(ev["upload"]["mbps"] * 1e6 / 8)
    idle = fam["roomprobe_bandwidth_idle_rtt_seconds"][0]
    assert idle.value == pytest.approx(ev["idle"]["median_ms"] / 1000)
    cp = next(p for p in rep["probes"] if p["id"] == "controller-port")
    assert "roomprobe_controller_port_connect_seconds" not in fam  # only an open port's handshake
    # Every series names its room and target; one success per probe that ran; info with version.
    for _name, samples in fam.items():
        for s in samples:
            assert s.labels.get("room") == "Room A" and s.labels.get("target") == "127.0.0.1", s
    # (serve's stand-in listener is python on loopback: controller-port rightly fails.)
    assert {s.labels["probe"]: s.value for s in fam["roomprobe_success"]} == {
        p["id"]: (1.0 if p["status"] == "pass" else 0.0) for p in rep["probes"]}
    assert cp["status"] == "fail" and bw["status"] == "pass"
    assert fam["roomprobe_info"][0].labels["version"]


def test_configuration_is_never_exported_as_a_measurement():
    """dns's slow_ms threshold and bandwidth's limits sit in evidence next to measured values."""
    rep = {"started_at": "2026-11-22T00:00:00Z", "duration_s": 1.0, "complete": True, "status": "pass",
           "targets": {"room": None, "controller": None, "role": "unknown"}, "host": {"hostname": "pc"},
           "probes": [{"id": "dns", "status": "pass", "duration_s": 0.1, "evidence": {
               "slow_ms": 300, "lifetime_s": 2.0, "elapsed_ms": 40.0,
               "queries": [{"resolver": "r", "outcome": "answer", "ms": 12.0},
                           {"resolver": "r", "outcome": "answer", "ms": 30.0},
                           {"resolver": "r", "outcome": "timeout", "ms": 2000.0}]}}],
           "findings": []}
    text = metrics.render(as_report(rep), 0)
    assert "slow_ms" not in text and "300" not in text.split("roomprobe_dns")[1]
    f = fams(text)
    assert f["roomprobe_dns_query_duration_seconds_max"][0].value == pytest.approx(0.030)
    assert f["roomprobe_dns_queries_failed"][0].value == 1.0
    assert not [n for n in f if n.endswith("_ms") or "_ms_" in n]


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian: prometheus) not installed")
def test_promtool_accepts_the_textfiles(two_rooms):
    _, rooms = two_rooms
    for _r, prom, _ in rooms.values():
        res = subprocess.run([PROMTOOL, "check", "metrics"], input=prom.read_text(),
                             capture_output=True, text=True, timeout=30)
        assert res.returncode == 0, res.stdout + res.stderr


def scrape(directory: Path) -> tuple[str, str]:
    """One scrape of node_exporter's textfile collector: (body, node_exporter's log)."""
    port = free_port()
    log = directory / "node_exporter.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([NODE_EXPORTER, "--collector.disable-defaults", "--collector.textfile",
                                 f"--collector.textfile.directory={directory}",
                                 f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=fh, stderr=fh)
        try:
            t_end = time.monotonic() + 10
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
                        body = resp.read().decode()
                        break
                except OSError:
                    if time.monotonic() > t_end:
                        raise
                    time.sleep(0.1)
        finally:
            proc.terminate()
            proc.wait(10)
    return body, log.read_text()


@pytest.mark.skipif(NODE_EXPORTER is None, reason="prometheus-node-exporter not installed")
def test_node_exporter_reads_two_rooms_without_collision(two_rooms, tmp_path, monkeypatch):
    d, rooms = two_rooms
    body, log = scrape(d)
    assert re.search(r"^node_textfile_scrape_error 0$", body, re.M), body[-2000:]
    assert "collected before" not in log and "level=error" not in log, log
    rooms_seen = {m for m in re.findall(r'roomprobe_exit_code\{[^}]*room="([^"]+)"', body)}
    assert rooms_seen == {"Room A", "Room B"}
    # Control: the same two files without the room/target labels collide (the bug this fixes):
    # node_exporter 1.5 logs the collision and serves only one room's series.
    monkeypatch.setattr(metrics, "room_labels", lambda rep: {})
    for i, (_, _, rep) in enumerate(rooms.values()):
        metrics.write(tmp_path / f"r{i}.prom", as_report(rep), 0)
    body, log = scrape(tmp_path)
    assert "was collected before with the same name and label values" in log
    assert len(re.findall(r"^roomprobe_exit_code ", body, re.M)) == 1


def test_nagios_output_is_a_short_status_line_with_perfdata(two_rooms):
    _, rooms = two_rooms
    r, _, rep = rooms["Room B"]
    lines = r.stdout.splitlines()
    assert re.match(r"^(OK|WARNING|CRITICAL|UNKNOWN) - \S", lines[0]) and len(lines[0]) < 80, lines
    assert lines[0].split(" - ")[0] == {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}[r.returncode]
    perf = " ".join(lines[1:]).split("|", 1)[1]
    data = dict(re.findall(r"'([^']+)'=([-0-9.]+)", perf))
    bw = next(p for p in rep["probes"] if p["id"] == "bandwidth")["evidence"]
    assert float(data["bandwidth_download_mbps"]) == pytest.approx(bw["download"]["mbps"], abs=0.01)
    assert "bandwidth_rtt_loss" in data and "bandwidth_time" in data and "duration" in data
    assert re.search(r"'bandwidth_download_mbps'=[0-9.]+;;;0", perf)


def test_nagios_unknown_explains_itself_on_stdout(tmp_path):
    r = cli("check", "--only", "interfaces", "--format", "nagios", "--room", "10.0.0.1", "--room", "10.0.0.2")
    assert r.returncode == 3
    assert r.stdout.startswith("UNKNOWN - ") and "roomprobe sweep 10.0.0.1 10.0.0.2" in r.stdout
    assert len(r.stdout.splitlines()[0]) < 80
    assert "roomprobe sweep 10.0.0.1 10.0.0.2" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian: prometheus) not installed")
def test_shipped_alert_rules_pass_promtool_unit_tests():
    d = Path(__file__).resolve().parent.parent / "packaging" / "monitoring"
    res = subprocess.run([PROMTOOL, "test", "rules", "roomprobe-alerts.test.yml"], cwd=d,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
