"""The receive path without recvmsg (Windows), forced on Linux: real flows over loopback.

``socket.recvmsg`` does not exist on Windows. The quality probe and the serve reflector both
receive through roomprobe.net.udprecv; with ``RECVMSG`` off and ``socket.socket.recvmsg`` made
to raise AttributeError as on Windows, a real reflector and a real quality run must still
measure loss, RTT and jitter, and say the DSCP marks are not measurable: unknown, never judged.
"""

from __future__ import annotations

import socket
import time

import pytest
from roomprobe.probes import quality

from roomprobe.core.probe import Context, Peer, Status, Targets
from roomprobe.net import udprecv
from roomprobe.peer import mediaflow
from roomprobe.peer import mediawire as mw
from roomprobe.peer.reflector import Reflector, ReflectorLimits

TOKEN = "udprecv-fallback-token"


@pytest.fixture
def no_recvmsg(monkeypatch):
    """This OS, as Windows: the flag off and the call itself absent."""

    def absent(self, *args, **kwargs):
        raise AttributeError("'socket' object has no attribute 'recvmsg' (as on Windows)")

    monkeypatch.setattr(udprecv, "RECVMSG", False)
    monkeypatch.setattr(socket.socket, "recvmsg", absent)


def test_fallback_returns_the_datagram_without_ancillary_data(no_recvmsg):
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(2)
        mw.set_tos(tx, 46 << 2)
        tx.sendto(b"x" * 300, rx.getsockname())
        data, anc, flags, addr = udprecv.recvmsg(rx, 200 + 1, mw.ANC_SIZE)
        assert (len(data), anc, flags) == (201, [], 0)  # cut at the buffer, as recvfrom does
        assert addr == ("127.0.0.1", tx.getsockname()[1])
        assert mw.tos_from_ancillary(anc) is None and not udprecv.marks()
    finally:
        rx.close()
        tx.close()


def test_quality_over_the_fallback_measures_the_call_and_leaves_dscp_unknown(no_recvmsg):
    r = Reflector("127.0.0.1", 0, TOKEN, ReflectorLimits(max_sessions=3, max_pps=500, burst_s=0.2,
                                                          max_seq=4096))
    r.start()
    try:
        ctx = Context(targets=Targets(), options=quality.Options(mtu=False, duration=2.0),
                      privileged=False, deadline=time.monotonic() + 30,
                      peer=Peer("127.0.0.1", r.port, token=TOKEN))
        res = quality.run(ctx)
        assert r.thread is not None and r.thread.is_alive()  # the reflector's loop survived
        assert r.counters.echoed > 50
    finally:
        r.close()
    flows = res.evidence["flows"]
    assert set(flows) == {"audio", "video"}
    for f in flows.values():
        assert f["complete"] and f["replies"] > 0 and f["rtt_ms"]["p95"] is not None
        for d in ("up", "down"):
            assert f[d]["loss_pct"] == 0.0 and f[d]["jitter_ms"] is not None
            assert f[d]["dscp"]["verdict"] == "unknown" and f[d]["dscp"]["received"] is None
        assert f["down"]["dscp"]["why"] == udprecv.NOT_MEASURABLE
        assert "no marks" in f["up"]["dscp"]["why"]
    ids = [x.id for x in res.findings]
    assert "dscp-unmeasured" in ids
    assert not {"dscp-bleached", "dscp-remarked"} & set(ids)
    # The PASS stands on loss, jitter and RTT only: nothing about marks is claimed as proof.
    assert (res.status, res.reason) == (Status.PASS, "ok"), res.summary
    assert "dscp" not in str(res.evidence["proof"])


def test_with_recvmsg_the_same_loopback_run_does_measure_the_marks():
    """The control: on this OS the marks are read (so the test above shows the fallback's effect)."""
    if not udprecv.RECVMSG:
        pytest.skip("this OS has no recvmsg")
    r = Reflector("127.0.0.1", 0, TOKEN, ReflectorLimits(max_sessions=3, max_pps=500, burst_s=0.2,
                                                          max_seq=4096))
    r.start()
    try:
        specs = [mediaflow.FlowSpec("audio", mw.FLOW_AUDIO, 46, 200, 0.02)]
        rec = mediaflow.run_flows("127.0.0.1", r.port, TOKEN, specs, 1.0, time.monotonic() + 6)["audio"]
    finally:
        r.close()
    fig = mediaflow.analyse(rec)
    assert fig["up"]["dscp"]["verdict"] == fig["down"]["dscp"]["verdict"] == "kept"
