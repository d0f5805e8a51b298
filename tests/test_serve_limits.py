"""roomprobe serve under abuse, with real sockets on 127.0.0.1: slowloris clients must not lock
out a real one, idle connections are capped, and the byte cap is per client, not for life."""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time

import pytest

from roomprobe.peer.serve import Limits, SpeedServer
from roomprobe.peer.speed import TOKEN_HEADER

TOKEN = "right-token-123"


def start(limits: Limits) -> SpeedServer:
    srv = SpeedServer(("127.0.0.1", 0), TOKEN, limits, time.monotonic() + 120)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return srv


def stop(srv: SpeedServer) -> None:
    srv.shutdown()
    srv.server_close()


def get(srv: SpeedServer, n: int, timeout: float = 5.0, source: str | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=timeout,
                                      source_address=(source, 0) if source else None)
    conn.request("GET", f"/__down?bytes={n}", headers={TOKEN_HEADER: TOKEN})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    assert resp.status != 200 or len(body) == n
    return resp.status


class Slowloris:
    """Clients that send one header byte a second (never a complete head) until stopped."""

    def __init__(self, srv: SpeedServer, count: int, source: str = "127.0.0.2") -> None:
        self.port = srv.server_address[1]
        self.source = source
        self.stop = threading.Event()
        self.connections = 0
        self.threads = [threading.Thread(target=self._one, daemon=True) for _ in range(count)]
        for t in self.threads:
            t.start()

    def _one(self) -> None:
        head = f"GET /__down?bytes=10 HTTP/1.1\r\nHost: x\r\n{TOKEN_HEADER}: {TOKEN}\r\n".encode()
        while not self.stop.is_set():  # reconnect when the server drops us, like a real attacker
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=3,
                                             source_address=(self.source, 0))
            except OSError:
                time.sleep(0.1)
                continue
            self.connections += 1
            with s:
                for b in head:
                    if self.stop.wait(1.0):
                        return
                    try:
                        s.sendall(bytes([b]))
                    except OSError:
                        break

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(3)


def test_slowloris_clients_do_not_lock_out_a_real_client():
    """16 clients trickling a header byte a second, max_clients=16: before the fix every slot was
    taken by them and the real client was refused; now it is served, repeatedly."""
    srv = start(Limits(max_clients=16, max_pending=64, max_pending_per_source=16,
                       header_timeout_s=2.0))
    loris = Slowloris(srv, 16)  # from 127.0.0.2; the real client is 127.0.0.1
    try:
        time.sleep(1.0)  # every slowloris connection is open and trickling, none timed out yet
        assert len(srv.pending) == 16
        for _ in range(8):
            t0 = time.monotonic()
            assert get(srv, 100_000) == 200
            assert time.monotonic() - t0 < 2.0
            time.sleep(0.5)
        time.sleep(1.0)
        assert srv.head_timeouts >= 16  # their connections were cut at the header deadline
        assert srv.requests == 8  # only the real client's requests counted
    finally:
        loris.close()
        stop(srv)


def test_idle_connections_are_capped_and_cut_at_the_header_deadline():
    """max_pending idle connections at most; the next one is closed at once; idle ones are cut
    after header_timeout_s; a real client still gets through once they are gone."""
    srv = start(Limits(max_clients=4, max_pending=3, header_timeout_s=1.0))
    port = srv.server_address[1]
    idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
    try:
        time.sleep(0.3)
        extra = socket.create_connection(("127.0.0.1", port), timeout=3)
        assert extra.recv(10) == b""  # refused: closed without an answer
        extra.close()
        for s in idle:
            t0 = time.monotonic()
            assert s.recv(10) == b""  # the header deadline closed it
            assert time.monotonic() - t0 < 2.0
        assert srv.head_timeouts == 3
        assert get(srv, 10) == 200
    finally:
        for s in idle:
            s.close()
        stop(srv)


def test_byte_cap_is_per_client_not_for_the_lifetime():
    """Issue 18 item 8: one client using its whole budget must not make every later client get
    503. 127.0.0.1 and 127.0.0.2 are two clients (both loopback)."""
    srv = start(Limits(max_request_bytes=1_000_000, max_client_bytes=2_000_000,
                       client_window_s=1.5))
    try:
        assert get(srv, 1_000_000, source="127.0.0.1") == 200
        assert get(srv, 1_000_000, source="127.0.0.1") == 200
        assert get(srv, 1_000_000, source="127.0.0.1") == 503  # this client's window is used up
        assert get(srv, 1_000_000, source="127.0.0.2") == 200  # another client is not affected
        time.sleep(1.6)
        assert get(srv, 1_000_000, source="127.0.0.1") == 200  # the window moved on
    finally:
        stop(srv)


def test_lifetime_cap_is_optional_and_applies_to_all_clients():
    srv = start(Limits(max_request_bytes=1_000_000, max_client_bytes=None,
                       max_total_bytes=1_500_000))
    try:
        assert get(srv, 1_000_000, source="127.0.0.1") == 200
        assert get(srv, 1_000_000, source="127.0.0.2") == 503
    finally:
        stop(srv)


def test_wrong_token_takes_no_slot():
    srv = start(Limits(max_clients=1))
    try:
        for _ in range(5):
            conn = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=5)
            conn.request("GET", "/__down?bytes=1", headers={TOKEN_HEADER: "wrong-token-xx"})
            assert conn.getresponse().status == 403
            conn.close()
        assert get(srv, 1) == 200
    finally:
        stop(srv)


@pytest.mark.parametrize("args, words", [
    (["--max-pending", "0"], "not in the range"),
    (["--header-timeout", "0"], "not in the range"),
    (["--window", "x"], "is not a valid float"),
])
def test_serve_flag_errors_are_one_line(args, words):
    import os
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "roomprobe", "serve", "--bind", "127.0.0.1", *args],
                         capture_output=True, text=True, timeout=30,
                         env={**os.environ, "ROOMPROBE_CONFIG": os.devnull})
    assert out.returncode == 3 and len(out.stderr.strip().splitlines()) == 1, out
    assert words in out.stderr


def _serve_output(*args: str) -> str:
    import os
    import subprocess
    import sys

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = str(free.getsockname()[1])
    out = subprocess.run([sys.executable, "-m", "roomprobe", "serve", "--bind", "127.0.0.1",
                          "--speed-port", port, "--duration", "1", *args],
                         capture_output=True, text=True, timeout=30,
                         env={**os.environ, "ROOMPROBE_CONFIG": os.devnull})
    assert out.returncode == 0, out.stderr
    return out.stdout + out.stderr


def test_a_given_token_is_never_printed():
    """Issue 21: serve's output lands in service logs; a --token the operator chose is not shown
    anywhere in it (banner, the suggested command lines, the closing line)."""
    text = _serve_output("--token", "Sekr1t-Given-Token", "--agent")
    assert "Sekr1t-Given-Token" not in text
    assert "session token: the one given with --token (not printed)" in text
    assert "--peer-token TOKEN" in text


def test_a_generated_token_is_printed_once_per_line_that_needs_it():
    import re

    text = _serve_output()
    found = re.search(r"session token: (\S+)", text)
    assert found and len(found.group(1)) >= 16
    assert f"--peer-token {found.group(1)}" in text


def _served(srv: SpeedServer, tries: int) -> int:
    ok = 0
    for _ in range(tries):
        with contextlib.suppress(OSError):  # a refused or reset request counts as not served
            ok += get(srv, 1000, timeout=10, source="127.0.0.1") == 200
    return ok


@pytest.mark.parametrize("sources", [["127.0.0.2"], [f"127.0.1.{i}" for i in range(1, 21)]],
                         ids=["one-host", "twenty-hosts"])
def test_slow_header_churn_does_not_lock_out_a_real_client(sources):
    """Issue 21: 64+ slow-header connections re-opened as soon as the header deadline closed
    them took every pending place: 0 of 80 real requests served. Now each source holds at most
    max_pending_per_source pending connections, and a newcomer displaces the oldest of the
    source holding the most, so a real client (another address) is served every time, whether
    the churn comes from one host or from twenty."""
    from slowheaders import churn

    srv = start(Limits(max_clients=16, max_pending=64, header_timeout_s=2.0))
    halt, threads, opened = churn("127.0.0.1", srv.server_address[1], 100, sources)
    try:
        time.sleep(2.5)  # the churn holds its connections; the first header deadline has passed
        assert len(srv.pending) >= min(64, 8 * len(sources)) - 8
        assert _served(srv, 80) == 80
        assert srv.requests == 80
        assert opened[0] > 100  # the churn did re-open what was closed
    finally:
        halt.set()
        for t in threads:
            t.join(3)
        stop(srv)


def test_pending_caps_count_per_address_not_per_ipv6_prefix():
    """Every host of a LAN shares one IPv6 /64: grouping by it would let one host's slow
    connections count against its neighbours."""
    from roomprobe.peer.serve import source_of

    assert source_of(("2001:db8::10", 1, 0, 0)) != source_of(("2001:db8::20", 1, 0, 0))
    assert source_of(("::ffff:10.0.0.5", 1, 0, 0)) == source_of(("10.0.0.5", 1)) == "10.0.0.5"


def test_a_newcomer_displaces_the_oldest_of_the_heaviest_source_never_a_lighter_one():
    srv = start(Limits(max_clients=4, max_pending=4, max_pending_per_source=3, header_timeout_s=30))
    port = srv.server_address[1]
    conns = []
    try:
        for src in ("127.0.0.2", "127.0.0.2", "127.0.0.2", "127.0.0.3"):  # all 4 pending places
            conns.append(socket.create_connection(("127.0.0.1", port), timeout=5,
                                                  source_address=(src, 0)))
            time.sleep(0.1)
        assert len(srv.pending) == 4
        assert get(srv, 10, source="127.0.0.1") == 200  # displaced 127.0.0.2's oldest
        assert conns[0].recv(10) == b"" and srv.displaced == 1
        conns[3].settimeout(0.3)
        with pytest.raises(TimeoutError):
            conns[3].recv(10)  # 127.0.0.3 held only one: untouched
    finally:
        for c in conns:
            c.close()
        stop(srv)


def test_zoom_standin_holds_connections_like_the_app():
    """serve --port 9090 stands in for Zoom Rooms: a connection closed at once reads (rightly)
    as "open, then closed by the peer" (port-open-dropped), so the stand-in holds it open."""
    import threading

    from roomprobe.net.tcpconnect import connect_state
    from roomprobe.peer.serve import zoom_standin

    stop = threading.Event()
    lsock = zoom_standin("127.0.0.1", 0, stop)
    port = lsock.getsockname()[1]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.settimeout(1.0)
            with pytest.raises(TimeoutError):
                s.recv(1)  # held: no close (b"") and no reset within a second
        state = connect_state(socket.AF_INET, ("127.0.0.1", port), 2.0, watch=0.5)
        assert state["state"] == "open" and state.get("after") not in ("reset", "closed"), state
    finally:
        stop.set()
        lsock.close()
