"""The sweep's connect engine (roomprobe/net/tcpsweep.py) on loopback: silence judged from the
round trips measured, one retransmission, descriptors within limits; the neighbour table read
once; the streamed JSON; the inventory's free text redacted.

A silent room on loopback: a listener whose accept queue is full (backlog 0, one connection
completed and never accepted) drops every further SYN, as a firewall that drops would.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from reportkit import as_report
from sockcount import counting_sockets

from roomprobe.fleet import sweep as sw
from roomprobe.fleet import sweep_json
from roomprobe.host import osnet
from roomprobe.host.osnet import parsers
from roomprobe.net import tcpsweep
from roomprobe.net.tcpsweep import RttEstimator, connect_all

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the full-accept-queue drop is Linux's behaviour")


@contextlib.contextmanager
def silent_port() -> Iterator[tuple[socket.socket, int]]:
    """(listener, port): SYNs to the port get no answer while its accept queue stays full."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    # Linux: backlog 0 admits one completed connection; a second one makes sure it is full.
    fillers = [socket.create_connection(("127.0.0.1", port), timeout=2), socket.socket()]
    fillers[1].setblocking(False)
    fillers[1].connect_ex(("127.0.0.1", port))
    time.sleep(0.2)
    try:
        yield srv, port
    finally:
        for s in (srv, *fillers):
            s.close()


def _refused_port() -> tuple[socket.socket, int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))  # bound, never listening: connects are refused
    return s, s.getsockname()[1]


def test_estimator_follows_rfc6298_between_floor_and_ceiling():
    est = RttEstimator(ceiling=1.25, floor=0.25, initial=1.0)
    assert est.wait() == 1.0 and est.facts()["srtt_ms"] is None  # before any answer
    est.sample(0.100)
    assert est.srtt == pytest.approx(0.100) and est.rttvar == pytest.approx(0.050)
    assert est.wait() == pytest.approx(0.300)  # 100 ms + 4 x 50 ms
    est.sample(0.020)
    assert est.rttvar == pytest.approx(0.75 * 0.050 + 0.25 * 0.080)
    assert est.srtt == pytest.approx(0.875 * 0.100 + 0.125 * 0.020)
    for _ in range(50):
        est.sample(0.0002)
    assert est.wait() == 0.25  # the floor: never less, however fast the rooms answer
    for _ in range(50):
        est.sample(5.0)
    assert est.wait() == 1.25  # the ceiling (--timeout / tries)


def test_a_silent_room_gets_one_retransmission_and_the_measured_wait_not_the_timeout():
    """Rooms that answer teach the RTT; the silent room is 'no answer' after two tries of the
    floor, each its own socket, with what the wait was based on, long before --timeout."""
    closed, refused = _refused_port()
    with silent_port() as (_srv, silent), closed:
        got = connect_all([("127.0.0.1", refused)] * 20 + [("127.0.0.1", silent)], timeout=20.0,
                          concurrency=64, watch=0.0)
    assert {a.state for a in got[:20]} == {"refused"}
    last = got[-1]
    assert (last.state, last.error) == ("filtered", "timeout"), last
    assert last.extra["tries"] == 2 and last.extra["rtt_samples"] >= 20, last.extra
    assert last.extra["wait_s"] == tcpsweep.FLOOR_S  # loopback answers in far less than the floor
    assert last.waited_s < 20.0 / 2  # the measured wait, not the --timeout ceiling
    rep = sw.room_report(sw.Room("127.0.0.1", silent), {("127.0.0.1", silent): last}, {}, {}, {},
                         20.0, "2026-01-01T00:00:00Z")
    assert "no answer to 2 SYNs in" in rep.probes[0].summary
    assert "round trip of the rooms that answered" in rep.probes[0].summary


def test_an_answer_to_the_retransmission_or_late_to_the_first_try_counts():
    """The queue frees while the first SYN went unanswered: the room is open (tries 2), not
    'no answer'; the first try's socket stayed open and may be the one answered."""
    stop = threading.Event()

    def free_queue() -> None:  # from 0.1 s on, every connection is accepted (and closed)
        time.sleep(0.1)
        srv.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            conn.close()

    with silent_port() as (srv, port):
        t = threading.Thread(target=free_queue)
        t.start()
        try:
            got = connect_all([("127.0.0.1", port)], timeout=20.0, concurrency=4, watch=0.0,
                              rtt=RttEstimator(ceiling=10.0, floor=0.6, initial=0.6))
        finally:
            stop.set()
            t.join()
    assert got[0].state == "open", got[0]
    assert got[0].extra.get("tries") == 2, got[0].extra


def test_silence_is_never_waited_longer_than_the_timeout():
    """--timeout is the ceiling of the whole wait: two tries of at most half of it each."""
    with silent_port() as (_srv, silent):
        got = connect_all([("127.0.0.1", silent)], timeout=0.6, concurrency=4, watch=0.0)
    assert got[0].extra["tries"] == 2 and got[0].extra["wait_s"] == 0.3  # 0.6 / 2 (no RTT yet)
    assert got[0].extra["rtt_samples"] == 0 and got[0].extra["srtt_ms"] is None


def test_descriptors_stay_within_concurrency_times_tries(monkeypatch):
    with silent_port() as (_srv, silent), counting_sockets(monkeypatch) as counts:
        got = connect_all([("127.0.0.1", silent)] * 6, timeout=0.6, concurrency=2, watch=0.0)
    assert [a.state for a in got] == ["filtered"] * 6
    assert counts.peak <= 2 * tcpsweep.TRIES and counts.live == 0


def test_max_concurrency_without_resource_is_selects_limit(monkeypatch):
    """Windows has no ``resource``: select() takes ~500 descriptors, two per room."""
    monkeypatch.setitem(sys.modules, "resource", None)  # import resource -> ImportError
    assert tcpsweep.max_concurrency(4096) == 250
    assert tcpsweep.max_concurrency(10) == 10
    monkeypatch.setattr(sys, "platform", "win32")
    assert tcpsweep.max_concurrency(4096) == 250


def test_neighbour_table_is_read_once_and_indexed(monkeypatch):
    calls = []

    class Backend:
        @staticmethod
        def neighbor_table():
            calls.append(1)
            return {"198.51.100.20": {"mac": "02:00:00:00:00:14", "state": "reachable"},
                    "2001:db8:0:0::1": {"mac": None, "state": "failed"}}

        @staticmethod
        def neighbor(peer):  # pragma: no cover - must not be called
            raise AssertionError("per-peer lookup despite a table")

    monkeypatch.setattr(osnet, "_backend", lambda: Backend)
    got = sw.neighbours(["198.51.100.20", "2001:db8::1", "198.51.100.21"])
    assert calls == [1]
    assert got["198.51.100.20"]["mac"] == "02:00:00:00:00:14"
    assert got["2001:db8::1"]["state"] == "failed"  # the table's spelling normalised
    assert got["198.51.100.21"] == {"mac": None, "state": "none"}


def test_windows_table_rows_pick_an_entry_with_a_mac():
    rows = [{"address": "10.0.0.5", "mac": None, "state": "incomplete", "if_index": 3},
            {"address": "10.0.0.5", "mac": "02:00:00:00:00:05", "state": "reachable", "if_index": 7},
            {"address": "10.0.0.6", "mac": None, "state": "unreachable", "if_index": 3}]
    table = parsers.neighbor_rows(rows)
    assert table["10.0.0.5"]["mac"] == "02:00:00:00:00:05" and table["10.0.0.5"]["if_index"] == 7
    assert table["10.0.0.6"]["state"] == "unreachable"


def test_json_is_streamed_one_room_a_line_and_parses_whole():
    reports = [as_report({"room_name": f"r{k}", "note": "x [1, {y: z}]"}) for k in range(3)]
    text = sweep_json.to_json(reports, {"rooms": 3})
    assert json.loads(text) == {"schema": "roomprobe/sweep/v1", "summary": {"rooms": 3},
                                "rooms": [r.to_dict() for r in reports]}
    assert sum(1 for line in text.splitlines() if line.startswith('    {"schema"')) == 3
    assert json.loads(sweep_json.to_json([], {}))["rooms"] == []


def test_inventory_free_text_is_redacted_in_the_room_report():
    room = sw.Room("198.51.100.20", name="Board http://u:pw1234@x/?token=tok5678",
                   peer="http://10.0.0.6:8080/?token=s3cretpeer")
    att = sw.Attempt(state="open", error=None, ms=1.0)
    rep = sw.room_report(room, {(room.address, room.port): att}, {}, {}, {}, 2.5,
                         "2026-01-01T00:00:00Z")
    text = json.dumps(rep.to_dict())
    for secret in ("pw1234", "tok5678", "s3cretpeer"):
        assert secret not in text
