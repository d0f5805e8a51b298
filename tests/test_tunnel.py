"""The one CONNECT client (roomprobe.net.tunnel): what goes on the wire, how a refusal reads, and
that no other module writes its own CONNECT request. Loopback only: the "proxy" is a socket on
127.0.0.1 that records the request and answers with a chosen status line."""

from __future__ import annotations

import base64
import http.client
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from roomprobe.core.proxyurl import parse_proxy_url
from roomprobe.net import tunnel
from roomprobe.net.wire import read_head

REPO = Path(__file__).resolve().parents[1]
SECRET = "p@ss:w/rd"


class FakeProxy:
    """Accepts connections, keeps each request head, answers with ``answer``."""

    def __init__(self, answer: bytes) -> None:
        self.answer, self.heads = answer, []  # type: list[bytes]
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self.heads.append(read_head(conn))
                conn.sendall(self.answer)

    def url(self, cred: str = "") -> str:
        return f"http://{cred}127.0.0.1:{self.port}"


@pytest.fixture
def proxy_ok() -> Iterator[FakeProxy]:
    p = FakeProxy(b"HTTP/1.1 200 Connection established\r\n\r\n")
    yield p
    p.sock.close()


@pytest.fixture
def proxy_407() -> Iterator[FakeProxy]:
    p = FakeProxy(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n")
    yield p
    p.sock.close()


def test_connect_carries_the_urls_credentials_and_times_each_phase(proxy_ok):
    via = parse_proxy_url(proxy_ok.url("alice:p%40ss%3Aw%2Frd@"))
    timings: dict[str, float] = {}
    progress: dict[str, object] = {}
    with tunnel.open_path("zoom.us", 443, via, lambda: 2.0, timings=timings, progress=progress):
        pass
    lines = proxy_ok.heads[0].decode().split("\r\n")
    assert lines[0] == "CONNECT zoom.us:443 HTTP/1.1" and "Host: zoom.us:443" in lines
    assert f"Proxy-Authorization: Basic {base64.b64encode(f'alice:{SECRET}'.encode()).decode()}" in lines
    assert set(timings) == {"resolve_ms", "connect_ms", "proxy_ms"} and progress["phase"] == "proxy"


def test_an_ipv6_target_is_bracketed(proxy_ok):
    with tunnel.open_path("2001:db8::1", 443, parse_proxy_url(proxy_ok.url()), lambda: 2.0):
        pass
    assert proxy_ok.heads[0].startswith(b"CONNECT [2001:db8::1]:443 HTTP/1.1\r\n")


def test_a_refusal_is_the_proxys_answer_and_never_quotes_the_password(proxy_407):
    with pytest.raises(tunnel.TunnelRefused) as err:
        tunnel.open_path("zoom.us", 443, parse_proxy_url(proxy_407.url("alice:p%40ss%3Aw%2Frd@")),
                         lambda: 2.0)
    assert (err.value.kind, err.value.code) == ("auth-required", 407)
    assert str(err.value) == "proxy answered CONNECT with 407"


def test_a_dead_proxy_is_the_sockets_own_error_in_the_connect_phase():
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, not listening: refused
    progress: dict[str, object] = {}
    try:
        with pytest.raises(ConnectionRefusedError):
            tunnel.open_path("zoom.us", 443, parse_proxy_url(f"http://127.0.0.1:{closed.getsockname()[1]}"),
                             lambda: 2.0, progress=progress)
    finally:
        closed.close()
    assert progress == {"phase": "connect", "addr": "127.0.0.1"}


def test_the_bandwidth_streams_keep_http_clients_words_for_a_refused_tunnel(proxy_407):
    from roomprobe.peer import speed

    client = speed.Client("https://127.0.0.1:9/__down", 2.0, proxy_407.url("alice:x@"))
    with pytest.raises(OSError) as err:
        client.conn.connect()
    assert str(err.value) == "Tunnel connection failed: 407 Proxy Authentication Required"
    assert b"Proxy-Authorization: Basic " in proxy_407.heads[0]


# A CONNECT request line, or http.client's own tunnel: only net/tunnel.py may write one.
_OWN_CONNECT = re.compile(r"CONNECT [^\"'\n]*HTTP/1\.|\.set_tunnel\(|_tunnel_host")


def test_no_other_module_writes_its_own_connect():
    found = [str(p.relative_to(REPO)) for base in ("roomprobe", "probes")
             for p in sorted((REPO / base).rglob("*.py"))
             if p.name != "tunnel.py" and _OWN_CONNECT.search(p.read_text(encoding="utf-8"))]
    assert found == [], "open proxied connections with roomprobe.net.tunnel.open_path"


@pytest.mark.parametrize("answer, words", [
    (b"SSH-2.0-OpenSSH\r\n\r\n", "BadStatusLine: SSH-2.0-OpenSSH\r\n"),
    (b"", "RemoteDisconnected: Remote end closed connection without response"),
])
def test_the_bandwidth_streams_word_a_broken_proxy_as_before(answer, words):
    """What http.client's own tunnel said (the evidence's ``error``), byte for byte."""
    from roomprobe.peer import speed

    p = FakeProxy(answer)
    try:
        client = speed.Client("https://127.0.0.1:9/__down", 2.0, p.url())
        with pytest.raises((OSError, http.client.HTTPException)) as err:
            client.conn.connect()
    finally:
        p.sock.close()
    assert f"{type(err.value).__name__}: {err.value}" == words


def test_a_name_whose_first_address_fails_connects_to_the_next(monkeypatch, proxy_ok):
    """A dual-stack proxy name whose first address is dead (a broken IPv6 path) still works, as
    it did with socket.create_connection in the proxy probe and the bandwidth streams; a
    failure names the first address's error."""
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))  # bound, not listening: refused
    infos = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", dead.getsockname()[1])),
             (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", proxy_ok.port))]
    monkeypatch.setattr(tunnel.socket, "getaddrinfo", lambda *a, **k: infos)
    try:
        with tunnel.open_path("zoom.us", 443, parse_proxy_url("http://proxy.example:3128"), lambda: 2.0):
            pass
        assert proxy_ok.heads[0].startswith(b"CONNECT zoom.us:443 ")
        monkeypatch.setattr(tunnel.socket, "getaddrinfo", lambda *a, **k: infos[:1] * 2)
        with pytest.raises(ConnectionRefusedError):
            tunnel.tcp_connect("proxy.example", 3128, lambda: 2.0)
    finally:
        dead.close()
