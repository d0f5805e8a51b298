"""The quality probe's parts on loopback: statistics, the wire format, the reflector's bounds.

Everything here talks to 127.0.0.1 only. The reflector is the real one on a real socket; the
hostile client is a real socket sending what an attacker would.
"""

from __future__ import annotations

import os
import socket
import time

import pytest
from roomprobe.probes import quality

from roomprobe.core.errors import UsageError
from roomprobe.peer import mediaflow
from roomprobe.peer import mediastats as ms
from roomprobe.peer import mediawire as mw
from roomprobe.peer.reflector import Reflector, ReflectorLimits

TOKEN = "unit-token-1234"


def test_rfc3550_jitter_is_zero_for_constant_delay_and_tracks_alternating_delay():
    steady = [(i * 20_000_000, i * 20_000_000 + 5_000_000) for i in range(100)]
    mean_j, last_j, ipdv = ms.rfc3550_jitter(steady)
    assert mean_j == 0 and last_j == 0 and ipdv == 0
    # delay alternates 5 ms / 15 ms: |D| = 10 ms every packet; J converges to 10 ms
    alt = [(i * 20_000_000, i * 20_000_000 + (5 if i % 2 else 15) * 1_000_000) for i in range(400)]
    mean_j, last_j, ipdv = ms.rfc3550_jitter(alt)
    assert ipdv == pytest.approx(10.0) and last_j == pytest.approx(10.0, abs=0.01)
    assert 8.5 < mean_j < 10.0  # the running mean includes the warm-up from 0
    assert ms.rfc3550_jitter([(0, 1)]) == (None, None, None)


def test_percentiles_bursts_and_e_model():
    assert ms.percentile([5, 1, 3, 2, 4], 50) == 3 and ms.percentile([], 50) is None
    assert ms.percentile(list(range(1, 101)), 95) == 95
    assert ms.longest_run_missing({1, 2, 6, 10}, 1, 10) == 3
    clean = ms.r_factor(20.0, 0.0)
    assert 92 < clean < 93.2 and ms.mos(clean) > 4.3
    assert ms.r_factor(20.0, 5.0) < clean - 10  # loss costs far more than 20 ms of delay
    assert ms.r_factor(300.0, 0.0) < 80  # past 177 ms the delay impairment climbs steeply
    assert ms.mos(-5) == 1.0 and ms.mos(120) == 4.5


def test_dscp_verdicts():
    assert mediaflow._mark(56, {224: 10}, True)["verdict"] == "kept"
    assert mediaflow._mark(56, {0: 9, 224: 1}, True)["verdict"] == "bleached"
    v = mediaflow._mark(56, {32: 10}, True)
    assert v["verdict"] == "re-marked" and v["received"] == 8
    assert mediaflow._mark(56, {}, False)["verdict"] == "unknown"
    assert mediaflow._mark(40, {0xA1: 3}, True)["ecn"] == [1]


@pytest.fixture
def reflector():
    r = Reflector("127.0.0.1", 0, TOKEN, ReflectorLimits(max_sessions=3, max_pps=500, burst_s=0.2,
                                                          max_seq=4096))
    r.start()
    yield r
    r.close()


def client() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.3)
    return s


def request(key: bytes, size: int, seq: int = 0, session: bytes = b"S" * 8, kind: int = mw.KIND_ECHO,
            length: int | None = None, t_send_ns: int | None = None,
            flow: int = mw.FLOW_AUDIO) -> bytes:
    """A request as the probe sends it: stamped with this clock unless ``t_send_ns`` says."""
    t = time.time_ns() if t_send_ns is None else t_send_ns
    body = mw.Head(kind, flow, 0, size if length is None else length, session, seq, t).pack()
    return mw.seal(key, body, size)


def answers(sock: socket.socket, port: int, data: bytes) -> bytes | None:
    sock.sendto(data, ("127.0.0.1", port))
    try:
        return sock.recv(65535)
    except TimeoutError:
        return None


def test_reflector_echoes_at_the_request_size_and_refuses_what_is_not_ours(reflector):
    key, port, s = mw.session_key(TOKEN), reflector.port, client()
    for size in (mw.ECHO_LEN, 200, 1200):
        reply = answers(s, port, request(key, size, seq=size))
        assert reply is not None and len(reply) == size  # never larger than the request
        head = mw.open_head(key, reply, mw.reply_body_len(mw.KIND_ECHO_REPLY))
        assert head is not None and head.kind == mw.KIND_ECHO_REPLY and head.seq == size
    before = reflector.counters.rejected
    assert answers(s, port, request(mw.session_key("wrong-token-999"), 200)) is None
    assert answers(s, port, request(key, 200, length=1400)) is None  # spoofed size
    assert answers(s, port, request(key, mw.ECHO_LEN - 1 + 16)[: mw.ECHO_LEN - 1]) is None  # too small
    assert answers(s, port, b"\0" * 500) is None
    assert answers(s, port, request(key, 60, kind=mw.KIND_ECHO)) is None  # cannot hold the reply
    assert reflector.counters.rejected - before == 5


def test_reflector_survives_a_flood_with_bounded_memory_and_serves_a_legit_session_after(reflector):
    key, port = mw.session_key(TOKEN), reflector.port
    flood = client()
    flood.setblocking(False)
    t_end = time.monotonic() + 1.5
    sent = 0
    while time.monotonic() < t_end:  # bounded in time: 1.5 s of everything at once
        kinds = (request(key, 200, seq=sent % 10_000, session=os.urandom(8)),  # new sessions
                 request(key, 1400, seq=sent % 5000, session=b"F" * 8),  # one greedy session
                 request(mw.session_key("nope-nope-nope"), 1400, seq=sent),  # wrong token
                 os.urandom(300))
        for pkt in kinds:
            try:
                flood.sendto(pkt, ("127.0.0.1", port))
                sent += 1
            except BlockingIOError:
                time.sleep(0.0005)
        while True:  # drain what comes back so our own buffer does not stall the flood
            try:
                flood.recv(65535)
            except (BlockingIOError, OSError):
                break
    time.sleep(0.3)
    c = reflector.counters
    assert sent > 2000 and reflector.thread is not None and reflector.thread.is_alive()
    assert len(reflector.sessions) <= reflector.limits.max_sessions
    assert c.refused_sessions > 0 and c.capped > 0 and c.rejected > 0
    bitmaps = sum(len(f.seen) for sess in reflector.sessions.values() for f in sess.flows.values())
    assert bitmaps <= reflector.memory_bound()
    # the greedy session stays capped: far fewer echoes than requests
    assert c.echoed < sent / 2
    # Idle sessions expire; a legitimate client is then served in full.
    reflector.limits = ReflectorLimits(max_sessions=3, max_pps=500, burst_s=0.2, max_seq=4096, idle_s=0.2)
    time.sleep(0.6)
    specs = [mediaflow.FlowSpec("audio", mw.FLOW_AUDIO, 56, 200, 0.02)]
    rec = mediaflow.run_flows("127.0.0.1", port, TOKEN, specs, 1.0, time.monotonic() + 6)["audio"]
    fig = mediaflow.analyse(rec)
    assert fig["complete"] and fig["up"]["lost"] == 0 and fig["down"]["lost"] == 0, fig
    assert fig["sent"] >= 40 and fig["replies"] == fig["sent"]


def test_wrong_token_gets_silence_and_the_probe_says_so(reflector):
    specs = [mediaflow.FlowSpec("audio", mw.FLOW_AUDIO, 56, 200, 0.02)]
    rec = mediaflow.run_flows("127.0.0.1", reflector.port, "not-the-token", specs, 1.0,
                              time.monotonic() + 4)["audio"]
    fig = mediaflow.analyse(rec)
    assert fig["replies"] == 0 and not fig["complete"]


def test_session_caps_show_as_incomplete_not_as_loss():
    r = Reflector("127.0.0.1", 0, TOKEN, ReflectorLimits(max_pps=20, burst_s=0.1))
    r.start()
    try:
        specs = [mediaflow.FlowSpec("audio", mw.FLOW_AUDIO, 56, 200, 0.01)]  # 100 pps > 20 pps cap
        rec = mediaflow.run_flows("127.0.0.1", r.port, TOKEN, specs, 1.0, time.monotonic() + 5)["audio"]
    finally:
        r.close()
    fig = mediaflow.analyse(rec)
    assert fig.get("capped", 0) > 0 or not fig["complete"]


def test_options_are_validated():
    with pytest.raises(UsageError, match="DSCP"):
        quality.validate(quality.Options(audio_dscp=64))
    with pytest.raises(UsageError, match="duration"):
        quality.validate(quality.Options(duration=0.1))
    with pytest.raises(UsageError, match="bytes"):
        quality.validate(quality.Options(audio_bytes=20))
    quality.validate(quality.Options())
    specs = quality.flows(quality.Options(video_kbps=1500, video_fps=30, video_packet_bytes=1200))
    assert [s.name for s in specs] == ["audio", "video"] and specs[1].packets == 5
    assert specs[0].dscp == 56 and specs[1].dscp == 40 and specs[0].interval_s == 0.02


def test_judge_names_the_flow_and_direction():
    fig = {"flow": "video", "rtt_ms": {"p95": 5.0, "p50": 2.0},
           "up": {"loss_pct": 4.0, "jitter_ms": 1.0}, "down": {"loss_pct": 0.0, "jitter_ms": 35.0}}
    found = {f.id: f for f in quality.judge([fig], quality.Options())}
    assert found["quality-loss"].severity.value == "fail" and "video up 4%" in found["quality-loss"].message
    jitter = found["quality-jitter"]
    assert jitter.severity.value == "warn" and "video down 35 ms" in jitter.message
    assert "quality-rtt" not in found


# -- verdicts (issue 13): PASS only through Result.passed, every flow's figures as proof --------

def _fig(flow="audio", sent=200, replies=200, send_errors=0, up_loss=0.0, down_loss=0.0,
         jitter=1.0, p95=2.0, complete=True, capped=0):
    def d(loss):
        return {"expected": sent, "lost": 0, "loss_pct": loss, "jitter_ms": jitter,
                "dscp": {"verdict": "kept", "sent": 56, "received": {56: sent}}}
    return {"flow": flow, "sent": sent, "send_errors": send_errors, "replies": replies,
            "complete": complete, "capped": capped, "rtt_ms": {"p50": 1.0, "p95": p95},
            "up": d(up_loss), "down": d(down_loss)}


def _run(monkeypatch, figures):
    from roomprobe.core.probe import Context, Peer, Targets

    monkeypatch.setattr(mediaflow, "run_flows", lambda *a, **k: {f["flow"]: f for f in figures})
    monkeypatch.setattr(mediaflow, "analyse", lambda rec: rec)
    monkeypatch.setattr(quality, "timeline", lambda records: [])  # the plot's series: not judged here
    ctx = Context(targets=Targets(), options=quality.Options(mtu=False), privileged=False,
                  deadline=time.monotonic() + 30, peer=Peer("192.0.2.9", 9095))
    return quality.run(ctx)


def test_pass_carries_every_flows_figures(monkeypatch):
    from roomprobe.core.probe import Status

    r = _run(monkeypatch, [_fig("audio"), _fig("video", sent=750, replies=750)])
    assert (r.status, r.reason) == (Status.PASS, "ok")
    p = r.evidence["proof"]
    assert set(p) == {"audio", "video"} and p["video"]["sent"] == 750
    assert p["audio"]["up"]["loss_pct"] == 0.0 and p["audio"]["rtt_p95_ms"] == 2.0


@pytest.mark.parametrize("video, why", [
    # every video packet refused by the OS (EMSGSIZE, a local firewall): nothing measured
    (dict(sent=0, replies=0, send_errors=750, up_loss=None, down_loss=None, jitter=None, p95=None),
     "nothing was sent"),
    (dict(send_errors=12), "could not be sent"),
    (dict(jitter=None), "jitter"),
    (dict(complete=False), "counts did not come back"),
    (dict(capped=40), "capped"),
])
def test_a_flow_that_proves_nothing_is_never_pass(monkeypatch, video, why):
    from roomprobe.core.probe import Status

    r = _run(monkeypatch, [_fig("audio"), _fig("video", **video)])
    assert (r.status, r.reason) == (Status.WARN, "quality-incomplete"), r.summary
    assert why in r.findings[-1].message or why in str(r.findings[-1].evidence["why"])
    assert "proof" not in r.evidence


def test_total_loss_of_one_flow_is_a_loss_failure_not_a_gap():
    fig = _fig("video", replies=0, down_loss=100.0, jitter=None, p95=None)
    assert quality.unproven(fig) is None and quality.proof([fig]) == {}
    assert quality.judge([fig], quality.Options())[0].severity.value == "fail"


def test_with_tls_the_reflector_serves_only_sessions_granted_over_https(reflector):
    """serve --tls sets require_grant: a datagram keyed by the token is refused (a captured MAC
    must say nothing about the token); a session granted by POST /__quality (fresh id and key)
    is answered, its reply sealed with that key; an unknown id gets nothing either."""
    port, s = reflector.port, client()
    reflector.require_grant = True
    assert answers(s, port, request(mw.session_key(TOKEN), 200)) is None
    sid, key = reflector.grant()
    assert len(sid) == 8 and len(key) == 32 and key != mw.session_key(TOKEN)
    reply = answers(s, port, request(key, 200, session=sid, seq=7))
    assert reply is not None
    head = mw.open_head(key, reply, mw.reply_body_len(mw.KIND_ECHO_REPLY))
    assert head is not None and head.seq == 7 and head.session == sid
    assert answers(s, port, request(key, 200, session=b"X" * 8)) is None  # not granted
    other_sid, _other = reflector.grant()
    assert answers(s, port, request(key, 200, session=other_sid)) is None  # another's key
    for _ in range(4 * reflector.limits.max_sessions + 2):  # grants are bounded
        reflector.grant()
    assert len(reflector.grants) <= 4 * reflector.limits.max_sessions
    reflector.require_grant = False  # without TLS, the token's key still serves
    assert answers(s, port, request(mw.session_key(TOKEN), 200)) is not None


def _answered_from_new_ports(port: int, data: bytes, count: int) -> int:
    """Send ``data`` once from each of ``count`` fresh sockets (new source ports): how many got
    an answer."""
    got = 0
    socks = [client() for _ in range(count)]
    try:
        for s in socks:
            s.sendto(data, ("127.0.0.1", port))
        time.sleep(0.5)  # one wait for all (an answer on loopback takes well under 1 ms)
        for s in socks:
            s.setblocking(False)
            try:
                s.recv(65535)
                got += 1
            except BlockingIOError:
                pass
    finally:
        for s in socks:
            s.close()
    return got


def _call(port: int) -> dict:
    """A real quality flow pair (audio + video, each from its own socket) for one second."""
    specs = [mediaflow.FlowSpec("audio", mw.FLOW_AUDIO, 56, 200, 0.02),
             mediaflow.FlowSpec("video", mw.FLOW_VIDEO, 40, 1000, 0.01)]
    recs = mediaflow.run_flows("127.0.0.1", port, TOKEN, specs, 1.0, time.monotonic() + 6)
    return {name: mediaflow.analyse(rec) for name, rec in recs.items()}


def test_a_replayed_datagram_from_other_ports_gets_no_answer_and_no_session_slot():
    """Issue 21: a captured valid datagram was answered from 15 new source ports (until the
    16-session cap), and those sessions made the next legitimate check fail until they idled
    out. A session is bound to its first (ip, port): replays elsewhere get silence and no slot."""
    r = Reflector("127.0.0.1", 0, TOKEN, ReflectorLimits(max_sessions=16))
    r.start()
    key, owner = mw.session_key(TOKEN), client()
    try:
        captured = request(key, 200, session=b"CAPTURED")
        assert answers(owner, r.port, captured) is not None  # the legitimate client's datagram
        assert _answered_from_new_ports(r.port, captured, 50) == 0
        assert len(r.sessions) == 1 and r.counters.sessions == 1 and r.counters.replays == 50
        assert answers(owner, r.port, request(key, 200, seq=1, session=b"CAPTURED")) is not None
        flows = _call(r.port)  # a legitimate check right after: every flow served in full
        for fig in flows.values():
            assert fig["complete"] and fig["up"]["lost"] == 0 and fig["down"]["lost"] == 0, fig
    finally:
        owner.close()
        r.close()


def test_a_replay_after_the_session_ended_or_a_stale_one_opens_nothing():
    """Freshness: a session id opens a session once (also after it expired, also from its own
    address), and a datagram that would open one must be sent within max_skew_s of our clock."""
    r = Reflector("127.0.0.1", 0, TOKEN, ReflectorLimits(max_sessions=4, idle_s=0.2,
                                                         max_skew_s=60))
    r.start()
    key, owner = mw.session_key(TOKEN), client()
    try:
        captured = request(key, 200, session=b"EXPIRING")
        assert answers(owner, r.port, captured) is not None
        time.sleep(0.6)  # idle: the reflector forgets the session ...
        assert answers(owner, r.port, request(key, 200, seq=2, session=b"X" * 8)) is not None
        assert all(k[0] != b"EXPIRING" for k in r.sessions)
        # ... but not that its id was used: the capture opens nothing, from anywhere
        assert answers(owner, r.port, captured) is None
        assert _answered_from_new_ports(r.port, captured, 10) == 0
        hour_ago = time.time_ns() - 3600 * 10**9
        stale = request(key, 200, session=b"OLDCAPT1", t_send_ns=hour_ago)
        assert _answered_from_new_ports(r.port, stale, 5) == 0
        ahead = request(key, 200, session=b"FUTURE01", t_send_ns=time.time_ns() + 3600 * 10**9)
        assert _answered_from_new_ports(r.port, ahead, 1) == 0
        skewed = request(key, 200, session=b"SKEWED01", t_send_ns=time.time_ns() - 30 * 10**9)
        assert _answered_from_new_ports(r.port, skewed, 1) == 1  # a clock 30 s off is fine
        assert all(k[0] not in (b"OLDCAPT1", b"FUTURE01") for k in r.sessions)
    finally:
        owner.close()
        r.close()


def test_the_memory_of_used_session_ids_is_bounded():
    r = Reflector("127.0.0.1", 0, TOKEN, ReflectorLimits(max_sessions=64, max_remembered=100))
    try:
        now_ns = time.time_ns()
        for i in range(300):
            head = mw.Head(mw.KIND_ECHO, mw.FLOW_AUDIO, 0, 200, i.to_bytes(8, "big"), 0, now_ns)
            r.handle(mw.seal(r.key, head.pack(), 200), [], 0, ("127.0.0.1", 40000 + i))
            r.sessions.clear()  # as if each had expired at once
        assert len(r.opened) == 100
    finally:
        r.close()
