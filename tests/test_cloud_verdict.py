"""The cloud probe's verdict rules on measurements, and its option checks (exit 3 on bad input)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from roomprobe.probes import cloud

from roomprobe.core.errors import UsageError


def web(ok=True, phase=None, state=None, status=200, url="https://zoom.us/"):
    return {"url": url, "proxy": None, "ok": ok, "phase": phase, "state": state, "detail": "x",
            "status": status, "timings": {}, "tls": None}


def udp(port, state, proof=None, host="s"):
    return {"host": host, "port": port, "state": state, "proof": proof}


def tcp(port, state, host="m"):
    return {"host": host, "port": port, "state": state}


def ids(findings):
    return {f.id: f for f in findings}


def test_silence_is_never_blocked_without_proof():
    summary, findings = cloud.conclude([web()], [tcp(8801, "open")],
                                       [udp(3478, "silent"), udp(8801, "silent")], None, [8801], [3478, 8801])
    got = ids(findings)
    assert set(got) == {"cloud-udp-unknown"}
    assert got["cloud-udp-unknown"].severity.value == "info"
    assert summary["udp_ports"] == {"3478": "unknown", "8801": "unknown"}
    assert summary["media_path"] == "tcp-media" and summary["udp_falls_back_to_tcp_443"] is True


def test_control_answer_turns_silence_into_blocked():
    control = {"host": "c", "port": 3478, "state": "reachable"}
    attempts = [udp(3478, "silent"), udp(8801, "blocked", "icmp")]
    summary, findings = cloud.conclude([web()], [], attempts, control, [], [3478, 8801])
    got = ids(findings)
    assert set(got) == {"cloud-udp-media-blocked"}
    assert got["cloud-udp-media-blocked"].evidence["proof"] == ["control", "icmp"]
    assert summary["udp_ports"] == {"3478": "blocked", "8801": "blocked"}
    # a control host that is silent too proves nothing
    _, findings = cloud.conclude([web()], [], [udp(3478, "silent")],
                                 {"host": "c", "state": "silent"}, [], [3478])
    assert set(ids(findings)) == {"cloud-udp-unknown"}


def test_one_answering_host_makes_the_port_reachable():
    summary, findings = cloud.conclude([web()], [], [udp(3478, "blocked", "icmp", "a"),
                                                      udp(3478, "reachable", host="b")], None, [], [3478])
    assert findings == [] and summary["udp_ports"] == {"3478": "reachable"}
    assert summary["media_path"] == "udp" and summary["udp_falls_back_to_tcp_443"] is False


def test_https_tls_and_http_findings():
    _, findings = cloud.conclude([web(False, "connect", "timeout", None)], [], [], None, [], [])
    got = ids(findings)
    assert set(got) == {"cloud-https-blocked"} and got["cloud-https-blocked"].severity.value == "fail"
    _, findings = cloud.conclude([web(False, "tls", "untrusted", None)], [], [], None, [], [])
    assert set(ids(findings)) == {"cloud-tls-failed"}
    _, findings = cloud.conclude([web(True, status=403), web(True, url="https://www.zoom.us/")],
                                 [], [], None, [], [])
    got = ids(findings)
    assert set(got) == {"cloud-http-error"} and got["cloud-http-error"].severity.value == "warn"
    # One reachable URL is enough for sign-in: no https-blocked.
    _, findings = cloud.conclude([web(False, "connect", "refused", None), web()], [], [], None, [], [])
    assert findings == []


def test_tcp_media_states():
    summary, findings = cloud.conclude([web()], [tcp(8801, "filtered"), tcp(8802, "refused"),
                                                 tcp(8801, "unresolved", "m2")], [], None, [8801, 8802], [])
    got = ids(findings)
    assert summary["tcp_ports"] == {"8801": "unknown", "8802": "blocked"}
    assert got["cloud-tcp-media-blocked"].evidence["ports"] == [8802]
    assert got["cloud-tcp-media-blocked"].message.endswith("media falls back to TCP 443.")
    _, findings = cloud.conclude([web()], [tcp(8801, "open"), tcp(8802, "filtered")],
                                 [udp(3478, "blocked", "icmp")], None, [8801, 8802], [3478])
    got = ids(findings)
    assert "falls back to TCP 8801" in got["cloud-udp-media-blocked"].message
    assert "falls back to TCP 8801" in got["cloud-tcp-media-blocked"].message


@pytest.mark.parametrize("key,value,msg", [
    ("web_urls", ["http://zoom.us/"], "not an https"),
    ("tcp_ports", ["88o1"], "not a port"),
    ("udp_ports", [70000], "1-65535"),
    ("control_host", "stun.example.net", "HOST:PORT"),
    ("stun_timeout", 0.0, "more than 0"),
])
def test_bad_options_are_usage_errors(key, value, msg):
    with pytest.raises(UsageError, match=msg):
        cloud.validate(replace(cloud.Options(), **{key: value}))


def test_defaults_are_valid_and_hostport_parses():
    cloud.validate(cloud.Options())
    assert cloud.split_hostport("[2001:db8::1]:3478") == ("2001:db8::1", 3478)
    assert cloud.split_hostport("stun.example.net:19302") == ("stun.example.net", 19302)
