"""A real Prometheus scraping ``roomprobe exporter`` in the lab, over TLS with basic auth.

The monitoring host (lan .10) runs the exporter and Debian's Prometheus (its API on the
namespace's own loopback), with packaging/monitoring/prometheus.yml itself: the test only
substitutes the lab's addresses and paths, shortens the intervals (1 s scrapes and evaluation
instead of minutes) and drops the Alertmanager section (there is none in the lab). The shipped
alert rules are loaded from a copy whose ``for:`` durations are shortened to 2 s (20 minutes
would not fit a test); the expressions are the shipped ones.

Rooms, all named in an inventory turned into file_sd by ``sweep --sd-file``:
  healthy  (.21) a ZoomRooms process on 9090; also the 'serve' peer of the quality module
  dropped  (.22) its firewall drops TCP 9090
  refused  (.23) up, nothing on 9090
  absent   (.29) no device at that address
  agent    (.24) 9090 answers (so the sweep row alone passes), but a squatter holds it: the
                 room's own check via its 'serve --agent' fails (room-agent module)
Asserted: the targets are up; the series carry the room labels (room, site, controller); the
shipped ZoomRoomNetworkCritical fires for the four failing rooms and not for the healthy one;
every query of the shipped Grafana dashboard returns data from this server; a scrape with a
wrong password and a plain-HTTP scrape are refused (their targets are down, with the reason);
an extra job discovering the rooms through the exporter's /sd (http_sd) finds the same rooms.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import cloudlab
import pytest
import yaml
from lab import LAB_DNS, REPO
from sweeplab import DROP_9090

pytestmark = pytest.mark.lab

TOKEN = "lab-exporter-agent-token"
PASSWORD = "lab-exporter-password-1"
PROM_PORT = 19090
EXPORTER_PORT = 9129
MONITORING = REPO / "packaging" / "monitoring"
FAILING = ("Dropped room", "Refused room", "Absent room", "Agent room")
FETCH = ("import sys, urllib.request\ntry:\n    print(urllib.request.urlopen(sys.argv[1], timeout=5)"
         ".read().decode())\nexcept OSError as e:\n    print(e)")
JOBS = ("roomprobe-room", "roomprobe-room-agent", "roomprobe-cloud", "roomprobe-quality",
        "roomprobe-exporter")


def prometheus_config(tmp: Path, mon_addr: str, peer: str, rules: Path) -> str:
    """The shipped prometheus.yml with the lab's addresses, paths and intervals."""
    text = (MONITORING / "prometheus.yml").read_text()
    for old, new in (("10.0.8.5:9129", f"{mon_addr}:{EXPORTER_PORT}"),
                     ("10.0.5.20:9095", peer),
                     ("/etc/prometheus/roomprobe-ca.pem", str(tmp / "pki" / "ca.pem")),
                     ("/etc/prometheus/roomprobe-exporter.password", str(tmp / "password")),
                     ("/etc/prometheus/roomprobe-rooms.json", str(tmp / "rooms.json")),
                     ("/etc/prometheus/roomprobe-alerts.yml", str(rules))):
        assert old in text, old
        text = text.replace(old, new)
    cfg = yaml.safe_load(text)
    cfg.pop("alerting")  # no Alertmanager in the lab
    cfg["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    timing = {"roomprobe-room": ("2s", "2s"), "roomprobe-room-agent": ("8s", "8s"),
              "roomprobe-cloud": ("5s", "5s"), "roomprobe-quality": ("12s", "12s"),
              "roomprobe-exporter": ("1s", "1s")}
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    assert set(jobs) == set(JOBS)
    for name, (interval, timeout) in timing.items():
        jobs[name].update(scrape_interval=interval, scrape_timeout=timeout)
    # Two jobs that must be refused: the room job with a wrong password, and in plain HTTP.
    wrong = json.loads(json.dumps(jobs["roomprobe-room"]))
    wrong["job_name"] = "wrong-password"
    wrong["basic_auth"] = {"username": "prometheus", "password": "not-the-password"}
    plain = json.loads(json.dumps(jobs["roomprobe-exporter"]))
    plain["job_name"] = "plain-http"
    plain["scheme"] = "http"
    del plain["tls_config"]
    # The same rooms discovered from the exporter's own /sd (http_sd), over TLS with auth.
    httpsd = json.loads(json.dumps(jobs["roomprobe-room"]))
    httpsd["job_name"] = "http-sd"
    httpsd["http_sd_configs"] = [{"url": f"https://{mon_addr}:{EXPORTER_PORT}/sd",
                                  "refresh_interval": "5s",
                                  "tls_config": jobs["roomprobe-room"]["tls_config"],
                                  "basic_auth": jobs["roomprobe-room"]["basic_auth"]}]
    del httpsd["file_sd_configs"]
    cfg["scrape_configs"] += [wrong, plain, httpsd]
    return yaml.safe_dump(cfg, sort_keys=False)


def shortened_rules(tmp: Path) -> Path:
    """The shipped rules with every ``for:`` at 2 s (the expressions unchanged)."""
    rules = yaml.safe_load((MONITORING / "roomprobe-alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "2s"
    path = tmp / "roomprobe-alerts.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    return path


def exporter_config(tmp: Path, cloud_config: Path) -> Path:
    path = tmp / "exporter.toml"
    (tmp / "token").write_text(TOKEN + "\n")
    path.write_text(f"""
[modules.room]
kind = "room"
timeout = 5
connect_timeout = 1.2

[modules.room-agent]
kind = "room-agent"
timeout = 15
connect_timeout = 1.2
only = ["interfaces", "subnet", "controller-port"]
check_timeout = 3
token_file = "token"

[modules.cloud]
kind = "check"
target = "label"
only = ["dns", "cloud"]
timeout = 20
check_timeout = 4
config = "{cloud_config}"

[modules.quality]
kind = "check"
target = "peer"
only = ["quality", "bandwidth"]
timeout = 20
check_timeout = 4
config = "{cloud_config}"
token_file = "token"
""")
    return path


class Prom:
    def __init__(self, host) -> None:
        self.host = host

    def get(self, path: str, **params: str) -> dict:
        url = f"http://127.0.0.1:{PROM_PORT}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        # in the monitoring host's namespace, whose loopback the API listens on
        r = self.host.run([sys.executable, "-I", "-c", FETCH, url], check=False, timeout=15)
        try:
            return json.loads(r.stdout)
        except ValueError:
            return {"status": "unreachable", "raw": r.stdout[:200]}

    def query(self, expr: str) -> list[dict]:
        data = self.get("/api/v1/query", query=expr)
        assert data.get("status") == "success", (expr, data)
        return data["data"]["result"]


def wait_for(what: str, fn, timeout: float):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = fn()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout:g} s; last: {str(last)[:1500]}")


@pytest.fixture
def monitoring(lab, tmp_path):
    import bcrypt
    from labca import LabCA

    cloud, mon = cloudlab.build(lab, tmp_path, room_octet=10)  # the monitoring host
    healthy = lab.add_host("healthy", "lan", 21)
    dropped = lab.add_host("dropped", "lan", 22)
    lab.add_host("refused", "lan", 23)
    agent = lab.add_host("agent", "lan", 24)
    healthy.listen(9090)
    dropped.listen(9090)
    dropped.nft(DROP_9090)
    agent.listen(9090, comm="squatter")  # answers outside; the room's own check sees who holds it
    agent.serve(TOKEN, "--agent", duration=300)
    healthy.serve(TOKEN, duration=300)  # the quality module's peer
    net = healthy.addr.rsplit(".", 1)[0]
    inv = tmp_path / "rooms.csv"
    inv.write_text("name,address,site,controller,peer\n"
                   f"Healthy room,{healthy.addr},HQ,{mon.addr},\n"
                   f"Dropped room,{dropped.addr},HQ,{mon.addr},\n"
                   f"Refused room,{net}.23,Annex,,\n"
                   f"Absent room,{net}.29,Annex,,\n"
                   f"Agent room,{agent.addr},HQ,{mon.addr},{agent.addr}\n")
    sd = mon.roomprobe("sweep", str(inv), "--sd-file", str(tmp_path / "rooms.json"),
                       "--timeout", "1", "--format", "json", timeout=60)
    assert sd.rc in (0, 1, 2) and (tmp_path / "rooms.json").exists(), sd.stderr
    # the exporter's certificate, key and user
    ca = LabCA(tmp_path / "pki", name="roomprobe exporter lab CA")
    cert = ca.issue("exporter", [mon.addr])
    (tmp_path / "password").write_text(PASSWORD)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(10)).decode()
    web = tmp_path / "web.yml"
    web.write_text(f"tls_server_config:\n  cert_file: {cert.cert}\n  key_file: {cert.key}\n"
                   f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    # the cloud module's check: the lab's cloud and its DNS, short bandwidth/quality runs
    cloud_cfg = cloud.config(control=True, extra=f"""
[probes.dns]
resolvers = ["{LAB_DNS}"]
names = ["zoom.us", "www.zoom.us"]
allow_networks = ["203.0.113.0/24", "2001:db8::/32"]
os_lookup = false
[probes.bandwidth]
duration = 4.0
omit = 0.5
min_steady = 1.0
[probes.quality]
duration = 2.0
""")
    exp = mon.popen([sys.executable, "-m", "roomprobe", "exporter", "--web.listen-address",
                     f"{mon.addr}:{EXPORTER_PORT}", "--web.config.file", str(web), "--config",
                     str(exporter_config(tmp_path, cloud_cfg)), "--inventory", str(inv)],
                    stdout=subprocess.PIPE, text=True)
    assert exp.stdout is not None
    line = exp.stdout.readline()
    assert "roomprobe exporter: https://" in line and "basic auth on" in line, line
    rules = shortened_rules(tmp_path)
    prom_yml = tmp_path / "prometheus.yml"
    prom_yml.write_text(prometheus_config(tmp_path, mon.addr, f"{healthy.addr}:9095", rules))
    check = subprocess.run(["promtool", "check", "config", str(prom_yml)], capture_output=True,
                           text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    mon.popen(["prometheus", f"--config.file={prom_yml}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
               f"--web.listen-address=127.0.0.1:{PROM_PORT}", "--log.level=warn"])
    prom = Prom(mon)
    wait_for("Prometheus up", lambda: prom.get("/api/v1/status/buildinfo").get("status") == "success",
             30)
    return {"prom": prom, "mon": mon, "exporter": exp, "healthy": healthy, "agent": agent,
            "dropped": dropped}


def by_job(prom: Prom) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for t in prom.get("/api/v1/targets").get("data", {}).get("activeTargets", []):
        out.setdefault(t["labels"]["job"], []).append(t)
    return out


def dashboard_queries() -> list[str]:
    dash = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


def test_prometheus_scrapes_the_exporter_and_the_shipped_rules_and_dashboard_work(monitoring):
    prom: Prom = monitoring["prom"]

    def all_up():
        jobs = by_job(prom)
        want = {"roomprobe-room": 4, "roomprobe-room-agent": 1, "roomprobe-cloud": 1,
                "roomprobe-quality": 1, "roomprobe-exporter": 1, "http-sd": 4}
        ok = all(len(jobs.get(j, [])) == n and all(t["health"] == "up" for t in jobs[j])
                 for j, n in want.items())
        return jobs if ok else None

    jobs = wait_for("every roomprobe target up", all_up, 45)
    # the refused scrapes: down, and why
    wrong = jobs["wrong-password"]
    assert wrong and all(t["health"] == "down" and "401" in t["lastError"] for t in wrong), wrong
    plain = jobs["plain-http"]
    assert plain and plain[0]["health"] == "down", plain
    # http_sd from the exporter's /sd found the same rooms, with the same labels
    assert sorted((t["labels"]["room"], t["labels"].get("site")) for t in jobs["http-sd"]) == sorted(
        (t["labels"]["room"], t["labels"].get("site")) for t in jobs["roomprobe-room"])
    # the room labels from file_sd (and the exporter's own room/target)
    series = prom.query('roomprobe_exit_code{job="roomprobe-room"}')
    labels = {s["metric"]["room"]: s["metric"] for s in series}
    assert set(labels) == {"Healthy room", "Dropped room", "Refused room", "Absent room"}, labels
    assert labels["Healthy room"]["site"] == "HQ"
    assert labels["Healthy room"]["controller"] == monitoring["mon"].addr
    assert labels["Absent room"]["site"] == "Annex" and "controller" not in labels["Absent room"]
    assert labels["Healthy room"]["target"] == monitoring["healthy"].addr
    codes = {s["metric"]["room"]: s["value"][1] for s in series}
    assert codes["Healthy room"] == "0" and all(codes[r] == "2" for r in FAILING if r in codes)
    agent = prom.query('roomprobe_exit_code{job="roomprobe-room-agent"}')
    assert [(s["metric"]["room"], s["value"][1]) for s in agent] == [("Agent room", "2")], agent
    # the agent room: open from outside (the row's controller-port passes), failed by its own
    # check (the deep part, asked of its agent)
    outside = prom.query('roomprobe_success{room="Agent room",probe="controller-port"}')
    assert [s["value"][1] for s in outside] == ["1"], outside
    deep = prom.query('roomprobe_probe_status{room="Agent room",probe="deep",status="fail"}')
    assert [s["value"][1] for s in deep] == ["1"], deep
    success = {s["metric"]["room"]: s["value"][1] for s in prom.query("probe_success")
               if "room" in s["metric"]}
    assert success["Healthy room"] == "1" and success["Agent room"] == "0"

    # the shipped alert rule fires for the failing rooms, not for the healthy one
    def firing():
        alerts = prom.get("/api/v1/alerts").get("data", {}).get("alerts", [])
        crit = {a["labels"]["room"] for a in alerts
                if a["labels"]["alertname"] == "ZoomRoomNetworkCritical" and a["state"] == "firing"}
        return crit if set(FAILING) <= crit else None

    crit = wait_for("ZoomRoomNetworkCritical firing for the failing rooms", firing, 30)
    assert "Healthy room" not in crit

    # every query of the shipped dashboard returns data from this server
    def dashboard():
        empty = [q for q in dashboard_queries()
                 if not prom.query(q.replace("$room", ".*"))]
        return "ok" if not empty else None

    try:
        wait_for("every dashboard query has data", dashboard, 30)
    except AssertionError:
        empty = [q for q in dashboard_queries() if not prom.query(q.replace("$room", ".*"))]
        raise AssertionError(f"dashboard queries without data: {empty}") from None
    bw = prom.query("roomprobe_bandwidth_bytes_per_second")
    assert {s["metric"]["room"] for s in bw} == {"Healthy room"}  # the peer's inventory name
    rate = prom.query('roomprobe_exporter_probes_total{module="room",outcome="failure"}')
    assert rate and float(rate[0]["value"][1]) > 0
