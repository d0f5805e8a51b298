"""serve's listeners under abuse in the lab (issue 21): three hosts on one LAN, ``roomprobe
serve`` on the room, an attacker host, and a legitimate client that must still be served.

- TCP: the attacker holds 100 slow-header connections and re-opens each the moment serve
  closes it; the controller's 80 requests are all served (before: 0 of 80).
- UDP: a datagram captured on the wire during a real quality check is replayed by the
  attacker from 50 new source ports: none is answered, and the next quality check passes
  (before: 13 to 15 answered, and the sessions they opened made the next check fail).
"""

from __future__ import annotations

import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

HERE = Path(__file__).resolve().parent
TOKEN = "lab-token-listeners"

CLIENT = r"""
import http.client, sys
host, port, token, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
ok = 0
for _ in range(n):
    try:
        c = http.client.HTTPConnection(host, port, timeout=10)
        c.request("GET", "/__down?bytes=1000", headers={"X-Roomprobe-Token": token})
        r = c.getresponse()
        ok += r.status == 200 and len(r.read()) == 1000
        c.close()
    except OSError:
        pass
print(f"served {ok}", flush=True)
"""

REPLAY = r"""
import socket, sys, time
data, host, port, n = bytes.fromhex(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
for s in socks:
    s.sendto(data, (host, port))  # each from its own new source port
time.sleep(1.0)
got = 0
for s in socks:
    s.setblocking(False)
    try:
        s.recv(65535)
        got += 1
    except BlockingIOError:
        pass
print(f"answered {got}", flush=True)
"""


def test_slow_header_churn_from_another_host_does_not_lock_out_the_controller(lab):
    from roomprobe.peer.speed import TOKEN_HEADER

    assert TOKEN_HEADER == "X-Roomprobe-Token"  # what CLIENT sends
    room = lab.add_host("room", "lan", 20)
    ctrl = lab.add_host("ctrl", "lan", 30)
    atk = lab.add_host("atk", "lan", 40)
    room.serve(TOKEN, duration=300)
    attack = atk.popen([sys.executable, str(HERE / "slowheaders.py"), room.addr, "9095", "100",
                        "120"], stdout=subprocess.PIPE, text=True)
    time.sleep(3.0)  # the churn holds its connections and has outlived one header deadline
    out = ctrl.run([sys.executable, "-c", CLIENT, room.addr, "9095", TOKEN, "80"], timeout=200)
    assert attack.poll() is None, "the attacker stopped before the controller's requests ended"
    assert out.stdout.strip() == "served 80", out


def _first_udp_payload(pcap: Path) -> bytes:
    """The UDP payload of the first packet in a pcap file (Ethernet, IPv4)."""
    raw = pcap.read_bytes()
    assert struct.unpack_from("<I", raw, 20)[0] == 1, "expected an Ethernet capture"
    incl = struct.unpack_from("<I", raw, 24 + 8)[0]
    frame = raw[24 + 16:24 + 16 + incl]
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    return ip[ihl + 8:]


def _quality(ctrl, room):
    out = ctrl.roomprobe("check", "--format", "json", "--only", "quality", "--no-bandwidth",
                         "--peer", room.addr, "--peer-token", TOKEN,
                         "--set", "quality.duration=2", timeout=120)
    return out, out.probe("quality")


def test_a_captured_quality_datagram_replayed_from_other_ports_is_not_answered(lab, tmp_path):
    room = lab.add_host("room", "lan", 20)
    ctrl = lab.add_host("ctrl", "lan", 30)
    atk = lab.add_host("atk", "lan", 40)
    room.serve(TOKEN, duration=300)
    pcap = tmp_path / "quality.pcap"
    dump = ctrl.popen(["tcpdump", "-i", "eth0", "-U", "-c", "1", "-w", str(pcap),
                       "udp and dst port 9095 and greater 200"])
    time.sleep(1.0)  # tcpdump is listening
    _quality(ctrl, room)  # the check whose datagram is captured (its verdict is not the point)
    dump.wait(timeout=10)
    captured = _first_udp_payload(pcap)
    assert captured[:2] == b"RQ", captured[:8]
    replay = atk.run([sys.executable, "-c", REPLAY, captured.hex(), room.addr, "9095", "50"],
                     timeout=60)
    assert replay.stdout.strip() == "answered 0", replay
    out, q = _quality(ctrl, room)  # right after (inside the 15 s idle expiry): still served
    assert q["status"] == "pass", q
