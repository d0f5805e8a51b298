"""``roomprobe exporter`` in-process, on loopback: blackbox_exporter's timeout semantics, the
400s, the concurrency bound, probe_success/probe_duration_seconds on every outcome, the web
config (TLS, bcrypt basic auth checked before any work), per-source connection bounds, /sd and
``sweep --sd-file``. The real Prometheus scraping it is tests/test_lab_exporter.py.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest
from reportkit import as_report

from roomprobe.core.errors import UsageError
from roomprobe.fleet import exporter as ex
from roomprobe.fleet import exporter_modules as em
from roomprobe.fleet import exporter_probe as ep
from roomprobe.fleet import webconfig
from roomprobe.fleet.sweep import Room

PROBE_IDS = frozenset({"interfaces", "subnet", "controller-port", "dns", "cloud", "quality",
                       "bandwidth"})


# ------------------------------------------------------------------ timeouts (blackbox's getTimeout)


@pytest.mark.parametrize(("header", "module", "offset", "want"), [
    (None, 5.0, 0.5, 5.0),          # no header: 120 s - offset, the module's 5 s is smaller
    ("", 200.0, 0.5, 119.5),        # no header, a long module: 120 - 0.5
    ("10", 5.0, 0.5, 5.0),          # the module caps the scrape's
    ("3", 5.0, 0.5, 2.5),           # the scrape's minus the offset caps the module's
    ("0", 30.0, 0.5, 30.0),         # 0 means "not set" -> 120 s - offset, module smaller
    ("0.2", 5.0, 0.5, 5.0),         # negative after the offset: the module's (blackbox does so)
    ("4.5", 4.0, 0.5, 4.0),         # equal: the module's
])
def test_probe_timeout_follows_blackbox(header, module, offset, want):
    assert ex.probe_timeout(header, module, offset) == pytest.approx(want)


@pytest.mark.parametrize("header", ["ten", "nan", "inf", "-1", "1e999"])
def test_probe_timeout_refuses_a_header_that_is_not_seconds(header):
    with pytest.raises(ex.BadRequest):
        ex.probe_timeout(header, 5.0, 0.5)


# ------------------------------------------------------------------ a server on loopback


def modules(**extra: em.Module) -> dict[str, em.Module]:
    base = {"room": em.Module("room", "room", timeout=3.0, connect_timeout=0.5),
            "room-agent": em.Module("room-agent", "room-agent", timeout=5.0, token="t0k3n-lab-1"),
            "label": em.Module("label", "check", timeout=3.0, target="label", only=("dns",))}
    return {**base, **extra}


class Server:
    def __init__(self, settings: ex.Settings) -> None:
        self.srv = ex.serve("127.0.0.1", 0, settings)
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()

    def get(self, path: str, headers: dict[str, str] | None = None, tls: ssl.SSLContext | None = None,
            timeout: float = 20) -> tuple[int, str, dict[str, str]]:
        conn: http.client.HTTPConnection
        if tls is not None:
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=tls, timeout=timeout)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path, headers=headers or {})
            r = conn.getresponse()
            return r.status, r.read().decode(), dict(r.getheaders())
        finally:
            conn.close()


@pytest.fixture
def server(request):
    made: list[Server] = []

    def make(**kw) -> Server:
        kw.setdefault("modules", modules())
        s = Server(ex.Settings(**kw))
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def fake_run(monkeypatch, fn):
    monkeypatch.setattr(ep, "run", fn)


def report(status: str = "fail", room: str = "10.9.0.20"):  # type: ignore[no-untyped-def]
    return as_report({"schema": "roomprobe/report/v1", "status": status, "complete": True,
            "started_at": "2026-01-01T00:00:00Z", "duration_s": 0.1,
            "targets": {"room": room, "role": "controller-side"}, "room_name": "Boardroom",
            "probes": [{"id": "controller-port", "status": status, "duration_s": 0.1,
                        "evidence": {"state": "refused", "ms": 1.0}}],
            "findings": [{"id": "port-refused", "severity": "fail"}] if status == "fail" else [],
            "diagnosis": [{"product": "zoom-rooms", "code": 2002}] if status == "fail" else []})


@pytest.mark.parametrize(("path", "says"), [
    ("/probe?target=10.0.0.20", "module parameter is missing"),
    ("/probe?target=10.0.0.20&module=nope", "unknown module 'nope'"),
    ("/probe?module=room", "target parameter is missing"),
    ("/probe?module=room&target=", "target parameter is missing"),
    ("/probe?module=room&target=not-an-ip", "is not an IP address"),
    ("/probe?module=room&target=0.0.0.0", "cannot be a room's address"),
    ("/probe?module=room&target=10.0.0.20:99999", "is not ADDR or ADDR:PORT"),
    ("/probe?module=room-agent&target=10.0.0.20", "has no peer in the exporter's inventory"),
    ("/probe?module=label&target=a%20b", "takes a name for the series"),
])
def test_bad_requests_are_a_400_with_one_line_and_run_nothing(server, monkeypatch, path, says):
    ran = []
    fake_run(monkeypatch, lambda *a: ran.append(a))
    s = server()
    code, body, _ = s.get(path)
    assert code == 400, body
    assert says in body and body.count("\n") == 1, body
    assert ran == []
    _, metrics, _ = s.get("/metrics")
    assert 'roomprobe_exporter_probes_rejected_total{reason="bad_request"} 1.0' in metrics


def test_bad_timeout_header_is_a_400(server):
    code, body, _ = server().get("/probe?module=room&target=10.0.0.20",
                                 {ex.TIMEOUT_HEADER: "soon"})
    assert code == 400 and "not a number of seconds" in body


def test_success_and_duration_are_emitted_on_every_outcome(server, monkeypatch):
    """A measured failure, a probe past its budget and a crashing probe: probe_success 0 and
    probe_duration_seconds each time; the report's metrics only when there is a report."""
    outcomes = iter(["fail", "hang", "crash", "pass"])
    gate = threading.Event()

    def run(module, target, budget):
        kind = next(outcomes)
        if kind == "hang":
            gate.wait(10)
            return ep.Outcome()
        if kind == "crash":
            raise RuntimeError("boom")
        rep = report(kind)
        return ep.Outcome(success=kind == "pass", reports=[(rep, 0 if kind == "pass" else 2)],
                          duration_s=0.01, timeout_s=budget)

    fake_run(monkeypatch, run)
    s = server()
    got = []
    for _ in range(4):
        code, body, headers = s.get("/probe?module=room&target=10.9.0.20",
                                    {ex.TIMEOUT_HEADER: "1.5"})
        assert code == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
        got.append(body)
    gate.set()
    fail, hang, crash, ok = got
    for body in (fail, hang, crash):
        assert "\nprobe_success 0.0\n" in body, body
        assert "\nprobe_duration_seconds " in body
    assert "\nprobe_success 1.0\n" in ok
    assert "probe_timeout_seconds 1.0\n" in hang  # 1.5 s scrape - 0.5 s offset
    assert 'roomprobe_exit_code{room="Boardroom",target="10.9.0.20"} 2.0' in fail
    assert 'roomprobe_likely_code{code="2002",product="zoom-rooms",room="Boardroom"' in fail
    assert "roomprobe_exit_code" not in hang and "roomprobe_exit_code" not in crash
    _, metrics, _ = s.get("/metrics")
    for outcome, n in (("failure", 1), ("deadline", 1), ("error", 1), ("success", 1)):
        assert f'roomprobe_exporter_probes_total{{module="room",outcome="{outcome}"}} {n}.0' in metrics
    assert "roomprobe_exporter_build_info{" in metrics and "roomprobe_exporter_probes_in_flight" in metrics


def blocking_run(monkeypatch) -> tuple[threading.Event, threading.Event]:
    """Probes that hold their slot: ``started`` is set as one runs, it ends once ``release`` is."""
    started, release = threading.Event(), threading.Event()

    def run(module, target, budget):
        started.set()
        release.wait(10)
        return ep.Outcome(timeout_s=budget)

    fake_run(monkeypatch, run)
    return started, release


def test_concurrent_probes_are_bounded(server, monkeypatch):
    """max_probes 1, no queue: a second probe while one runs is a 503, counted as busy; the
    slot is back once the first ends."""
    started, release = blocking_run(monkeypatch)
    s = server(max_probes=1, max_queue=0)
    first: list = []
    t = threading.Thread(target=lambda: first.append(s.get("/probe?module=room&target=10.9.0.20")))
    t.start()
    assert started.wait(10)
    code, body, _ = s.get("/probe?module=room&target=10.9.0.21")
    assert code == 503 and "busy" in body
    release.set()
    t.join(10)
    assert first[0][0] == 200
    started.clear()
    release.set()
    assert s.get("/probe?module=room&target=10.9.0.21")[0] == 200
    _, metrics, _ = s.get("/metrics")
    assert 'roomprobe_exporter_probes_rejected_total{reason="busy"} 1.0' in metrics


def test_a_queued_probe_waits_for_a_slot(server, monkeypatch):
    started, release = blocking_run(monkeypatch)
    s = server(max_probes=1, max_queue=4)
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(s.get("/probe?module=room&target=10.9.0.20")))
               for _ in range(2)]
    for th in threads:
        th.start()
    assert started.wait(10)
    release.set()
    for th in threads:
        th.join(10)
    assert [r[0] for r in results] == [200, 200]


def test_unknown_paths_and_methods(server):
    s = server()
    assert s.get("/nope")[0] == 404
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=5)
    conn.request("POST", "/probe?module=room&target=10.0.0.1", body=b"x")
    assert conn.getresponse().status == 405
    conn.close()
    code, body, _ = s.get("/")
    assert code == 200 and "room-agent" in body


# ------------------------------------------------------------------ /sd and sweep --sd-file


def rooms() -> list[Room]:
    return [Room("10.9.0.20", 9090, "Boardroom", ("10.9.0.30",), "10.9.0.20", "HQ"),
            Room("10.9.0.21", 9091, None), Room("fd00::21", 9090, "Huddle", site="Lab")]


def test_sd_serves_the_inventory_with_room_labels(server):
    code, body, headers = server(inventory=rooms()).get("/sd")
    assert code == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body) == [
        {"targets": ["10.9.0.20:9090"], "labels": {"room": "Boardroom", "site": "HQ",
                                                   "controller": "10.9.0.30",
                                                   "__meta_roomprobe_agent": "true"}},
        {"targets": ["10.9.0.21:9091"], "labels": {"room": "10.9.0.21"}},
        {"targets": ["[fd00::21]:9090"], "labels": {"room": "Huddle", "site": "Lab"}}]


def test_room_agent_takes_only_inventory_rooms_with_a_peer(server, monkeypatch):
    seen = []
    fake_run(monkeypatch, lambda m, t, b: seen.append((m.name, t.address, t.room.peer)) or ep.Outcome())
    s = server(inventory=rooms())
    assert s.get("/probe?module=room-agent&target=10.9.0.20:9090")[0] == 200
    assert seen == [("room-agent", "10.9.0.20", "10.9.0.20")]
    assert s.get("/probe?module=room-agent&target=10.9.0.21:9091")[0] == 400  # no peer


def test_sweep_sd_file_writes_file_sd_json(tmp_path):
    from click.testing import CliRunner

    from roomprobe.cli import cli

    inv = tmp_path / "rooms.csv"
    inv.write_text("name,address,site,controller\nBoardroom,127.0.0.1,HQ,127.0.0.2\n"
                   ",127.0.0.3,,\n")
    out = tmp_path / "rooms.json"
    r = CliRunner().invoke(cli, ["sweep", str(inv), "--sd-file", str(out), "--timeout", "0.2",
                                 "--port", "1", "--format", "json"], standalone_mode=False)
    assert r.exception is None or isinstance(r.exception, SystemExit), r.output
    assert json.loads(out.read_text()) == [
        {"targets": ["127.0.0.1:1"], "labels": {"room": "Boardroom", "site": "HQ",
                                                 "controller": "127.0.0.2"}},
        {"targets": ["127.0.0.3:1"], "labels": {"room": "127.0.0.3"}}]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left
    with pytest.raises(UsageError, match="file_sd reads only"):
        from roomprobe.fleet import sd

        sd.write(tmp_path / "rooms.txt", rooms())


# ------------------------------------------------------------------ modules


def write(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_modules_load_and_refuse_mistakes(tmp_path):
    tok = write(tmp_path, "token", "secret-token-1\n")
    path = write(tmp_path, "exporter.toml", f"""
[modules.room]
kind = "room"
timeout = 4
[modules.agent]
kind = "room-agent"
only = ["interfaces"]
token_file = "{tok}"
[modules.cloud]
kind = "check"
target = "label"
only = ["dns", "cloud"]
""")
    mods = em.load(path, PROBE_IDS)
    assert mods["room"].timeout == 4 and mods["agent"].token == "secret-token-1"
    assert mods["cloud"].only == ("dns", "cloud") and mods["cloud"].target == "label"
    assert "secret-token-1" not in repr(mods["agent"])
    for body, says in [
        ('[modules.x]\nkind = "laser"\n', "kind must be one of"),
        ('[modules.room]\ntimeout = 0\n', "timeout must be a number"),
        ('[modules.room]\nonly = ["dns"]\n', "unknown key(s) only"),
        ('[modules.c]\nkind = "check"\n', "needs only ="),
        ('[modules.c]\nkind = "check"\nonly = ["warp"]\n', "unknown probe id(s) warp"),
        ('[modules.a]\nkind = "room-agent"\n', "sends the agents' token"),
        ('[modules.a]\nkind = "room-agent"\nonly = ["bandwidth"]\n', "never runs bandwidth"),
        ('[modules."bad name"]\nkind = "room"\n', "module name"),
        ('[exporter]\nx = 1\n', "unknown table(s) exporter"),
        ("", "no [modules.NAME] tables"),
    ]:
        with pytest.raises(UsageError, match=_re(says)):
            em.load(write(tmp_path, "bad.toml", body), PROBE_IDS)


def _re(text: str) -> str:
    import re

    return re.escape(text)


def test_builtin_modules_need_a_token_for_the_agents():
    assert set(em.builtin(None)) == {"room", "cloud", "path"}
    assert set(em.builtin("tok-12345")) == {"room", "cloud", "path", "room-agent", "quality"}


def test_check_module_command_line_keeps_the_token_off_it():
    m = em.Module("quality", "check", target="peer", only=("quality", "bandwidth"), port=9095,
                  token="secret-token-2")
    argv = ep.check_argv(m, ep.Target("10.0.0.5", "10.0.0.5", 9095), "/tmp/c.toml", "Boardroom")
    assert "secret-token-2" not in " ".join(argv)
    assert argv[argv.index("--peer") + 1] == "10.0.0.5:9095"
    assert argv[argv.index("--only") + 1] == "quality,bandwidth" and "--no-bandwidth" not in argv
    assert argv[argv.index("--room-name") + 1] == "Boardroom"
    cloud = em.Module("cloud", "check", target="label", only=("dns", "cloud"))
    argv = ep.check_argv(cloud, ep.Target("hq"), "/tmp/c.toml", "hq")
    assert "--no-bandwidth" in argv and "--peer" not in argv and "--room" not in argv


# ------------------------------------------------------------------ web config: TLS and auth


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    from labca import LabCA

    d = tmp_path_factory.mktemp("pki")
    ca = LabCA(d / "ca", name="roomprobe exporter test CA", key_ids=True)  # as real CAs issue: 3.13 is strict
    srv = ca.issue("exporter", ["127.0.0.1", "localhost"])
    return ca, srv


def hashed(pw: str) -> str:
    import bcrypt

    return bcrypt.hashpw(pw.encode(), bcrypt.gensalt(4)).decode()


def web_yml(tmp_path: Path, pki, users: bool = True, extra: str = "") -> str:
    ca, srv = pki
    text = (f"tls_server_config:\n  cert_file: {srv.cert}\n  key_file: {srv.key}\n{extra}")
    if users:
        text += f"basic_auth_users:\n  prometheus: '{hashed('right-password')}'\n"
    return write(tmp_path, "web.yml", text)


def client_tls(pki) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki[0].cert_path))
    return ctx


def basic(user: str, pw: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}


def test_tls_and_basic_auth_come_before_any_work(server, monkeypatch, tmp_path, pki):
    ran = []
    fake_run(monkeypatch, lambda m, t, b: ran.append(t) or ep.Outcome(timeout_s=b))
    s = server(web=webconfig.load(web_yml(tmp_path, pki)))
    tls = client_tls(pki)
    path = "/probe?module=room&target=10.9.0.20"
    assert s.get(path, tls=tls)[0] == 401  # no credentials
    code, body, headers = s.get(path, basic("prometheus", "wrong-password"), tls=tls)
    assert code == 401 and headers["WWW-Authenticate"].startswith("Basic")
    assert s.get(path, basic("nobody", "right-password"), tls=tls)[0] == 401
    assert s.get("/probe?module=nope", basic("prometheus", "wrong"), tls=tls)[0] == 401  # not a 400
    assert s.get("/metrics", tls=tls)[0] == 401
    assert ran == []
    for _ in range(2):  # the second is answered from the cache of good pairs
        assert s.get(path, basic("prometheus", "right-password"), tls=tls)[0] == 200
    assert len(ran) == 2
    code, metrics, _ = s.get("/metrics", basic("prometheus", "right-password"), tls=tls)
    assert "roomprobe_exporter_auth_failures_total 5.0" in metrics


def test_plain_http_to_the_tls_port_is_refused(server, tmp_path, pki):
    s = server(web=webconfig.load(web_yml(tmp_path, pki, users=False)))
    with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
        s.get("/metrics")
    assert s.get("/metrics", tls=client_tls(pki))[0] == 200
    _, metrics, _ = s.get("/metrics", tls=client_tls(pki))
    assert 'roomprobe_exporter_connections_refused_total{reason="tls"} 1.0' in metrics


def test_client_certificates_when_required(server, tmp_path, pki):
    ca, _ = pki
    s = server(web=webconfig.load(web_yml(tmp_path, pki, users=False, extra=(
        f"  client_ca_file: {ca.cert_path}\n  client_auth_type: RequireAndVerifyClientCert\n"))))
    with pytest.raises((ssl.SSLError, ConnectionError, OSError, http.client.HTTPException)):
        s.get("/metrics", tls=client_tls(pki))  # no client certificate
    cert = ca.issue("client", ["prometheus"])
    ctx = client_tls(pki)
    ctx.load_cert_chain(str(cert.cert), str(cert.key))
    assert s.get("/metrics", tls=ctx)[0] == 200


@pytest.mark.parametrize(("text", "says"), [
    ("tls_server_confg: {}\n", "unknown key(s) tls_server_confg"),
    ("tls_server_config: {cert_file: a}\n", "needs both cert_file and key_file"),
    ("tls_server_config: {cert_file: a, key_file: b, client_auth_type: RequireAnyClientCert}\n",
     "not supported"),
    ("tls_server_config: {cert_file: a, key_file: b, client_auth_type: VerifyClientCertIfGiven}\n",
     "needs client_ca_file"),
    ("tls_server_config: {cert_file: a, key_file: b, min_version: TLS10}\n", "min_version"),
    ("tls_server_config: {cert_file: /nonexistent/a, key_file: /nonexistent/b}\n", "cannot load"),
    ("basic_auth_users: {prometheus: plain-text}\n", "not a bcrypt hash"),
    ("basic_auth_users: [a, b]\n", "must map user names"),
    ("[1, 2\n", "not valid YAML"),
    ("- a\n", "must be a YAML mapping"),
])
def test_web_config_mistakes_are_one_line(tmp_path, text, says):
    with pytest.raises(UsageError, match=_re(says)):
        webconfig.load(write(tmp_path, "web.yml", text))


def test_web_config_mistake_from_the_command_line_is_exit_3(tmp_path):
    import subprocess
    import sys

    bad = write(tmp_path, "web.yml", "basic_auth_users: {prometheus: plain}\n")
    r = subprocess.run([sys.executable, "-m", "roomprobe", "exporter", "--listen", "127.0.0.1:1",
                        "--web.config.file", bad], capture_output=True, text=True, timeout=60)
    assert r.returncode == 3 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "bcrypt" in r.stderr


# ------------------------------------------------------------------ connection bounds


def test_connections_per_source_are_bounded(server):
    """Two idle connections from 127.0.0.1 fill max_per_source=2: the third is closed at once,
    without an answer; once they go, requests are served again."""
    s = server(max_per_source=2, read_timeout=30)
    idle = [socket.create_connection(("127.0.0.1", s.port), timeout=5) for _ in range(2)]
    deadline = time.monotonic() + 10
    while s.srv.per_source.get("127.0.0.1", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)  # the server accepts them in its own thread
    third = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    try:
        third.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert third.recv(100) == b""  # closed without a response
    except ConnectionResetError:
        pass  # closed before our request arrived: refused too
    finally:
        third.close()
    for c in idle:
        c.close()
    deadline = time.monotonic() + 10
    while s.srv.per_source.get("127.0.0.1", 0) and time.monotonic() < deadline:
        time.sleep(0.02)  # the server sees them go
    code, metrics, _ = s.get("/metrics")
    assert code == 200
    assert 'roomprobe_exporter_connections_refused_total{reason="per_source"} 1.0' in metrics


@pytest.mark.parametrize("tls", [False, True])
def test_a_trickled_request_head_is_cut_at_its_deadline(server, tmp_path, pki, tls):
    """One header byte at a time keeps every single read under read_timeout; the head as a
    whole still has read_timeout, then the server closes the connection (in TLS too)."""
    web = webconfig.load(web_yml(tmp_path, pki, users=False)) if tls else webconfig.WebConfig()
    s = server(read_timeout=0.5, web=web)
    c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    if tls:
        c = client_tls(pki).wrap_socket(c, server_hostname="127.0.0.1")
    c.sendall(b"GET /metrics HTTP/1.1\r\n")
    sent, closed = 0, False
    try:
        for _ in range(200):  # up to 20 s of trickling
            c.sendall(b"X")
            sent += 1
            time.sleep(0.1)
    except OSError:
        closed = True
    else:
        try:
            closed = c.recv(100) == b""
        except OSError:
            closed = True
    finally:
        c.close()
    assert closed and sent < 200, sent
    _, metrics, _ = s.get("/metrics", tls=client_tls(pki) if tls else None)
    assert "roomprobe_exporter_errors_total 0.0" in metrics


def test_room_module_measures_a_refused_port_on_loopback(server):
    """The real room module (sweep's per-room logic), on loopback: a closed port is 'refused',
    with the sweep's metrics and room labels from the inventory."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    closed = lst.getsockname()[1]
    lst.close()  # nothing listens there now
    s = server(inventory=[Room("127.0.0.1", closed, "Loop room", site="Here")])
    code, body, _ = s.get(f"/probe?module=room&target=127.0.0.1:{closed}")
    assert code == 200
    assert "\nprobe_success 0.0\n" in body
    assert 'roomprobe_exit_code{room="Loop room",target="127.0.0.1"} 2.0' in body
    assert 'roomprobe_likely_code{code="2002"' in body


# ------------------------------------------------------------------ the shipped examples


def test_shipped_exporter_modules_load(tmp_path):
    import shutil

    from roomprobe.core.registry import load_probes

    repo = Path(__file__).resolve().parent.parent
    shutil.copy(repo / "packaging" / "exporter" / "exporter.toml", tmp_path / "exporter.toml")
    (tmp_path / "peer-token").write_text("a-peer-token-123\n")
    mods = em.load(str(tmp_path / "exporter.toml"), frozenset(load_probes()))
    assert set(mods) == {"room", "room-agent", "cloud", "path", "quality"}
    assert mods["quality"].token == "a-peer-token-123" and mods["cloud"].target == "label"
    assert mods["path"].only == ("path",) and mods["path"].kind == "check"


def test_shipped_exporter_unit_verifies(tmp_path):
    import shutil
    import subprocess

    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    unit = Path(__file__).resolve().parent.parent / "packaging" / "exporter" / "roomprobe-exporter.service"
    out = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    ours = [ln for ln in (out.stdout + out.stderr).splitlines()
            if "roomprobe-exporter" in ln and "is not executable" not in ln]
    assert ours == [], ours  # the only complaint allowed: roomprobe not installed here


# ------------------------------------------------------------------ random input: one line, never a traceback

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.floats(allow_nan=True),
                     st.text(max_size=12), st.sampled_from(["NoClientCert", "TLS13", "room",
                                                            "check", "peer", "label", "$2b$10$x"]))
_values = st.recursive(_scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(
    st.sampled_from([*webconfig.TOP_KEYS, *webconfig.TLS_KEYS, "kind", "timeout", "only", "port",
                     "target", "config", "token_file", "x"]), c, max_size=4), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(_values)
def test_random_web_configs_are_a_config_or_one_line(raw):
    try:
        webconfig.parse(raw, "/nonexistent")
    except UsageError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=300, deadline=None)
@given(_values)
def test_random_module_bodies_are_a_module_or_one_line(body):
    try:
        em._module("m", body, "exporter config x [modules.m]", "/nonexistent", None, PROBE_IDS)
    except UsageError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80), st.sampled_from(["room", "room-agent", "label"]))
def test_random_targets_are_a_target_or_a_400(text, name):
    try:
        ep.parse_target(modules()[name], text, {})
    except ep.BadTarget as exc:
        assert "\n" not in str(exc)
