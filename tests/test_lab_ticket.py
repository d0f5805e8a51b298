"""A real fault in the lab, saved with the evidence pack, then rendered for a ticket.

The room's firewall drops TCP 9090 (nftables); the controller runs the check with the code the
user saw, a room name, a note and a time zone of its own, saves the JSON, and ``roomprobe
report`` turns it into markdown and html that name the fault, the fix and the lab addresses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jsonschema
import pytest

from roomprobe.report.build import load_schema

pytestmark = pytest.mark.lab

FW_DROP_9090 = """
table inet roomfw {
  chain input { type filter hook input priority 0; policy accept;
    iifname "eth0" tcp dport 9090 drop
  }
}
"""


def render(path, fmt: str) -> str:
    env = {**os.environ, "ROOMPROBE_CONFIG": os.devnull, "NO_COLOR": "1"}
    out = subprocess.run([sys.executable, "-m", "roomprobe", "report", str(path), "--format", fmt],
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_filtered_port_report_renders_for_a_ticket(lab, tmp_path):
    room = lab.add_host("room", "lan", 20)
    ctrl = lab.add_host("ctrl", "lan", 30)
    room.listen(9090, comm="ZoomRooms")
    room.nft(FW_DROP_9090)
    saved = tmp_path / "board-room.json"

    out = ctrl.roomprobe("check", "--room", room.addr, "--code", "2002", "--room-name", "Board Room 4.01",
                         "--note", "controller stuck on 'connecting' since 9:00", "--json", str(saved),
                         "--format", "json", env={"TZ": "Asia/Kolkata"})
    assert out.rc == 2, out.stdout + out.stderr
    assert "port-filtered" in out.finding_ids()
    rep = json.loads(saved.read_text())
    jsonschema.validate(rep, load_schema())
    assert rep == out.report  # the file and stdout are the same report
    assert rep["room_name"] == "Board Room 4.01" and rep["user_code"] == "2002"
    assert rep["timezone"] == {"name": "Asia/Kolkata", "abbreviation": "IST", "utc_offset": "+05:30"}
    assert rep["window"]["started_local"].endswith("+05:30")
    assert rep["window"]["ended_utc"].endswith("Z")
    eth0 = [i for i in rep["host"]["interfaces"] if i["name"] == "eth0"][0]
    assert {"family": "ipv4", "address": ctrl.addr, "prefixlen": 25} in eth0["addresses"]

    md = render(saved, "markdown")
    assert md.startswith("## roomprobe: FAIL in Board Room 4.01\n")
    assert "- **FAIL** `port-filtered` (controller-port): " in md
    assert "**zoom-rooms 2002: Controller cannot connect to the room** (the code the user saw)" in md
    assert f"| Interfaces | eth0 ({eth0['kind']}, up): {ctrl.addr}/25" in md
    assert "| Time zone | Asia/Kolkata (UTC+05:30) |" in md
    assert "| Note | controller stuck on 'connecting' since 9:00 |" in md
    assert f"room {room.addr}; port 9090" in md

    html = render(saved, "html")
    assert "roomprobe FAIL: Board Room 4.01" in html
    assert "<code>port-filtered</code>" in html
    fix = rep["diagnosis"][0]["fix"][0]
    assert fix.replace("'", "&#x27;") in html
    assert f"{ctrl.addr}/25" in html and "Asia/Kolkata (UTC+05:30)" in html
