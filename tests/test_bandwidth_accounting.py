"""The measurement counts only bytes the peer acknowledged, and a bad proxy setting is a
finding, not a crash (loopback only: nothing here leaves 127.0.0.1)."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import struct
import subprocess
import sys
import termios
import threading
import time

import pytest

from roomprobe.peer import speed
from roomprobe.peer.speed import Endpoint, ProxySettingError


def _stalling_server() -> tuple[socket.socket, list[socket.socket]]:
    """Accepts, reads the request head, then never reads again: the upload's window closes."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)  # inherited by accepted
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    held: list[socket.socket] = []

    def serve() -> None:
        conn, _ = srv.accept()
        held.append(conn)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(1)
            if not chunk:
                return
            head += chunk
        held.append(head)  # type: ignore[arg-type]

    threading.Thread(target=serve, daemon=True).start()
    return srv, held


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIOCOUTQ/SIOCINQ are Linux's")
def test_an_upload_stream_that_stalls_is_not_credited_with_its_unacked_send_queue():
    """The lab flake (2.47 Mbps over a 2 Mbit/s tbf, an upload TimeoutError in the errors): a
    stream that timed out let go of its socket, and the bytes still queued unacknowledged in it
    were then counted as delivered. Here the peer stops reading, so everything beyond its
    receive buffer sits unacked in ours until the direction's watchdog gives up."""
    srv, held = _stalling_server()
    port = srv.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    ep = Endpoint(f"{base}/__down", f"{base}/__up", {}, 0.5, use_proxy=False)
    st = speed.Settings(streams=1, omit_s=0.2, min_steady_s=10.0, first_bytes=16 * 1024 * 1024)
    try:
        res = speed.run_direction(ep, True, 3.0, st)
        assert res["errors"] == ["upload stalled: no data for 0.6 s"] or \
            res["errors"][0].startswith("upload stalled"), res
        conn, head = held[0], held[1]
        raw = fcntl.ioctl(conn.fileno(), termios.FIONREAD, b"\0\0\0\0")
        acked = struct.unpack("i", raw)[0]  # all the peer's kernel took (it read only the head)
        assert acked > 0
        # counted = acknowledged body bytes; before the fix it was acked + the whole send queue
        # (3 MB against 49 kB). One byte of slack: the FIN of the stop's shutdown() takes a
        # sequence number and shows in the unacked count.
        assert acked - 1 <= res["bytes"] <= acked, (res["bytes"], acked, len(head))
    finally:
        for s in held:
            if isinstance(s, socket.socket):
                s.close()
        srv.close()


@pytest.mark.parametrize("value, problem, unsupported", [
    ("http://127.0.0.1:abc", "not a number", False),
    ("http://127.0.0.1:70000", "not a number", False),
    ("http://:8080", "names no host", False),
    ("socks5://127.0.0.1:1080", "HTTP proxies only", True),
])
def test_system_proxy_names_the_bad_setting_and_where_it_lives(monkeypatch, value, problem,
                                                                 unsupported):
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("https_proxy", value)
    with pytest.raises(ProxySettingError) as exc:
        speed.system_proxy("https://speed.example.invalid/__down")
    e = exc.value
    assert (e.setting, e.where) == ("https_proxy", "environment variable")
    assert problem in e.problem and e.unsupported is unsupported
    assert "https_proxy (environment variable)" in str(e)
    # a good value passes through; a URL of another scheme does not use https_proxy
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:3128")
    assert speed.system_proxy("https://speed.example.invalid/__down") == "http://127.0.0.1:3128"
    assert speed.system_proxy("http://speed.example.invalid/__down") is None


def test_redact_proxy_cuts_credentials_even_when_the_value_does_not_parse():
    assert speed.redact_proxy("http://user:pa/ss#w@127.0.0.1:abc") == "http://***@127.0.0.1:abc"
    assert speed.redact_proxy("127.0.0.1:8080") == "127.0.0.1:8080"
    # A PAC URL named as the place a setting lives: its query values are secrets too.
    assert speed.redact_proxy("http://wpad.example/wpad.dat?token=s3cr3t") == \
        "http://wpad.example/wpad.dat?token=***"


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    return subprocess.run([sys.executable, "-m", "roomprobe", *args], capture_output=True,
                          text=True, timeout=60,
                          env={**clean, "ROOMPROBE_CONFIG": os.devnull, "NO_COLOR": "1", **env})


def test_check_with_a_bad_proxy_value_gives_a_finding_not_a_crash():
    """Issue 13's repro: https_proxy=http://127.0.0.1:abc roomprobe check --only bandwidth.
    The endpoints are on 127.0.0.1 (nothing is sent anyway: the setting is refused first)."""
    urls = ["--set", "bandwidth.down_url=https://127.0.0.1:9/__down",
            "--set", "bandwidth.up_url=https://127.0.0.1:9/__up"]
    t0 = time.monotonic()
    out = _cli("check", "--only", "bandwidth", "--format", "json", "--no-history", *urls,
               "--displays", "3", "--resolution", "1080p",
               env={"https_proxy": "http://user:s3cr/et@127.0.0.1:abc"})
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and "s3cr" not in out.stdout + out.stderr
    rep = json.loads(out.stdout)
    bw = next(p for p in rep["probes"] if p["id"] == "bandwidth")
    assert bw["status"] == "fail" and bw["evidence"]["setting"] == "https_proxy"
    assert bw["evidence"]["where"] == "environment variable"
    assert bw["summary"].startswith("needs 4.0 up / 12.0 down for 3 displays at 1080p")
    f = rep["findings"][0]
    assert f["id"] == "bandwidth-endpoint-unreachable" and "https_proxy" in f["hint"]
    assert time.monotonic() - t0 < 30
    text = _cli("check", "--only", "bandwidth", "--no-history", *urls,
                env={"https_proxy": "http://127.0.0.1:abc"})
    assert text.returncode == 2 and "Traceback" not in text.stderr
    assert "https_proxy (environment variable)" in text.stdout


@pytest.mark.parametrize("args, words", [
    (["--displays", "4"], "not in the range"), (["--displays", "x"], "not a valid integer"),
    (["--resolution", "4k"], "'4k' is not one of"),
    (["--set", "bandwidth.resolution=4k"], "720p, 1080p"),
    (["--set", "bandwidth.profile=teams"], "rooms, client")])
def test_bad_profile_input_is_one_line_exit_3(args, words):
    out = _cli("check", "--only", "bandwidth", "--no-history", *args, env={})
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 3 and len(lines) == 1 and words in lines[0], out.stderr
