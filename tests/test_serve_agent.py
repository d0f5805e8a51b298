"""serve --agent's POST /__check over real loopback sockets: the token first, a whitelisted
JSON body only, one check at a time; and the client half (sweep --deep's ``ask``) naming why
no agent answered. The child check itself is replaced by a recording runner here (the lab test,
tests/test_lab_sweep_deep.py, runs the real one)."""

from __future__ import annotations

import http.client
import json
import socket
import sys
import threading
import time

import pytest

from roomprobe.peer import agent as ag
from roomprobe.peer.serve import Limits, SpeedServer
from roomprobe.peer.speed import TOKEN_HEADER

TOKEN = "right-token-123"
IDS = ("interfaces", "subnet", "controller-port", "dns", "bandwidth", "quality")
REPORT = {"schema": "roomprobe/report/v1", "status": "warn", "complete": True, "probes": [],
          "findings": []}


class Recorder:
    """Stands in for the child check: records the argv, optionally waits for ``release``."""

    def __init__(self, hold: bool = False) -> None:
        self.calls: list[tuple[list[str], float]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        if not hold:
            self.release.set()

    def __call__(self, argv: list[str], wall: float) -> tuple[int, bytes, bytes]:
        self.calls.append((argv, wall))
        self.started.set()
        self.release.wait(10)
        return 1, json.dumps(REPORT).encode(), b""


def start(runner=None, agent: bool = True) -> SpeedServer:
    a = ag.Agent(IDS, runner or Recorder()) if agent else None
    srv = SpeedServer(("127.0.0.1", 0), TOKEN, Limits(), time.monotonic() + 60, agent=a)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return srv


@pytest.fixture
def rec():
    return Recorder()


@pytest.fixture
def srv(rec):
    s = start(rec)
    yield s
    s.shutdown()
    s.server_close()


def post(srv: SpeedServer, body: bytes, token: str = TOKEN, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=10)
    conn.request("POST", ag.CHECK_PATH, body=body, headers={TOKEN_HEADER: token, **(headers or {})})
    resp = conn.getresponse()
    data = json.loads(resp.read())
    conn.close()
    return resp.status, data


def test_a_good_request_runs_the_agents_fixed_command_with_the_validated_values(srv, rec):
    status, data = post(srv, json.dumps({"controller": " 10.0.0.5", "only": ["interfaces", "subnet"],
                                         "timeout": 7}).encode())
    assert status == 200, data
    assert data["schema"] == ag.SCHEMA and data["report"] == REPORT and data["exit_code"] == 1
    (argv, wall), = rec.calls
    assert argv[argv.index("check") + 1:argv.index("--config")] == [
        "--format", "json", "--no-history", "--no-bandwidth", "--no-color"]
    assert argv[argv.index("--controller") + 1] == "10.0.0.5"
    assert argv[argv.index("--only") + 1] == "interfaces,subnet"
    assert argv[argv.index("--timeout") + 1] == "7" and wall == 7 + ag.GRACE_S


@pytest.mark.parametrize("body, words", [
    (b"{not json", "not JSON"),
    (b"\xff\xfe", "not UTF-8"),
    (b"[1, 2]", "JSON object"),
    (b"[" * 4000, "not JSON"),
    (b'{"controller": "10.0.0.5", "config": "/etc/passwd"}', "unknown key(s) 'config'"),
    (b'{"args": ["--webhook", "http://x"]}', "unknown key(s) 'args'"),
    (b'{"controller": "zoom.us"}', "not an IP address"),
    (b'{"controller": "0.0.0.0"}', "cannot be"),
    (b'{"controller": 5}', "IP address as text"),
    (b'{"only": ["interfaces", "../../bin/sh"]}', "unknown probe id"),
    (b'{"only": "interfaces"}', "list of probe ids"),
    (b'{"only": ["bandwidth"]}', "not run by the agent"),
    (b'{"timeout": 31}', "1 to 30"),
    (b'{"timeout": 0}', "1 to 30"),
    (b'{"timeout": true}', "1 to 30"),
    (b'{"timeout": "5; rm -rf /"}', "1 to 30"),
])
def test_bad_requests_get_one_line_400_and_never_run_a_check(srv, rec, body, words):
    status, data = post(srv, body)
    assert status == 400, data
    assert words in data["error"] and "\n" not in data["error"]
    assert rec.calls == []


@pytest.mark.parametrize("scope", [";id|x", "$(id)", "`id`", "eth0;reboot", "a b", "x" * 16,
                                   "é0", "eth0\u202e"])
def test_a_scoped_controller_takes_only_an_interface_name_or_index(srv, rec, scope):
    """Issue 21: ``fe80::1%;id|x`` was accepted and echoed back. The scope must look like an
    interface name or index; anything else is a one-line 400 that does not repeat it."""
    status, data = post(srv, json.dumps({"controller": f"fe80::1%{scope}"}).encode())
    assert status == 400, data
    assert "scope" in data["error"] and "\n" not in data["error"]
    assert scope not in data["error"]
    assert rec.calls == []


@pytest.mark.parametrize("scope", ["eth0", "en0", "utun3", "vlan.20", "br-lan_1", "12"])
def test_a_scoped_controller_with_a_real_interface_is_accepted(srv, rec, scope):
    status, data = post(srv, json.dumps({"controller": f"fe80::1%{scope}"}).encode())
    assert status == 200, data
    (argv, _), = rec.calls
    assert argv[argv.index("--controller") + 1] == f"fe80::1%{scope}"


def test_big_bodies_are_refused_before_they_are_read(srv, rec):
    status, data = post(srv, b'{"only": []}' + b" " * ag.MAX_BODY)
    assert status == 413 and "larger than" in data["error"]
    # a Content-Length that promises a huge body: refused on the header alone
    with socket.create_connection(srv.server_address, timeout=5) as s:
        s.sendall(f"POST {ag.CHECK_PATH} HTTP/1.1\r\nHost: x\r\n{TOKEN_HEADER}: {TOKEN}\r\n"
                  "Content-Length: 99999999999\r\n\r\n".encode())
        assert s.recv(100).startswith(b"HTTP/1.1 413")
    assert rec.calls == []


def test_a_wrong_token_is_refused_before_the_body_is_judged(srv, rec):
    status, data = post(srv, b"{not json", token="wrong-token-000")
    assert status == 403
    assert rec.calls == []


def test_without_agent_the_endpoint_does_not_exist():
    s = start(agent=False)
    try:
        status, data = post(s, b"{}")
        assert status == 404
    finally:
        s.shutdown()
        s.server_close()


def test_one_check_at_a_time_the_second_gets_503_busy():
    rec = Recorder(hold=True)
    s = start(rec)
    try:
        first: dict = {}
        t = threading.Thread(target=lambda: first.update(r=post(s, b"{}")))
        t.start()
        assert rec.started.wait(5)
        status, data = post(s, b"{}")
        assert status == 503 and "busy" in data["error"]
        rec.release.set()
        t.join(10)
        assert first["r"][0] == 200
        assert post(s, b"{}")[0] == 200  # free again afterwards
        assert len(rec.calls) == 2
    finally:
        s.shutdown()
        s.server_close()


def test_a_check_that_overruns_is_504_and_one_that_prints_no_report_is_502():
    import subprocess

    def slow(argv, wall):
        raise subprocess.TimeoutExpired(argv, wall)

    assert ag.Agent(IDS, slow).handle(b"{}")[0] == 504
    status, data = ag.Agent(IDS, lambda a, w: (3, b"", b"roomprobe: bad thing\n")).handle(b"{}")
    assert status == 502 and "bad thing" in data["error"]
    status, _ = ag.Agent(IDS, lambda a, w: (0, b'{"schema": "other"}', b"")).handle(b"{}")
    assert status == 502


def test_the_child_gets_no_roomprobe_variables(monkeypatch):
    monkeypatch.setenv("ROOMPROBE_PEER_TOKEN", "secret-xyz")
    monkeypatch.setenv("ROOMPROBE_CONFIG", "/tmp/evil.toml")
    env = ag.child_env()
    assert not any(k.startswith("ROOMPROBE_") for k in env)


def test_the_real_child_check_runs_locally_only():
    """The agent's own command line, really run: --only interfaces stays on this machine."""
    status, data = ag.Agent(["interfaces"]).handle(b'{"only": ["interfaces"], "timeout": 5}')
    assert status == 200, data
    assert [p["id"] for p in data["report"]["probes"]] == ["interfaces"]


# ------------------------------------------------------------------ the client: why no answer


def _ask(port: int, token: str = TOKEN, deadline: float = 5.0) -> dict:
    return ag.ask("127.0.0.1", port, token, ag.CheckRequest(only=("interfaces",)), deadline)


def test_ask_gets_the_report(srv):
    out = _ask(srv.server_address[1])
    assert out["answered"] and out["report"] == REPORT and out["exit_code"] == 1


def test_ask_names_wrong_token_refused_not_an_agent_busy_and_timeout(srv):
    assert _ask(srv.server_address[1], token="wrong-token-000")["reason"] == "wrong-token"
    plain = start(agent=False)
    try:
        assert _ask(plain.server_address[1])["reason"] == "not-an-agent"
    finally:
        plain.shutdown()
        plain.server_close()
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    assert _ask(port)["reason"] == "refused"
    with socket.socket() as silent:  # accepts (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        t0 = time.monotonic()
        out = _ask(silent.getsockname()[1], deadline=1.0)
        assert out["reason"] == "timeout" and time.monotonic() - t0 < 3
    with socket.socket() as junk:  # something else on the port: answers garbage
        junk.bind(("127.0.0.1", 0))
        junk.listen(4)

        def answer() -> None:
            c, _ = junk.accept()
            c.recv(4096)
            c.sendall(b"SSH-2.0-OpenSSH\r\n")
            c.close()

        threading.Thread(target=answer, daemon=True).start()
        assert _ask(junk.getsockname()[1])["reason"] == "not-an-agent"


def test_ask_names_busy():
    rec = Recorder(hold=True)
    s = start(rec)
    try:
        t = threading.Thread(target=lambda: _ask(s.server_address[1]))
        t.start()
        assert rec.started.wait(5)
        assert _ask(s.server_address[1])["reason"] == "busy"
        rec.release.set()
        t.join(10)
    finally:
        s.shutdown()
        s.server_close()


@pytest.mark.parametrize("peer, want", [("10.0.0.20", ("10.0.0.20", 9095)),
                                        ("10.0.0.20:9096", ("10.0.0.20", 9096)),
                                        ("[fd00::1]:9097", ("fd00::1", 9097))])
def test_agent_address(peer, want):
    assert ag.agent_address(peer) == want


@pytest.mark.parametrize("peer", ["room-4.lab", "10.0.0.20:0", "http://10.0.0.20:9095", "10.0.0.20:x"])
def test_agent_address_refuses(peer):
    with pytest.raises(ValueError):
        ag.agent_address(peer)


def test_argv_of_a_frozen_binary_has_no_python_m(monkeypatch):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    argv = ag.check_argv(ag.CheckRequest(), "/tmp/x.toml")
    assert argv[:2] == [sys.executable, "check"]
