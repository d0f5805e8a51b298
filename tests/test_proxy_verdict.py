"""The proxy probe's verdict paths (issue 13): PASS only with a proven route per target.

The OS (proxy sources, PAC, the CONNECT and TLS checks) is faked so each path is exact; the lab
files (test_lab_proxy*.py) measure the same paths with real proxies. Each test here would fail
if the path it names were called PASS.
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from typing import Any

import pytest
from roomprobe.probes import proxy

from roomprobe.core import threads
from roomprobe.core.probe import Context, Status, Targets
from roomprobe.proxy.sources import Route, Source

PROXY = "http://192.0.2.8:3128"
OK_TLS = {"host": "zoom.us", "port": 443, "verified": True, "verdict": "ok"}


class FakePacs:
    def __init__(self, errors: dict[str, str] | None = None) -> None:
        self.errors = dict(errors or {})

    def evaluate(self, pac_url: str, urls: list[str]) -> dict[str, list[str]]:
        return {}


class FakeResolver:
    """Sources and routes as given; no OS, no network."""

    def __init__(self, sources: list[Source], routes: dict[str, Route],
                 pac_errors: dict[str, str] | None = None) -> None:
        self._sources, self._routes = sources, routes
        self.pacs = FakePacs(pac_errors)

    def sources(self) -> list[Source]:
        return list(self._sources)

    def wpad_info(self, wanted: bool | None = None) -> dict[str, Any]:
        return {"mode": "off", "found": None}

    def route(self, src: Source, url: str) -> Route:
        return self._routes[url]


class Pool:
    """Runs calls at once; ``stuck`` names functions whose future never completes (the deadline)."""

    def __init__(self, stuck: tuple[str, ...] = ()) -> None:
        self.stuck = stuck

    def submit(self, fn: Any, *args: Any) -> Future:
        fut: Future = Future()
        if getattr(fn, "__name__", "") not in self.stuck:
            fut.set_result(fn(*args))
        return fut


def run(monkeypatch, routes: dict[str, Route] | None, *, direct_tls=None, proxy_res=None,
        pac_errors=None, stuck: tuple[str, ...] = (), seconds: float = 5.0, tls_fn=None,
        pool=None):
    env = Source("env", "https_proxy", proxies={"https": PROXY}) if routes else Source("env", "none")
    res = FakeResolver([env], routes or {}, pac_errors)
    monkeypatch.setattr(proxy, "_resolver", lambda o: res)
    monkeypatch.setattr(proxy, "tls_check", tls_fn or (
        lambda host, port, timeout, ca=None, via=None, pub=None, progress=None:
        {**(direct_tls or OK_TLS), "via": via or "direct"} if via is None else
        {**OK_TLS, "via": via, **((proxy_res or {}).get("tls") or {})}))
    monkeypatch.setattr(proxy, "probe_proxy", lambda url, target, timeout: {
        "proxy": url, "scheme": "http", "host": "192.0.2.8", "port": 3128, "loopback": False,
        "target": target, "tcp": "open", "connect": "ok", "status_code": 200,
        **{k: v for k, v in (proxy_res or {}).items() if k != "tls"}})
    o = proxy.Options(targets=("https://zoom.us/",), hostname_check="off")
    ctx = Context(targets=Targets(), options=o, deadline=time.monotonic() + seconds, privileged=False)
    return proxy._run(ctx, o, pool or Pool(stuck))


def test_no_proxy_passes_on_the_direct_tls_verdict(monkeypatch):
    r = run(monkeypatch, None)
    assert (r.status, r.reason) == (Status.PASS, "direct")
    assert r.evidence["proof"]["routes"] == [{"route": "no proxy applies: direct", "tls_direct": "ok"}]


def test_proxied_pass_names_the_route_its_connect_and_tls(monkeypatch):
    r = run(monkeypatch, {"https://zoom.us/": Route(PROXY, "fixed")})
    assert (r.status, r.reason) == (Status.PASS, "proxied")
    (route,) = r.evidence["proof"]["routes"]
    assert (route["route"], route["connect"], route["tls"]) == (PROXY, "ok", "ok")


def test_pac_error_the_cache_did_not_record_is_a_finding_not_a_silent_direct(monkeypatch):
    """A PAC evaluation that raised something the PacCache did not record used to look DIRECT."""
    r = run(monkeypatch, {"https://zoom.us/": Route(None, "pac-error", "KeyError: 'x'")})
    assert r.status == Status.FAIL and r.reason == "proxy-pac-error"
    assert "KeyError" in r.findings[0].message


def test_route_undecided_at_the_deadline_is_error_not_fail_nor_pass(monkeypatch):
    r = run(monkeypatch, {"https://zoom.us/": Route(None, "direct")}, stuck=("batch",), seconds=0.3)
    assert (r.status, r.reason) == (Status.ERROR, "unfinished"), r.summary
    assert "proof" not in r.evidence and r.findings == []


def test_proxy_check_cut_short_is_error(monkeypatch):
    r = run(monkeypatch, {"https://zoom.us/": Route(PROXY, "fixed")}, stuck=("_proxy_and_tls",),
            seconds=0.3)
    assert (r.status, r.reason) == (Status.ERROR, "unfinished"), r.summary
    assert r.evidence["unproven"][0]["route"] == PROXY


def test_direct_tls_cut_short_is_error(monkeypatch):
    r = run(monkeypatch, None, stuck=("_tls",), seconds=0.3)
    assert (r.status, r.reason) == (Status.ERROR, "unfinished")


def test_silence_inside_a_deadline_shortened_wait_is_unfinished(monkeypatch):
    """tls_timeout 2.5 s but 1 s left: a no-answer is not measured silence."""
    r = run(monkeypatch, None, direct_tls={**OK_TLS, "verdict": "no-answer", "error": "timed out"},
            seconds=1.0)
    assert (r.status, r.reason) == (Status.ERROR, "unfinished") and r.findings == []
    # the full wait: a measured stall, a failure
    r = run(monkeypatch, None, direct_tls={**OK_TLS, "verdict": "no-answer", "error": "timed out"})
    assert (r.status, r.reason) == (Status.FAIL, "tls-handshake-failed")


@pytest.mark.parametrize("proxy_res, reason", [
    ({"connect": "forbidden", "status_code": 403}, "proxy-connect-denied"),
    ({"tls": {"verdict": "untrusted", "issuer": "Box CA"}}, "tls-intercepted"),
    ({"tls": {"verdict": "inspected", "issuer": "Corp CA"}}, "tls-inspected"),
    ({"connect": "not-tested", "scheme": "socks4"}, "proxy-not-tested"),
])
def test_a_proxy_that_does_not_prove_the_path_is_no_pass(monkeypatch, proxy_res, reason):
    r = run(monkeypatch, {"https://zoom.us/": Route(PROXY, "fixed")}, proxy_res=proxy_res)
    assert r.status in (Status.WARN, Status.FAIL) and r.reason == reason


def test_route_proof_refuses_a_direct_route_without_direct_tls():
    rows = [{"target": "https://zoom.us/", "source": "pac", "via": "pac", "proxy": None,
             "error": None, "_chain": [None]}]
    got = proxy._route_proof(rows, {}, {"verdict": "unfinished"}, None)
    assert got["routes"] == [] and got["unproven"][0]["tls_direct"] == "unfinished"


def _stuck_resolving(host, port, timeout, ca=None, via=None, pub=None, progress=None):
    """A direct TLS check whose name resolution never returns (a silent DNS resolver)."""
    progress["phase"] = "resolve-connect"
    time.sleep(5)  # in a daemon worker thread (core.threads.Daemons): the probe abandons it


def test_direct_tls_stuck_resolving_for_its_whole_wait_is_measured(monkeypatch):
    """Issue 21 section 2: silence for the planned wait is a measured "no answer" (the usual
    tls-not-checked warning, with the seconds waited), not error/unfinished."""
    r = run(monkeypatch, None, seconds=2.0, tls_fn=_stuck_resolving, pool=threads.Daemons())
    assert (r.status, r.reason) == (Status.WARN, "tls-not-checked"), r.summary
    assert "no answer for 1." in r.findings[0].message and "the whole wait" in r.findings[0].message
    # A deadline that leaves too short a wait to judge: still unfinished, no verdict.
    r = run(monkeypatch, None, seconds=1.0, tls_fn=_stuck_resolving, pool=threads.Daemons())
    assert (r.status, r.reason) == (Status.ERROR, "unfinished") and r.findings == []
