"""The bandwidth endpoint walks a PAC chain (``PROXY a; PROXY b; DIRECT``) as browsers do: an
entry that cannot be used at all (refused, silent) hands over to the next; an answer (a proxy's
407) is the result. Loopback only: the "endpoint" and "proxies" are sockets on 127.0.0.1.
(tests/test_lab_bandwidth.py walks a real chain with tinyproxy in the lab.)"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from roomprobe.peer import speed
from roomprobe.proxy.sources import Route


def _server(status: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_CONNECT = do_GET  # noqa: N815 (a proxy's answer to a tunnel request)

        def log_message(self, *args: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture
def parts() -> Iterator[dict[str, str]]:
    endpoint, auth = _server(200), _server(407)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts (the kernel does), never answers
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, not listening: refused
    yield {"endpoint": f"http://127.0.0.1:{endpoint.server_port}",
           "auth": f"http://127.0.0.1:{auth.server_port}",
           "silent": f"http://127.0.0.1:{silent.getsockname()[1]}",
           "dead": f"http://127.0.0.1:{closed.getsockname()[1]}"}
    for s in (endpoint, auth):
        s.shutdown()
        s.server_close()
    silent.close()
    closed.close()


def _open(monkeypatch, parts: dict[str, str], chain: list[str | None]) -> speed.Endpoint:
    monkeypatch.setattr(speed, "route_for", lambda url: Route(chain[0], "pac", None, list(chain)))
    base = parts["endpoint"]
    ep = speed.Endpoint(f"{base}/__down", f"{base}/__up", {}, 0.5)
    client, _ = speed.open_endpoint(ep)
    client.close()
    return ep


@pytest.mark.parametrize("first", ["dead", "silent"])
def test_an_entry_that_cannot_be_used_hands_over_to_the_next(monkeypatch, parts, first):
    ep = _open(monkeypatch, parts, [parts[first], None])
    assert ep.proxy() is None  # every stream now goes direct, the entry that answered
    assert [t["proxy"] for t in ep.tried] == [parts[first]]
    assert ("Refused" if first == "dead" else "timeout") in ep.tried[0]["error"], ep.tried


def test_a_later_proxy_is_used_for_every_stream(monkeypatch, parts):
    """``PROXY dead; PROXY user:pw@dead2; DIRECT``: two entries tried, credentials never shown."""
    dead2 = parts["dead"].replace("http://", "http://user:s3cret@")
    ep = _open(monkeypatch, parts, [parts["silent"], dead2, None])
    assert ep.proxy() is None and len(ep.tried) == 2
    assert "s3cret" not in repr(ep.tried) and ep.tried[1]["proxy"].endswith(parts["dead"][7:])


def test_an_answer_is_the_result_not_a_reason_to_fall_back(monkeypatch, parts):
    """A proxy that answers 407 was reached: its answer is what Zoom gets too (no fallback)."""
    with pytest.raises(speed.EndpointError) as err:
        _open(monkeypatch, parts, [parts["auth"], None])
    assert err.value.status == 407 and not err.value.unusable


def test_the_last_entry_failing_is_the_error_and_names_its_route(monkeypatch, parts):
    monkeypatch.setattr(speed, "route_for",
                        lambda url: Route(parts["dead"], "pac", None, [parts["dead"], parts["silent"]]))
    ep = speed.Endpoint(f"{parts['endpoint']}/__down", f"{parts['endpoint']}/__up", {}, 0.5)
    with pytest.raises(speed.EndpointError) as err:
        speed.open_endpoint(ep)
    assert err.value.unusable and "timeout" in str(err.value)
    assert ep.proxy() == parts["silent"] and [t["proxy"] for t in ep.tried] == [parts["dead"]]


def test_a_fixed_proxy_has_no_chain_to_walk(monkeypatch, parts):
    monkeypatch.setattr(speed, "route_for", lambda url: Route(parts["dead"], "fixed"))
    ep = speed.Endpoint(f"{parts['endpoint']}/__down", f"{parts['endpoint']}/__up", {}, 0.5)
    with pytest.raises(speed.EndpointError):
        speed.open_endpoint(ep)
    assert ep.tried == [] and ep.proxy() == parts["dead"]


def test_a_proxy_refusing_the_https_tunnel_is_an_answer_too(monkeypatch, parts):
    """For https the proxy's 407 comes back on CONNECT ("Tunnel connection failed: 407")."""
    monkeypatch.setattr(speed, "route_for", lambda url: Route(parts["auth"], "pac", None, [parts["auth"], None]))
    ep = speed.Endpoint("https://127.0.0.1:9/__down", "https://127.0.0.1:9/__up", {}, 0.5)
    with pytest.raises(speed.EndpointError) as err:
        speed.open_endpoint(ep)
    assert "407" in str(err.value) and not err.value.unusable and ep.tried == []
