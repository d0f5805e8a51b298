"""httpsprobe walks a route's fallback chain (``PROXY a; PROXY b; DIRECT``) the way browsers do:
an entry that cannot be used at all (name, connect, a broken or silent proxy) hands over to the
next; an answer (a 407 or 403 from the proxy, a TLS verdict, an HTTP status) is the result.

The attempts are stood in for (no traffic): the lab test test_lab_proxy_cloud.py walks a real
chain with a dead proxy, tinyproxy and a dropped direct path.
"""

from __future__ import annotations

from typing import Any

import pytest

from roomprobe.net import httpsprobe
from roomprobe.proxy.sources import Route

URL = "https://zoom.us/"


def _res(proxy: str | None, phase: str | None = None, state: str | None = None) -> dict[str, Any]:
    return {"proxy": proxy, "ok": phase is None, "phase": phase, "state": state, "detail": state,
            "status": 200 if phase is None else None, "timings": {}, "tls": None}


def _walk(monkeypatch, chain: list[str | None], answers: dict[str | None, dict[str, Any]]):
    asked: list[str | None] = []

    def attempt(url, proxy, deadline, ca_file, progress):
        asked.append(proxy)
        return answers[proxy]
    monkeypatch.setattr(httpsprobe, "_attempt", attempt)
    return httpsprobe.fetch(URL, route_of=lambda url: Route(chain[0], "pac", None, chain), timeout=5), asked


@pytest.mark.parametrize("phase,state", [("resolve", "unresolved"), ("connect", "refused"),
                                         ("connect", "timeout"), ("proxy", "bad-answer"),
                                         ("proxy", "reset"), ("proxy", "timeout")])
def test_an_unusable_entry_hands_over_to_the_next(monkeypatch, phase, state):
    a, b = "http://a:3128", "http://b:3128"
    out, asked = _walk(monkeypatch, [a, b, None], {a: _res(a, phase, state), b: _res(b)})
    assert asked == [a, b] and out["ok"] and out["proxy"] == b
    assert out["chain"] == [a, b, "DIRECT"]
    assert out["tried"] == [{"proxy": a, "phase": phase, "state": state, "detail": state}]


@pytest.mark.parametrize("phase,state", [("proxy", "http-407"), ("proxy", "http-403"), ("tls", "untrusted"),
                                         ("tls", "handshake-failed"), ("http", "bad-answer"),
                                         ("proxy", "not-tested")])
def test_an_answer_is_the_result_not_a_fallback(monkeypatch, phase, state):
    a = "http://a:3128"
    out, asked = _walk(monkeypatch, [a, None], {a: _res(a, phase, state), None: _res(None)})
    assert asked == [a] and not out["ok"] and (out["phase"], out["state"]) == (phase, state)
    assert out["proxy"] == a and out["tried"] == []


def test_the_last_entry_failing_is_the_result(monkeypatch):
    a = "http://a:3128"
    out, asked = _walk(monkeypatch, [a, None], {a: _res(a, "connect", "refused"),
                                                None: _res(None, "connect", "timeout")})
    assert asked == [a, None] and not out["ok"] and out["proxy"] is None
    assert (out["phase"], out["state"]) == ("connect", "timeout")
    assert [t["proxy"] for t in out["tried"]] == [a]


def test_a_single_entry_route_keeps_its_shape(monkeypatch):
    out, asked = _walk(monkeypatch, [None], {None: _res(None)})
    assert asked == [None] and out["ok"] and out["chain"] == ["DIRECT"] and out["tried"] == []


def test_an_unusable_setting_is_named_not_tried(monkeypatch):
    monkeypatch.setattr(httpsprobe, "_attempt", lambda *a: pytest.fail("must not be tried"))
    out = httpsprobe.fetch(URL, route_of=lambda url: Route(None, "invalid", "https_proxy (env) = 'x': bad port"),
                           timeout=5)
    assert (out["phase"], out["state"]) == ("proxy", "bad-setting")
    assert out["detail"] == "https_proxy (env) = 'x': bad port"
