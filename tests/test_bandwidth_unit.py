"""The bandwidth probe's pure parts: steady-state maths, latency statistics, the profile, the
serve endpoint's safety rules (on 127.0.0.1 only), and bad input giving exit 3."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace

import pytest
from roomprobe.probes import bandwidth

from roomprobe.peer.link import split_peer
from roomprobe.peer.serve import Limits, SpeedServer
from roomprobe.peer.speed import (
    TOKEN_HEADER,
    Endpoint,
    EndpointError,
    is_stable,
    latency_stats,
    open_endpoint,
    steady_rate,
)


def series(rate_mbps: float, seconds: float, slow_start_s: float = 1.0, start_delay: float = 0.3):
    """Cumulative (t, bytes) every 100 ms: nothing while connecting, a slow-start ramp, then
    ``rate_mbps`` steady, like the sampler records on a real link."""
    out, total, bps = [], 0.0, rate_mbps * 1e6 / 8
    t = 0.0
    while t <= seconds + 1e-9:
        out.append((round(t, 1), int(total)))
        if t >= start_delay:
            ramp = min(1.0, (t - start_delay) / slow_start_s)
            total += bps * 0.1 * ramp * ramp
        t += 0.1
    return out


def test_steady_rate_drops_the_warm_up_where_bytes_over_wall_time_under_reports():
    s = series(50.0, 4.0)
    naive = s[-1][1] * 8 / s[-1][0] / 1e6
    steady, window = steady_rate(s, omit_s=1.0)
    assert steady == pytest.approx(50.0, rel=0.03)
    assert naive < 0.75 * 50.0  # the speed-test CLI way: a third low
    assert 2.5 <= window <= 3.0  # warm-up counted from the first byte, not from connect


def test_steady_rate_needs_traffic_and_a_window():
    assert steady_rate([(0.0, 0), (0.1, 0), (0.2, 0)], 1.0) == (None, 0.0)
    assert steady_rate(series(10.0, 1.0), 1.0)[0] is None  # all of it is warm-up


def test_is_stable_only_after_min_window_and_when_flat():
    s = series(10.0, 6.0)
    assert not is_stable(s[:20], 1.0, 2.0, 0.04)  # 2 s in: no 2 s steady window yet
    assert is_stable(s, 1.0, 2.0, 0.04)
    # the rate doubles half-way through the window: not stable
    jump = s[:35] + [(t, b + int((t - 3.4) * 2.5e6)) for t, b in s[35:]]
    assert not is_stable(jump, 1.0, 2.0, 0.04)


def test_latency_stats_median_and_jitter():
    st = latency_stats([10.0, 20.0, 10.0, 20.0, 10.0])
    assert st["median_ms"] == 10.0 and st["jitter_ms"] == 10.0 and st["samples"] == 5
    assert latency_stats([])["median_ms"] is None


def measurement(down=20.0, up=20.0, idle=5.0, jitter=1.0, loaded=(10.0, 12.0)):
    def d(mbps, loaded_ms):
        return {"mbps": mbps, "bytes": 1000, "steady_seconds": 2.0, "errors": [],
                "loaded": {"median_ms": loaded_ms, "jitter_ms": 2.0, "samples": 20}}
    return {"idle": {"median_ms": idle, "jitter_ms": jitter, "samples": 10},
            "download": d(down, loaded[0]), "upload": d(up, loaded[1])}


OPTS = bandwidth.Options()


def ids(findings):
    return {(f.id, f.severity.value) for f in findings}


def test_profile_healthy_link_has_no_findings():
    assert bandwidth.evaluate(measurement(), OPTS, "lan") == []


def test_profile_table_matches_zoom_rooms_figures():
    """zoom-network-facts.md: 720p 2/2, 2/4, 2/6; 1080p 4/4, 4/8, 4/12 (up/down, Mbps)."""
    want = {("720p", 1): (2, 2), ("720p", 2): (2, 4), ("720p", 3): (2, 6),
            ("1080p", 1): (4, 4), ("1080p", 2): (4, 8), ("1080p", 3): (4, 12)}
    for (res, n), (up, down) in want.items():
        p = bandwidth.make_profile(replace(OPTS, displays=n, resolution=res))
        assert (p.up_mbps, p.down_mbps, p.displays_source) == (up, down, "configured"), (res, n)
    p = bandwidth.make_profile(replace(OPTS, profile="client"))
    assert (p.up_mbps, p.down_mbps, p.label()) == (2.5, 2.5, "a plain Zoom client")
    p = bandwidth.make_profile(replace(OPTS, displays=1, share=True))
    assert (p.up_mbps, p.down_mbps) == (2.3, 2.3) and "sharing" in p.label()


def test_profile_display_count_flag_beats_option_beats_detected_beats_default():
    from roomprobe.core import settings as st
    from roomprobe.host.displays import Displays

    seen = Displays(2, "xrandr")
    assert bandwidth.make_profile(OPTS, seen).displays_source == "detected"
    assert bandwidth.make_profile(OPTS, seen).displays == 2
    assert bandwidth.make_profile(OPTS, Displays(5, "drm")).displays == 3  # clamped
    p = bandwidth.make_profile(OPTS, Displays(None, "drm", "no DRM"))
    assert (p.displays, p.displays_source) == (1, "default")
    p = bandwidth.make_profile(replace(OPTS, displays=2), seen)
    assert (p.displays, p.displays_source) == (2, "configured")
    # --displays/--resolution/--share reach the probe as its own options, over --set's
    s = st.build(st.ConfigFile(), {"displays": 3, "resolution": "1080p", "share": False},
                 ("bandwidth.displays=2", "bandwidth.share=true"), {"bandwidth": bandwidth.PROBE})
    p = bandwidth.make_profile(s.probes["bandwidth"].options, seen)
    assert (p.displays, p.displays_source, p.up_mbps, p.down_mbps) == (3, "configured", 4.0, 12.0)
    assert bandwidth._needs_line(p) == "needs 4.0 up / 12.0 down for 3 displays at 1080p"


@pytest.mark.parametrize("mbps, want", [
    (3.99, "fail"), (4.0, "warn"), (4.79, "warn"), (4.8, "met"), (9.0, "met")])
def test_judge_fails_below_need_warns_under_20_percent_headroom(mbps, want):
    assert bandwidth.judge(mbps, 4.0, 0.2)[0] == want


def test_profile_findings_name_the_profile_the_figure_and_the_headroom():
    three = replace(OPTS, displays=3, resolution="1080p")
    got = bandwidth.evaluate(measurement(down=11.0, up=4.5), three, "internet")
    assert ids(got) == {("bandwidth-down-low", "fail"), ("bandwidth-up-low", "warn")}
    down = next(f for f in got if f.id == "bandwidth-down-low")
    assert "12.0 Mbps Zoom Rooms needs for 3 displays at 1080p" in down.message
    assert down.evidence["need_mbps"] == 12.0 and down.evidence["mbps"] == 11.0
    up = next(f for f in got if f.id == "bandwidth-up-low")
    assert "only 12% above the 4.0 Mbps" in up.message and "20%" in up.message
    assert up.evidence["headroom"] == 0.125
    # the old client thresholds remain a profile
    client = replace(OPTS, profile="client")
    got = bandwidth.evaluate(measurement(down=2.0, up=1.0), client, "lan")
    assert ids(got) == {("bandwidth-down-low", "fail"), ("bandwidth-up-low", "fail")}
    assert "2.5 Mbps a plain Zoom client needs" in got[0].message
    # 5 Mbps down is plenty for one display, too little for three
    assert bandwidth.evaluate(measurement(down=5.0), OPTS, "lan") == []
    got = bandwidth.evaluate(measurement(down=5.0), replace(OPTS, displays=3), "lan")
    assert ids(got) == {("bandwidth-down-low", "fail")}


@pytest.mark.parametrize("key, value, words", [
    ("displays", 4, "out of range"), ("resolution", "4k", "720p, 1080p"),
    ("profile", "teams", "rooms, client"), ("headroom_warn", 2.0, "fraction"),
    ("rooms_1080p_down_mbps", (4.0, 8.0), "three positive")])
def test_validate_refuses_a_profile_it_cannot_judge(key, value, words):
    from roomprobe.core.errors import UsageError

    with pytest.raises(UsageError, match=words):
        bandwidth.validate(replace(OPTS, **{key: value}))


def test_profile_latency_jitter_and_bufferbloat():
    got = bandwidth.evaluate(measurement(idle=120.0, loaded=(130.0, 125.0)), OPTS, "internet")
    assert ids(got) == {("latency-high", "warn")}
    got = bandwidth.evaluate(measurement(jitter=35.0), OPTS, "internet")
    assert ids(got) == {("jitter-high", "warn")}
    got = bandwidth.evaluate(measurement(idle=5.0, loaded=(180.0, 20.0)), OPTS, "lan")
    assert ids(got) == {("bufferbloat", "warn")}
    assert got[0].evidence["added_ms"] == {"download": 175.0, "upload": 15.0}
    # thresholds are options
    assert bandwidth.evaluate(measurement(idle=5.0, loaded=(180.0, 20.0)),
                              replace(OPTS, bufferbloat_warn_ms=200), "lan") == []


@pytest.mark.parametrize("peer, want", [("10.0.0.20", ("10.0.0.20", 9095)),
                                        ("10.0.0.20:9100", ("10.0.0.20", 9100)),
                                        ("[fe80::1]:9100", ("fe80::1", 9100)),
                                        ("fe80::1", ("fe80::1", 9095))])
def test_split_peer(peer, want):
    assert split_peer(peer, 9095) == want


@pytest.mark.parametrize("peer", ["10.0.0.20:70000", "10.0.0.20:x", ":9095", "[::1]:0"])
def test_split_peer_rejects(peer):
    with pytest.raises(ValueError):
        split_peer(peer, 9095)


# -- roomprobe serve, on loopback ---------------------------------------------------------------
@pytest.fixture
def server():
    srv = SpeedServer(("127.0.0.1", 0), "right-token-123",
                      Limits(max_clients=2, max_request_bytes=1_000_000, max_total_bytes=3_000_000),
                      time.monotonic() + 60)
    th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    th.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def req(srv, method, path, token="right-token-123", body=None):
    conn = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=5)
    headers = {TOKEN_HEADER: token} if token is not None else {}
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def test_serve_answers_the_protocol_with_the_token(server):
    status, data = req(server, "GET", "/__down?bytes=1000")
    assert status == 200 and data == b"\0" * 1000
    status, data = req(server, "POST", "/__up", body=b"x" * 5000)
    assert status == 200 and b'"bytes": 5000' in data


def test_serve_rejects_wrong_or_missing_token_and_never_relays(server):
    assert req(server, "GET", "/__down?bytes=10", token="wrong-token-123")[0] == 403
    assert req(server, "GET", "/__down?bytes=10", token=None)[0] == 403
    assert req(server, "GET", "http://example.invalid/__down?bytes=10")[0] == 405
    assert req(server, "CONNECT", "example.invalid:443")[0] == 405
    assert req(server, "GET", "/etc/passwd")[0] == 404
    assert server.bytes_total == 0 and server.rejected == 2


def test_serve_bounds_request_size_and_session_bytes(server):
    assert req(server, "GET", "/__down?bytes=2000000")[0] == 400  # over max_request_bytes
    for _ in range(3):
        assert req(server, "GET", "/__down?bytes=1000000")[0] == 200
    assert req(server, "GET", "/__down?bytes=10")[0] == 503  # session budget used up


def test_serve_caps_concurrent_clients(server):
    """Two sessions past the token (uploads in progress) hold both slots: a third gets 503."""
    port = server.server_address[1]
    held = []
    for _ in range(2):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(f"POST /__up HTTP/1.1\r\nHost: x\r\n{TOKEN_HEADER}: right-token-123\r\n"
                  "Content-Length: 900000\r\n\r\nxx".encode())
        held.append(s)
    try:
        time.sleep(0.3)
        assert req(server, "GET", "/__down?bytes=0")[0] == 503
    finally:
        for s in held:
            s.close()


def test_open_endpoint_reports_the_token_rejection(server):
    base = f"http://127.0.0.1:{server.server_address[1]}"
    ep = Endpoint(f"{base}/__down", f"{base}/__up", {TOKEN_HEADER: "nope-nope-nope"}, 2.0, False)
    with pytest.raises(EndpointError) as exc:
        open_endpoint(ep)
    assert exc.value.status == 403


# -- bad input: one line, exit 3 ----------------------------------------------------------------
def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ROOMPROBE_CONFIG": os.devnull, "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "roomprobe", *args], capture_output=True, text=True,
                          timeout=30, env=env)


@pytest.mark.parametrize("args, words", [
    (["check", "--peer", "127.0.0.1:99999"], "is not ADDR or ADDR:PORT"),
    (["serve", "--bind", "not-an-ip"], "is not an IP address"),
    (["serve", "--bind", "127.0.0.1", "--token", "short"], "at least 8 characters"),
    (["serve"], "Missing option '--bind'"),
    (["serve", "--bind", "127.0.0.1", "--speed-port", "0"], "not in the range"),
])
def test_bad_input_is_one_line_exit_3(args, words):
    out = cli(*args)
    assert out.returncode == 3, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], out.stderr


def test_peer_runs_bandwidth_and_no_bandwidth_skips_it():
    """--peer turns the probe on, and so does --bandwidth next to --only (a dead local port:
    unreachable, fast); --no-bandwidth wins; --only without --bandwidth means only. (Bare
    machine: every run names its probes, so nothing but 127.0.0.1 is ever contacted.)"""
    import json

    out = cli("check", "--peer", "127.0.0.1:1", "--only", "interfaces", "--bandwidth", "--format", "json")
    rep = json.loads(out.stdout)
    bw = next(p for p in rep["probes"] if p["id"] == "bandwidth")
    assert bw["status"] == "fail" and bw["reason"] == "bandwidth-endpoint-unreachable", bw
    assert "ConnectionRefusedError" in bw["evidence"]["error"] and out.returncode == 2
    out = cli("check", "--peer", "127.0.0.1:1", "--only", "interfaces", "--format", "json")
    assert [p["id"] for p in json.loads(out.stdout)["probes"]] == ["interfaces"]  # --only means only


def test_only_quality_with_a_peer_runs_quality_alone():
    """The docs' "only this probe" line: no 10 s bandwidth test next to it (a dead local port:
    quality fails fast, nothing else runs)."""
    import json

    out = cli("check", "--only", "quality", "--peer", "127.0.0.1:1", "--peer-token", "x" * 16,
              "--set", "quality.duration=1", "--set", "quality.mtu=false", "--format", "json")
    rep = json.loads(out.stdout)
    assert [p["id"] for p in rep["probes"]] == ["quality"], out.stderr
    assert rep["probes"][0]["status"] == "fail"
    rows = {r["id"]: r for r in json.loads(cli("probes", "--format", "json").stdout)}
    assert rows["bandwidth"]["default_enabled"] is True  # a plain check measures the link


def test_probe_reports_a_transfer_the_server_cut_short():
    """serve's session byte cap runs out mid-download (loopback is fast): the figure is flagged
    incomplete, not passed off as the link's rate."""
    from roomprobe.core.probe import Context, Peer, Status, Targets

    srv = SpeedServer(("127.0.0.1", 0), "right-token-123",
                      Limits(max_total_bytes=40_000_000), time.monotonic() + 60)
    th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    th.start()
    try:
        ctx = Context(targets=Targets(), options=replace(OPTS, duration=4.0),
                      deadline=time.monotonic() + 18, privileged=False,
                      peer=Peer("127.0.0.1", srv.server_address[1], token="right-token-123"))
        res = bandwidth.run(ctx)
    finally:
        srv.shutdown()
        srv.server_close()
    got = {(f.id, f.severity.value, f.evidence.get("direction")) for f in res.findings}
    assert ("bandwidth-incomplete", "warn", "download") in got, res
    assert res.status in (Status.WARN, Status.FAIL)  # fast loopback, yet never PASS
    assert res.evidence["download"]["errors"] == ["download HTTP 503"]
    # The server answers 503 and closes while a stream may still be sending its body: that stream
    # sees either the 503 or its write failing. Both mean "cut short"; nothing else may appear.
    up_errors = res.evidence["upload"]["errors"]
    assert up_errors, res.evidence["upload"]
    assert all(e == "upload HTTP 503" or e.startswith(("upload BrokenPipeError",
                                                        "upload ConnectionResetError"))
               for e in up_errors), up_errors
    assert srv.bytes_total <= 40_000_000


# -- verdicts (issue 13): PASS only through Result.passed, with both directions' proof ----------

def _run_with(monkeypatch, m, **opts):
    from types import SimpleNamespace

    from roomprobe.core.probe import Context, Targets
    from roomprobe.peer import speed

    ep = SimpleNamespace(timeout=1.0, proxy=lambda: None, tried=[])
    monkeypatch.setattr(bandwidth, "endpoint_for", lambda ctx: (ep, "lan", "192.0.2.9:9095"))
    monkeypatch.setattr(speed, "measure", lambda *a, **k: {**m, "bytes": 4_000_000, "seconds": 6.0})
    o = replace(OPTS, detect_displays=False, **opts)
    return bandwidth.run(Context(targets=Targets(), options=o, deadline=time.monotonic() + 18,
                                 privileged=False))


def test_pass_carries_both_directions_against_the_profile(monkeypatch):
    from roomprobe.core.probe import Status

    res = _run_with(monkeypatch, measurement(down=20.0, up=10.0))
    assert (res.status, res.reason) == (Status.PASS, "ok")
    p = res.evidence["proof"]
    assert p["download"]["mbps"] == 20.0 and p["download"]["need_mbps"] == 2.0
    assert p["upload"]["mbps"] == 10.0 and p["upload"]["steady_seconds"] == 2.0
    assert p["idle_rtt"]["samples"] == 10 and p["profile"] == "1 display at 720p"


@pytest.mark.parametrize("change, reason", [
    (lambda m: m["upload"].update(mbps=None, errors=["upload ConnectionResetError"]),
     "bandwidth-endpoint-unreachable"),                                   # one way moved nothing
    (lambda m: m["download"].update(steady_seconds=0.8), "bandwidth-incomplete"),  # deadline-short
    (lambda m: m["download"].update(errors=["download HTTP 503"]), "bandwidth-incomplete"),
    (lambda m: m["idle"].update(samples=0, median_ms=None), "bandwidth-incomplete"),
    (lambda m: m["upload"].update(mbps=2.1), "bandwidth-up-low"),           # met, but no headroom
])
def test_a_gap_in_the_measurement_is_never_pass(monkeypatch, change, reason):
    from roomprobe.core.probe import Status

    m = measurement()
    change(m)
    res = _run_with(monkeypatch, m)
    assert res.status in (Status.WARN, Status.FAIL) and res.reason == reason, res
    assert "proof" not in res.evidence


def test_proof_is_empty_without_a_complete_met_figure_each_way():
    prof = bandwidth.make_profile(OPTS)
    assert bandwidth.proof(measurement(), OPTS, prof)["upload"]["headroom"] == 9.0
    m = measurement()
    m["upload"]["steady_seconds"] = 1.0
    assert bandwidth.proof(m, OPTS, prof) == {}
    assert bandwidth.proof(measurement(up=2.2), OPTS, prof) == {}  # 10% headroom < 20%
