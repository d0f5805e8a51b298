"""roomprobe sweep on this machine: bad input (one line, exit 3, nothing sent) and loopback rooms.

Only loopback is connected to here (the traffic rule); the lab test (test_lab_sweep.py) covers
filtered, unreachable and ARP on a real subnet.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from reportkit import as_report
from sockcount import counting_sockets

from roomprobe.core.errors import UsageError
from roomprobe.fleet import sweep as sw


def cli(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["NO_COLOR"] = "1"
    return subprocess.run([sys.executable, "-m", "roomprobe", *args], capture_output=True,
                          text=True, timeout=60, env=env, cwd=cwd)


def one_line_exit3(r: subprocess.CompletedProcess, *words: str) -> None:
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    for w in words:
        assert w in r.stderr, r.stderr


@pytest.mark.parametrize("args,words", [
    ((), ["nothing to sweep"]),
    (("10.0.0.0/8",), ["16777216 addresses", "split it"]),
    (("bogus",), ["neither an address", "--help"]),
    (("10.0.0.1", "--prometheus-textfile", "x.txt"), ["*.prom"]),
    (("10.0.0.1", "--concurrency", "0"), ["--concurrency"]),
    (("missing.csv",), ["cannot read inventory", "check the path"]),
])
def test_bad_arguments_are_one_line_exit_3(args, words):
    one_line_exit3(cli("sweep", *args), *words)


@pytest.mark.parametrize("name,text,words", [
    ("rooms.csv", "name,ip\nA,10.0.0.1\n", ["must name the columns", "'address'"]),
    ("rooms.csv", "name,address\nA,10.0.0.999\n", ["line 2", "not an IP address"]),
    ("rooms.csv", "address,port\n10.0.0.1,70000\n", ["port '70000'"]),
    ("rooms.csv", "address,controller\n10.0.0.1,nope\n", ["controller", "not an IP address"]),
    ("rooms.toml", "[[room]\naddress=1", ["not valid TOML"]),
    ("rooms.toml", "title = 'x'\n", ["no [[room]] tables"]),
    ("rooms.toml", "[[room]]\nname = 'A'\n", ["room 1", "no address"]),
    ("rooms.toml", "[[room]]\naddress = '10.0.0.1'\nname = 7\n", ["name must be text"]),
    ("rooms.txt", "10.0.0.1\n", ["name it .csv or .toml"]),
    ("rooms.csv", b"address\n\xff\xfe\n", ["UTF-8"]),
    # issue 21: a field over the csv module's 128 KiB limit was an internal error (csv.Error)
    pytest.param("rooms.csv", "address,name\n127.0.0.1," + "x" * (128 * 1024 + 1) + "\n",
                 ["line 2", "field larger"], id="csv-field-over-128KiB"),
])
def test_bad_inventories_are_one_line_exit_3(tmp_path, name, text, words):
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    one_line_exit3(cli("sweep", str(p)), *words)


def test_a_mac_excel_csv_with_cr_only_line_endings_is_read(tmp_path):
    """Excel's "CSV (Macintosh)" ends rows with a lone CR: it was an internal error."""
    inv = tmp_path / "rooms.csv"
    inv.write_bytes(b"name,address,controller\rRoom A,10.0.0.5,10.0.0.9\rRoom B,10.0.0.6,\r")
    rooms = sw.load_inventory(str(inv), 9090)
    assert [(r.name, r.address, r.controllers) for r in rooms] == [
        ("Room A", "10.0.0.5", ("10.0.0.9",)), ("Room B", "10.0.0.6", ())]
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(b"name,address\r\n\"Room\r\nC\",10.0.0.7\r\n")
    assert [(r.name, r.address) for r in sw.load_inventory(str(crlf), 9090)] == [("Room\r\nC", "10.0.0.7")]


def test_inventory_is_read_bounded(tmp_path):
    big = tmp_path / "big.csv"
    big.write_bytes(b"address\n" + b"10.0.0.1\n" * (sw.MAX_INVENTORY_BYTES // 9 + 1))
    one_line_exit3(cli("sweep", str(big)), "larger than")
    zero = tmp_path / "zero.csv"
    zero.symlink_to("/dev/zero")
    one_line_exit3(cli("sweep", str(zero)), "not a regular file")  # refused before any read


def test_targets_parse_cidrs_inventories_and_drop_repeats(tmp_path):
    inv = tmp_path / "r.toml"
    inv.write_text("[defaults]\nport = 9091\n[[room]]\nname='A'\naddress='10.0.0.5'\n"
                   "controllers=['10.0.0.9']\n[[room]]\naddress='10.0.0.6'\nport=9090\npeer='http://10.0.0.6:8080'\n")
    rooms = sw.parse_targets([str(inv), "10.0.0.4/30", "10.0.0.5"], 9090)
    # the /30's 10.0.0.6:9090 and the last 10.0.0.5:9090 repeat earlier rooms
    assert [(r.address, r.port) for r in rooms] == [("10.0.0.5", 9091), ("10.0.0.6", 9090),
                                                    ("10.0.0.5", 9090)]
    assert rooms[0].name == "A" and rooms[0].controllers == ("10.0.0.9",)
    assert [r.address for r in sw.cidr_addresses("10.0.0.0/31", 9090)] == ["10.0.0.0", "10.0.0.1"]
    assert [r.address for r in sw.cidr_addresses("10.0.0.7/32", 9090)] == ["10.0.0.7"]
    assert len(sw.cidr_addresses("10.0.0.0/20", 9090)) == 4094
    assert len(sw.parse_targets(["10.0.0.0/18"], 9090)) == 16382  # 10,000 rooms in one run
    with pytest.raises(UsageError, match="more than"):
        sw.parse_targets(["10.0.0.0/18", "10.1.0.0/24"], 9090)
    with pytest.raises(UsageError, match="more than the 16384"):
        sw.parse_targets(["10.0.0.0/17"], 9090)


@pytest.fixture()
def loopback_rooms():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connects are refused
    yield srv.getsockname()[1], closed.getsockname()[1]
    srv.close()
    closed.close()


def test_loopback_sweep_table_json_and_exit_code(tmp_path, loopback_rooms):
    open_port, refused_port = loopback_rooms
    inv = tmp_path / "rooms.csv"
    inv.write_text(f"name,address,port\nUp,127.0.0.1,{open_port}\nDown,127.0.0.1,{refused_port}\n")
    r = cli("sweep", str(inv))
    assert r.returncode == 2, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["STATUS", "ROOM", "ADDRESS", "STATE", "CODE", "WHY"]
    assert lines[1].split()[:5] == ["FAIL", "Down", f"127.0.0.1:{refused_port}", "refused", "zoom-rooms:2002"]
    assert lines[2].split()[:5] == ["PASS", "Up", f"127.0.0.1:{open_port}", "open", "-"]
    assert r.stderr == ""  # no progress line when stderr is not a terminal
    data = json.loads(cli("sweep", str(inv), "--format", "json").stdout)
    assert_sweep_v1(data)
    assert data["summary"]["by_state"] == {"open": 1, "refused": 1}
    assert [x["room_name"] for x in data["rooms"]] == ["Down", "Up"]
    inv.write_text(f"address,port\n127.0.0.1,{open_port}\n")
    ok = cli("sweep", str(inv), "--format", "csv")
    assert ok.returncode == 0 and ok.stdout.splitlines()[1].startswith("pass,127.0.0.1,127.0.0.1,")


def assert_sweep_v1(data: dict) -> None:
    """The sweep's JSON follows its published schema (roomprobe/report/schema/sweep-v1.json)."""
    from roomprobe.report.build import schema_validator

    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in schema_validator("sweep-v1").iter_errors(data)]
    assert not errors, errors[:5]


def test_sweep_schema_is_published_and_catches_a_broken_room():
    """sweep-v1 is shipped beside report-v1 and checks the rooms against report-v1 too."""
    from importlib.resources import files

    from roomprobe.report.build import schema_validator

    assert files("roomprobe.report").joinpath("schema/sweep-v1.json").is_file()
    v = schema_validator("sweep-v1")
    ok = {"schema": "roomprobe/sweep/v1", "rooms": [],
          "summary": {"rooms": 0, "duration_s": 0.0, "exit_code": 0, "by_status": {}, "by_state": {},
                      "by_code": {}, "not_measured": []}}
    assert not list(v.iter_errors(ok))
    broken = {**ok, "rooms": [{"schema": "roomprobe/report/v1", "sweep": {}}]}  # not a v1 report
    messages = " ".join(e.message for e in v.iter_errors(broken))
    assert "'probes' is a required property" in messages


def test_worst_exit_follows_the_check_precedence():
    def rep(status: str, complete: bool = True):  # type: ignore[no-untyped-def]
        return as_report({"status": status, "complete": complete})

    assert sw.worst_exit([rep("pass"), rep("warn")]) == 1
    assert sw.worst_exit([rep("unknown", False), rep("warn")]) == 3
    assert sw.worst_exit([rep("unknown", False), rep("fail")]) == 2
    assert sw.worst_exit([rep("pass")]) == 0


def test_open_ports_are_watched_within_the_concurrency(monkeypatch):
    """Each open connection is watched for an at-once reset/close, and a watched socket still
    counts against --concurrency (a sweep of 4096 open rooms must not run out of descriptors)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)  # the kernel completes the handshakes; nobody accepts, nothing is closed
    port = srv.getsockname()[1]
    try:
        with counting_sockets(monkeypatch) as counts:
            got = sw.connect_all([("127.0.0.1", port)] * 6, 2.0, 2, watch=0.2)
    finally:
        srv.close()
    assert [a.state for a in got] == ["open"] * 6
    assert all(a.extra["after"] is None and a.extra["watched_s"] > 0 for a in got), got
    assert counts.peak <= 2 and counts.live == 0


LINK = {"interface": "eth0", "network": "198.51.100.0/25"}


def _room_report(att: sw.Attempt, nb: dict | None) -> dict:
    room = sw.Room("198.51.100.20")
    return sw.room_report(room, {(room.address, room.port): att}, {room.address: LINK},
                          {room.address: nb}, {}, 2.5, "2026-01-01T00:00:00Z").to_dict()


def test_hostunreach_without_icmp_from_a_room_that_answered_arp_is_a_reject():
    """Windows/macOS (no error queue): EHOSTUNREACH alone. The room's ARP answer in the neighbour
    table proves it is there: a reject, never "does not answer ARP"; without one, it is ARP."""
    att = sw.Attempt(state="unreachable", error="EHOSTUNREACH", ms=900.0)
    rep = _room_report(att, {"mac": "02:00:00:00:00:14", "state": "reachable"})
    port, reach = rep["probes"][0], rep["probes"][1]
    assert port["reason"] == "port-rejected" and rep["sweep"]["state"] == "filtered"
    assert "does not say which ICMP" in port["summary"]
    assert reach["status"] == "pass" and "peer-no-arp-reply" not in {f["id"] for f in rep["findings"]}
    rep = _room_report(att, {"mac": None, "state": "failed"})
    assert rep["probes"][0]["reason"] == "port-unreachable" and rep["sweep"]["state"] == "unreachable"
    assert "peer-no-arp-reply" in {f["id"] for f in rep["findings"]}


def test_linux_icmp_verdicts_in_the_room_report():
    """A prohibited ICMP: port-rejected naming it; this host's own host-unreachable: no ARP."""
    icmp = {"icmp": "host-prohibited", "icmp_type": 3, "icmp_code": 10, "from": "198.51.100.20",
            "v6": False, "target": "198.51.100.20"}
    att = sw.Attempt(state="filtered", error="EHOSTUNREACH", ms=0.4,
                     extra={"icmp": icmp, "rejected": "host-prohibited",
                            "detail": "rejected by a firewall: ICMP host-prohibited from 198.51.100.20"})
    rep = _room_report(att, {"mac": "02:00:00:00:00:14", "state": "reachable"})
    assert rep["probes"][0]["reason"] == "port-rejected" and rep["probes"][1]["status"] == "pass"
    assert "ICMP host-prohibited from 198.51.100.20" in rep["findings"][0]["message"]
    local = {**icmp, "icmp": "host-unreachable", "icmp_code": 1, "from": "198.51.100.30"}
    att = sw.Attempt(state="unreachable", error="EHOSTUNREACH", ms=3000.0,
                     extra={"icmp": local, "no_neighbour": True,
                            "detail": "no ARP answer: this host gave up on the neighbour"})
    rep = _room_report(att, {"mac": None, "state": "failed"})
    assert {f["id"] for f in rep["findings"]} == {"port-unreachable", "peer-no-arp-reply"}


def test_an_agent_answer_with_odd_findings_is_merged_not_a_crash():
    """The agent's JSON is not validated on the way in: a finding without a message or with a
    severity outside v1 still merges (marked via the agent), never a traceback in the sweep."""
    room = sw.Room("198.51.100.20")
    rep = sw.room_report(room, {(room.address, room.port): sw.Attempt(state="open", error=None, ms=1.0)},
                         {}, {}, {}, 2.5, "2026-01-01T00:00:00Z")
    agent_rep = {"status": "fail", "complete": True, "probes": [{"id": "dns", "status": "fail"}],
                 "findings": [{"id": "dns-down", "severity": "fatal"}, {"severity": "fail", "evidence": 3}, "x"]}
    merged = sw.merge_deep(rep, {"answered": True, "report": agent_rep, "agent": "198.51.100.20:9095"})
    got = [f.to_dict() for f in merged.findings]
    assert [(f["id"], f["severity"], f["evidence"]) for f in got] == [
        ("dns-down", "warn", {"via": "agent"}), ("unknown", "fail", {"via": "agent"})]
    assert merged.status == "fail" and merged.deep is not None and merged.deep["answered"]
