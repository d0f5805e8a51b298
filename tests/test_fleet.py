"""After-run exports on the bare machine (only --only interfaces, or 127.0.0.1 targets):
Prometheus textfile, webhook on a state change (to a local HTTP server), history via the CLI."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client.parser import text_string_to_metric_families
from reportkit import as_report

from roomprobe.fleet import metrics, webhook


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update({"ROOMPROBE_CONFIG": os.devnull, "NO_COLOR": "1"})
    return subprocess.run([sys.executable, "-m", "roomprobe", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


class Receiver:
    """A webhook receiver on 127.0.0.1 answering with the given status codes in turn (then 200)."""

    def __init__(self, codes: list[int] | None = None) -> None:
        self.codes = list(codes or [])
        self.posts: list[dict] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.posts.append(json.loads(body))
                code = outer.codes.pop(0) if outer.codes else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(codes: list[int] | None = None) -> Receiver:
        made.append(Receiver(codes))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture
def no_proxy_env(monkeypatch):
    for k in list(os.environ):
        if k.lower().endswith("_proxy"):
            monkeypatch.delenv(k)


def families(text: str) -> dict[str, list]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def test_prometheus_textfile_from_a_real_check(tmp_path):
    prom = tmp_path / "roomprobe.prom"
    out = cli("check", "--only", "interfaces", "--history-db", str(tmp_path / "h.sqlite3"),
              "--prometheus-textfile", str(prom))
    assert out.returncode == 0, out.stderr
    fam = families(prom.read_text())
    assert [s.value for s in fam["roomprobe_exit_code"]] == [0.0]
    assert abs(fam["roomprobe_last_run_timestamp_seconds"][0].value - time.time()) < 60
    status = {(s.labels["probe"], s.labels["status"]): s.value for s in fam["roomprobe_probe_status"]}
    assert status[("interfaces", "pass")] == 1.0 and status[("interfaces", "fail")] == 0.0
    assert len(status) == 5
    assert [p.name for p in tmp_path.iterdir() if "prom" in p.name] == ["roomprobe.prom"]  # no temp left


def test_prometheus_measurements_and_bounded_labels():
    """The bandwidth evidence as the probe nests it; no address or server name becomes a label."""
    report = {"started_at": "2026-11-22T00:00:00Z", "duration_s": 3.2, "complete": True, "status": "warn",
              "targets": {"room": "198.51.100.20", "controller": None, "role": "controller", "port": 9090},
              "probes": [
                  {"id": "controller-port", "status": "pass", "duration_s": 0.02,
                   "evidence": {"state": "open", "ms": 12.5, "room": "198.51.100.20", "port": 9090}},
                  {"id": "bandwidth", "status": "warn", "duration_s": 3.0, "evidence": {
                      "path": "internet", "endpoint": "x", "min_down_mbps": 2.5, "ping_lost": 1,
                      "idle": {"samples": 9, "median_ms": 20.0, "jitter_ms": 7.0},
                      "download": {"mbps": 42.0, "loaded": {"samples": 5, "median_ms": 80.0}},
                      "upload": {"mbps": 1.5, "loaded": {"samples": 5, "median_ms": None}}}}],
              "findings": [{"id": "upload-low", "severity": "warn"}, {"id": "note", "severity": "info"}]}
    fam = families(metrics.render(as_report(report), 1))
    assert fam["roomprobe_controller_port_connect_seconds"][0].value == 0.0125
    bw = {s.labels["direction"]: s.value for s in fam["roomprobe_bandwidth_bytes_per_second"]}
    assert bw == {"download": 42e6 / 8, "upload": 1.5e6 / 8}
    assert fam["roomprobe_bandwidth_idle_jitter_seconds"][0].value == 0.007
    assert [s.value for s in fam["roomprobe_bandwidth_loaded_rtt_seconds"]] == [0.08]
    assert fam["roomprobe_bandwidth_rtt_loss_ratio"][0].value == pytest.approx(1 / 20)
    assert {s.labels["severity"]: s.value for s in fam["roomprobe_findings"]} == {
        "info": 1.0, "warn": 1.0, "fail": 0.0}
    labels = {k: v for samples in fam.values() for s in samples for k, v in s.labels.items()
              if k not in ("room", "target")}
    assert not set(labels.values()) & {"198.51.100.20", "9090", "x"}
    assert set(labels) <= {"probe", "status", "severity", "direction", "path", "version", "role"}
    assert {s.labels["room"] for samples in fam.values() for s in samples} == {"198.51.100.20"}


@pytest.mark.parametrize("args, words", [
    (["--prometheus-textfile", "/tmp/roomprobe.txt"], "only reads *.prom"),
    (["--prometheus-textfile", "/nonexistent-dir/roomprobe.prom"], "does not exist"),
    (["--webhook", "ftp://127.0.0.1/x"], "give an http:// or https:// URL"),
])
def test_bad_export_flags_are_usage_errors(args, words):
    out = cli("check", "--only", "interfaces", *args)
    assert out.returncode == 3 and out.stdout == "", out
    assert len(out.stderr.strip().splitlines()) == 1 and words in out.stderr


def test_webhook_posts_only_on_state_change(tmp_path, receiver):
    r = receiver()
    db = str(tmp_path / "h.sqlite3")
    out = cli("check", "--only", "interfaces", "--history-db", db, "--webhook", r.url)
    assert out.returncode == 0, out.stderr
    assert len(r.posts) == 1 and r.posts[0]["status"] == "pass" and r.posts[0]["previous_status"] is None
    assert r.posts[0]["report"]["schema"] == "roomprobe/report/v1"
    cli("check", "--only", "interfaces", "--history-db", db, "--webhook", r.url)
    assert len(r.posts) == 1  # same state: nothing sent
    out = cli("check", "--room", "127.0.0.1", "--port", "1", "--only", "controller-port",
              "--history-db", db, "--webhook", r.url)
    assert out.returncode == 2
    # Another target and probe set: its own first run, not a change from the interfaces run.
    assert len(r.posts) == 2 and r.posts[1]["status"] == "fail" and r.posts[1]["previous_status"] is None
    assert [f["id"] for f in r.posts[1]["findings"]] == ["port-not-listening"]
    # Alternating the two never fakes a change (before keying, each of these posted).
    cli("check", "--only", "interfaces", "--history-db", db, "--webhook", r.url)
    cli("check", "--room", "127.0.0.1", "--port", "1", "--only", "controller-port",
        "--history-db", db, "--webhook", r.url)
    assert len(r.posts) == 2


def test_webhook_retries_5xx_with_backoff_then_delivers(receiver, no_proxy_env):
    r = receiver([503, 429])
    t0 = time.monotonic()
    d = webhook.post(r.url, {"x": 1}, time.monotonic() + 10, rng=random.Random(3))
    assert d.delivered and [a["status"] for a in d.attempts] == [503, 429, 200]
    assert len(r.posts) == 3 and time.monotonic() - t0 < 3


def test_webhook_gives_up_on_4xx_and_after_bounded_attempts(receiver, no_proxy_env):
    r = receiver([404])
    d = webhook.post(r.url, {}, time.monotonic() + 10)
    assert not d.delivered and d.gave_up == "rejected" and len(r.posts) == 1
    r = receiver([500] * 10)
    d = webhook.post(r.url, {}, time.monotonic() + 30, attempts=3, rng=random.Random(1))
    assert not d.delivered and d.gave_up == "attempts" and len(r.posts) == 3


def test_backoff_is_jittered_and_capped():
    rng = random.Random(5)
    for attempt in range(10):
        cap = min(webhook.MAX_DELAY_S, webhook.BASE_DELAY_S * 2 ** attempt)
        delays = [webhook.backoff(attempt, rng) for _ in range(200)]
        assert all(0 <= x <= cap for x in delays) and len(set(delays)) > 150


def test_a_hanging_receiver_never_holds_the_check_past_its_deadline(tmp_path, no_proxy_env):
    """The receiver accepts the connection and never answers: delivery stops at the deadline."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    url = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    try:
        t0 = time.monotonic()
        d = webhook.post(url, {}, time.monotonic() + 1.5)
        took = time.monotonic() - t0
        assert not d.delivered and d.gave_up == "deadline" and 1.3 < took < 2.0, (took, d)
        t0 = time.monotonic()
        out = cli("check", "--only", "interfaces", "--timeout", "1", "--history-db", str(tmp_path / "h.sqlite3"),
                  "--webhook", url)
        took = time.monotonic() - t0
        assert out.returncode == 0  # a dead receiver does not change the verdict...
        assert "webhook not delivered" in out.stderr and "deadline" in out.stderr
        assert took < 1 + 2.0 + 2.5, took  # ...nor hold it past deadline (+ floor, + start-up)
    finally:
        s.close()


def test_history_command_text_and_json(tmp_path):
    db = str(tmp_path / "h.sqlite3")
    out = cli("history", "--history-db", db)
    assert out.returncode == 3 and "no history at" in out.stderr
    assert cli("check", "--only", "interfaces", "--history-db", db).returncode == 0
    cli("check", "--room", "127.0.0.1", "--port", "1", "--only", "controller-port", "--history-db", db)
    out = cli("history", "--history-db", db, "--format", "json")
    data = json.loads(out.stdout)
    assert [r["status"] for r in data["runs"]] == ["fail", "pass"]
    assert [f["id"] for f in data["changes"]["new"]] == ["port-not-listening"]
    # The interfaces-only run is not a baseline for the controller-port run (other probe set).
    assert data["changes"]["baseline"] is None
    text = cli("history", "--history-db", db).stdout
    assert "FAIL" in text and "+ port-not-listening (fail, controller-port)" in text
    limited = cli("history", "--history-db", db, "--limit", "1", "--format", "json")
    assert len(json.loads(limited.stdout)["runs"]) == 1
    assert json.loads(cli("history", "--history-db", db, "--since", "2099-01-01", "--format",
                          "json").stdout)["runs"] == []
    out = cli("history", "--history-db", db, "--since", "last tuesday")
    assert out.returncode == 3 and "--since 'last tuesday'" in out.stderr
    # --no-history records nothing.
    cli("check", "--only", "interfaces", "--history-db", db, "--no-history")
    assert len(json.loads(cli("history", "--history-db", db, "--format", "json").stdout)["runs"]) == 2


def test_history_does_not_slow_the_check(tmp_path):
    """Recording is one small transaction: well under 100 ms even with a few hundred runs stored."""
    from roomprobe.fleet import history

    conn = history.connect(tmp_path / "h.sqlite3")
    big = as_report(json.loads(cli("check", "--only", "interfaces", "--format", "json", "--no-history").stdout))
    for _ in range(300):
        history.record(conn, big, 0)
    t0 = time.monotonic()
    for _ in range(10):
        history.record(conn, big, 0)
    assert (time.monotonic() - t0) / 10 < 0.1


def test_unwritable_history_warns_and_keeps_the_verdict(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    out = cli("check", "--only", "interfaces", "--history-db", str(blocker / "h.sqlite3"))
    assert out.returncode == 0 and out.stdout.startswith("PASS"), out
    assert out.stderr.startswith("roomprobe: warning: cannot open the history database")
    out = cli("check", "--only", "interfaces", "--history-db", str(tmp_path))
    assert out.returncode == 3 and "is a directory" in out.stderr


def test_a_trickling_receiver_is_cut_at_the_deadline(no_proxy_env):
    """A receiver that sends one header byte every 0.2 s never trips a socket timeout; the
    delivery is still abandoned at the deadline."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    stop = threading.Event()

    def trickle() -> None:
        conn, _ = srv.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        while not stop.is_set():
            try:
                conn.sendall(b"a")
            except OSError:
                break
            time.sleep(0.2)
        conn.close()

    threading.Thread(target=trickle, daemon=True).start()
    try:
        t0 = time.monotonic()
        d = webhook.post(f"http://127.0.0.1:{srv.getsockname()[1]}/", {}, time.monotonic() + 1.5)
        took = time.monotonic() - t0
        assert not d.delivered and d.gave_up == "deadline" and took < 1.8, (took, d)
        assert d.attempts[0]["error"].startswith("timeout")
    finally:
        stop.set()
        srv.close()
