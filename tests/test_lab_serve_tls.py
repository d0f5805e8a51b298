"""``serve --tls`` in a real lab: the session token never crosses the wire in clear.

A room namespace runs ``roomprobe serve --tls --agent`` (a self-signed certificate made in the
lab's own state directory); a controller namespace runs ``check --peer ... --peer-fingerprint``
(bandwidth over HTTPS, call quality over the UDP reflector) and ``sweep --deep`` with the same
pin. tcpdump inside the room namespace captures every packet of its eth0; the token's bytes
must not be in the capture, while the capture holds the TLS handshakes and the UDP flows (so the
test cannot pass on an empty file). A second, plain serve on another port, with another token,
is the control: its token IS in the capture, so the search would find a token sent in clear.

A wrong fingerprint is one line and exit 3, before any probe sends anything.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.lab

TOKEN = "tls-lab-token-7f3a9c21e5"
PLAIN_TOKEN = "plain-control-token-48d1"


def _serve(host, env, *extra: str) -> tuple[subprocess.Popen, list[str]]:
    proc = host.popen([sys.executable, "-m", "roomprobe", "serve", "--bind", host.addr,
                       "--duration", "150", *extra], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    lines = []
    while not lines or not lines[-1].startswith("on the other device"):
        line = proc.stdout.readline()
        assert line, lines
        lines.append(line.strip())
    return proc, lines


@pytest.fixture(scope="module")
def tls_lab(tmp_path_factory):
    from lab import Lab, lab_unavailable_reason, require_tool

    if (why := lab_unavailable_reason()) is not None:
        pytest.skip(why)
    require_tool("tcpdump", "tcpdump")  # a failure under .ci/run, which installs it
    tmp = tmp_path_factory.mktemp("tls")
    env = {**os.environ, "XDG_STATE_HOME": str(tmp / "state"), "NO_COLOR": "1"}
    with Lab() as lab:
        room = lab.add_host("room", "lan", 20)
        ctrl = lab.add_host("ctrl", "lan", 30)
        pcap = tmp / "room.pcap"
        dump = room.popen(["tcpdump", "-i", "eth0", "-U", "-n", "-s", "0", "-w", str(pcap)],
                          stderr=subprocess.PIPE, text=True)
        assert dump.stderr is not None and "listening on" in dump.stderr.readline()
        _tls, lines = _serve(room, env, "--tls", "--agent", "--token", TOKEN)
        fp = lines[-1].rsplit("--peer-fingerprint ", 1)[1].split()[0]
        _plain, _ = _serve(room, env, "--speed-port", "9096", "--token", PLAIN_TOKEN)
        check = ctrl.roomprobe("check", "--room", room.addr, "--peer", room.addr, "--peer-token",
                               TOKEN, "--peer-fingerprint", fp, "--only", "bandwidth,quality",
                               "--set", "bandwidth.duration=2", "--set", "quality.duration=2",
                               "--format", "json", timeout=120)
        inv = tmp / "rooms.csv"
        inv.write_text(f"name,address,peer\nRoom,{room.addr},{room.addr}\n")
        deep = ctrl.roomprobe("sweep", str(inv), "--deep", "--peer-token", TOKEN,
                              "--peer-fingerprint", fp, "--deep-only", "interfaces",
                              "--format", "json", timeout=120)
        wrong_fp = ("0" if fp[0] != "0" else "1") + fp[1:]
        wrong = ctrl.roomprobe("check", "--room", room.addr, "--peer", room.addr, "--peer-token",
                               TOKEN, "--peer-fingerprint", wrong_fp, "--only", "bandwidth,quality",
                               timeout=60)
        wrong_deep = ctrl.roomprobe("sweep", str(inv), "--deep", "--peer-token", TOKEN,
                                    "--peer-fingerprint", wrong_fp, "--format", "json", timeout=120)
        control = ctrl.roomprobe("check", "--room", room.addr, "--peer", f"{room.addr}:9096",
                                 "--peer-token", PLAIN_TOKEN, "--only", "bandwidth",
                                 "--set", "bandwidth.duration=1", timeout=120)
        time.sleep(0.5)
        dump.send_signal(signal.SIGINT)  # tcpdump flushes and closes the file
        dump.wait(timeout=10)
        yield {"check": check, "deep": deep, "wrong": wrong, "wrong_deep": wrong_deep,
               "control": control, "pcap": pcap.read_bytes(), "fp": fp, "lines": lines,
               "room": room}


def test_serve_prints_its_fingerprint_and_the_pinned_command(tls_lab):
    fp, lines = tls_lab["fp"], tls_lab["lines"]
    assert len(fp) == 64 and all(c in "0123456789abcdef" for c in fp)
    assert any("certificate SHA-256 fingerprint:" in line for line in lines), lines
    assert TOKEN not in "\n".join(lines)  # given with --token: never printed (service logs)
    assert f"--peer-fingerprint {fp}" in lines[-1]


def test_check_over_tls_measures_bandwidth_and_quality(tls_lab):
    out = tls_lab["check"]
    assert "Traceback" not in out.stderr, out.stderr
    bw, q = out.probe("bandwidth"), out.probe("quality")
    assert bw["status"] in ("pass", "warn") and bw["evidence"]["path"] == "lan", bw
    assert q["status"] in ("pass", "warn"), q


def test_deep_sweep_over_tls_gets_the_rooms_own_check(tls_lab):
    data = json.loads(tls_lab["deep"].stdout)
    assert data["rooms"][0]["deep"]["answered"] is True, data["rooms"][0]["deep"]


def test_the_token_never_crosses_the_wire_in_clear(tls_lab):
    cap = tls_lab["pcap"]
    assert len(cap) > 100_000  # the bandwidth transfers and the UDP flows were captured
    assert b"\x16\x03" in cap  # TLS handshake records
    assert PLAIN_TOKEN.encode() in cap  # the control: a token sent in clear IS found
    assert TOKEN.encode() not in cap


def test_a_wrong_fingerprint_is_refused_with_one_line(tls_lab):
    wrong = tls_lab["wrong"]
    assert wrong.rc == 3 and "Traceback" not in wrong.stderr, (wrong.stdout, wrong.stderr)
    assert len(wrong.stderr.strip().splitlines()) == 1, wrong.stderr
    assert "not the pinned" in wrong.stderr and "nothing was sent" in wrong.stderr
    rep = json.loads(tls_lab["wrong_deep"].stdout)["rooms"][0]
    assert rep["deep"]["reason"] == "wrong-certificate" and rep["status"] != "pass", rep["deep"]
