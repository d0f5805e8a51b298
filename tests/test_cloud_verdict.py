"""The cloud probe's verdict rules on measurements, and its option checks (exit 3 on bad input)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from roomprobe.probes import cloud

from roomprobe.core.errors import UsageError
from roomprobe.core.probe import Status


def web(ok=True, phase=None, state=None, status=200, url="https://zoom.us/"):
    return {"url": url, "proxy": None, "ok": ok, "phase": phase, "state": state, "detail": "x",
            "status": status, "timings": {}, "tls": None}


def udp(port, state, proof=None, host="s"):
    return {"host": host, "port": port, "state": state, "proof": proof}


def tcp(port, state, host="m"):
    return {"host": host, "port": port, "state": state}


def verdict(summary, findings, web_results):
    return cloud.verdict(summary, findings, web_results, {}, "text")


def ids(findings):
    return {f.id: f for f in findings}


def test_silence_is_never_blocked_without_proof():
    summary, findings = cloud.conclude([web()], [tcp(8801, "open")],
                                       [udp(3478, "silent"), udp(8801, "silent")], None, [8801], [3478, 8801])
    got = ids(findings)
    assert set(got) == {"cloud-udp-unknown"}
    assert got["cloud-udp-unknown"].severity.value == "warn"  # tested, nothing proven
    # silent for the whole wait: a measured no-answer, not "unknown" (and still not "blocked")
    assert summary["udp_ports"] == {"3478": "no-answer", "8801": "no-answer"}
    assert "got no answer for" in got["cloud-udp-unknown"].message
    mp = summary["media_path"]
    assert mp["transport"] == "tcp-8801" and mp["basis"] == "floor" and mp["may_be_better"] is True
    assert [s["state"] for s in mp["steps"]] == ["unknown", "open", "open"]


def test_nothing_tested_is_info_and_the_floor_is_tls_443():
    summary, findings = cloud.conclude([web()], [], [], None, [8801, 8802], [3478, 8801])
    got = ids(findings)
    assert set(got) == {"cloud-udp-unknown"} and got["cloud-udp-unknown"].severity.value == "info"
    assert "stun_hosts only servers known to answer STUN" in got["cloud-udp-unknown"].hint
    mp = summary["media_path"]
    assert (mp["transport"], mp["basis"]) == ("tls-443", "floor")
    assert summary["tcp_ports"] == {"8801": "untested", "8802": "untested"}
    r = verdict(summary, findings, [web()])
    assert (r.status, r.reason) == (Status.PASS, "reachable")
    assert r.evidence["proof"]["web"] == [{"url": "https://zoom.us/", "status": 200, "via": "direct",
                                           "tls": None, "issuer": None}]
    assert r.evidence["proof"]["media_path"]["basis"] == "floor"


def test_control_answer_turns_silence_from_a_known_stun_host_into_blocked():
    control = {"host": "c", "port": 3478, "state": "reachable"}
    attempts = [udp(3478, "silent"), udp(8801, "blocked", "icmp-admin-prohibited")]
    summary, findings = cloud.conclude([web()], [], attempts, control, [], [3478, 8801])
    got = ids(findings)
    assert set(got) == {"cloud-udp-media-blocked"}
    assert got["cloud-udp-media-blocked"].evidence["proof"] == ["control", "icmp-admin-prohibited"]
    assert summary["udp_ports"] == {"3478": "blocked", "8801": "blocked"}
    # TCP 8801 was not tested (no media_hosts): TLS 443 is the floor, TCP may still work
    assert summary["media_path"]["transport"] == "tls-443" and summary["media_path"]["basis"] == "floor"
    assert summary["udp_falls_back_to_tcp_443"] is True
    # a control that is silent too proves nothing
    _, findings = cloud.conclude([web()], [], [udp(3478, "silent")],
                                 {"host": "c", "port": 3478, "state": "silent"}, [], [3478])
    assert set(ids(findings)) == {"cloud-udp-unknown"}


def test_port_unreachable_from_the_host_itself_means_the_path_is_open():
    summary, findings = cloud.conclude([web()], [], [udp(8801, "open-no-stun", "icmp-port-unreachable-from-host")],
                                       None, [], [8801])
    assert findings == [] and summary["udp_ports"] == {"8801": "open"}
    assert summary["media_path"]["transport"] == "udp-8801"
    assert summary["media_path"]["basis"] == "proven"


def test_control_alone_makes_udp_likely_not_proven():
    control = {"host": "c", "port": 3478, "state": "reachable"}
    summary, findings = cloud.conclude([web()], [], [], control, [8801], [8801])
    assert findings == []
    mp = summary["media_path"]
    assert (mp["transport"], mp["basis"]) == ("udp-8801", "likely")
    assert "not proven" in mp["steps"][0]["why"]


def test_local_eperm_is_proof_of_a_block():
    control = {"host": "c", "port": 3478, "state": "reachable"}
    attempts = [udp(8801, "blocked", "local"), udp(3478, "blocked", "local")]
    summary, findings = cloud.conclude([web()], [], attempts, control, [], [3478, 8801])
    got = ids(findings)
    assert set(got) == {"cloud-udp-local-block"}
    assert got["cloud-udp-local-block"].severity.value == "warn"
    assert summary["media_path"]["steps"][0]["state"] == "blocked"
    assert summary["media_path"]["transport"] == "tls-443"
    # the control refused locally and nothing else tested: still a proven block
    summary, findings = cloud.conclude([web()], [], [], {"host": "c", "port": 3478, "state": "blocked",
                                                         "proof": "local"}, [], [8801])
    assert "cloud-udp-local-block" in ids(findings)
    assert summary["media_path"]["steps"][0]["state"] == "blocked"


def test_one_answering_host_makes_the_port_reachable():
    summary, findings = cloud.conclude([web()], [], [udp(8801, "blocked", "icmp-router", "a"),
                                                      udp(8801, "reachable", host="b")], None, [], [8801])
    assert findings == [] and summary["udp_ports"] == {"8801": "reachable"}
    assert summary["media_path"]["transport"] == "udp-8801"
    assert summary["udp_falls_back_to_tcp_443"] is False


def test_https_tls_and_http_findings():
    _, findings = cloud.conclude([web(False, "connect", "timeout", None)], [], [], None, [], [])
    got = ids(findings)
    assert got["cloud-https-blocked"].severity.value == "fail"
    _, findings = cloud.conclude([web(False, "tls", "untrusted", None)], [], [], None, [], [])
    assert "cloud-tls-failed" in ids(findings)
    _, findings = cloud.conclude([web(True, status=403), web(True, url="https://www.zoom.us/")],
                                 [], [], None, [], [])
    got = ids(findings)
    assert got["cloud-http-error"].severity.value == "warn"
    # One reachable URL is enough for sign-in: no https-blocked.
    _, findings = cloud.conclude([web(False, "connect", "refused", None), web()], [], [], None, [], [])
    assert "cloud-https-blocked" not in ids(findings)


def test_a_deadline_is_never_success():
    cut = cloud.web_result("https://zoom.us/", None, {"phase": "resolve"})
    assert cut["ok"] is False and cut["phase"] == "deadline" and "resolve" in cut["detail"]
    summary, findings = cloud.conclude([cut], [], [], None, [], [])
    assert summary["https_ok"] is False and "cloud-https-unproven" in ids(findings)
    assert summary["media_path"]["steps"][2]["state"] == "unknown"
    r = verdict(summary, findings, [cut])
    assert (r.status, r.reason) == (Status.ERROR, "https-deadline") and "proof" not in r.evidence
    # a crashed job (run_all's placeholder has no "ok") is normalised, not a KeyError
    crashed = cloud.web_result("https://zoom.us/", {"state": "error", "error": "ValueError: port"})
    summary, findings = cloud.conclude([crashed], [], [], None, [], [])
    assert summary["https_ok"] is False
    assert verdict(summary, findings, [crashed]).status is Status.ERROR
    ep = cloud.endpoint_result("m", 8801, None)
    assert ep["state"] == "deadline" and ep["port"] == 8801
    ep = cloud.endpoint_result("m", 8801, {"state": "error", "error": "x"})
    assert (ep["host"], ep["port"]) == ("m", 8801)


def test_tcp_media_states():
    summary, findings = cloud.conclude([web()], [tcp(8801, "filtered"), tcp(8802, "refused"),
                                                 tcp(8801, "unresolved", "m2")], [], None, [8801, 8802], [])
    got = ids(findings)
    assert summary["tcp_ports"] == {"8801": "unknown", "8802": "blocked"}
    assert got["cloud-tcp-media-blocked"].evidence["ports"] == [8802]
    assert got["cloud-tcp-media-blocked"].message.endswith("media falls back to TLS 443.")
    _, findings = cloud.conclude([web()], [tcp(8801, "open"), tcp(8802, "filtered")],
                                 [udp(8801, "blocked", "icmp-admin-prohibited")], None, [8801, 8802], [8801])
    got = ids(findings)
    assert "falls back to TCP 8801" in got["cloud-udp-media-blocked"].message
    assert "falls back to TCP 8801" in got["cloud-tcp-media-blocked"].message


def app(transport, in_meeting, conns=()):
    return {"running": True, "in_meeting": in_meeting, "transport": transport, "why": "x",
            "connections": list(conns), "error": None}


def test_the_apps_own_sockets_win():
    summary, findings = cloud.conclude([web()], [], [], None, [], [], app=app("udp-8801", True))
    mp = summary["media_path"]
    assert (mp["transport"], mp["basis"]) == ("udp-8801", "observed") and findings == []
    summary, findings = cloud.conclude([web()], [], [], None, [], [], app=app("tcp-8801", True))
    assert summary["media_path"]["transport"] == "tcp-8801"
    assert summary["media_path"]["may_be_better"] is True
    assert "cloud-app-media-degraded" in ids(findings)
    summary, _ = cloud.conclude([web()], [], [], None, [], [], app=app("tls-443", None))
    assert summary["media_path"]["basis"] == "floor"  # 443 alone: not proof of a meeting
    assert any("not in a meeting" in r for r in summary["media_path"]["reasons"])
    summary, _ = cloud.conclude([web()], [], [], None, [], [], app={"running": False})
    assert any("not running" in r for r in summary["media_path"]["reasons"])


def test_zoom_ranges_inside_outside_and_skipped(tmp_path):
    from roomprobe.net import zoomranges

    f = tmp_path / "Zoom.txt"
    f.write_text("# lab\n203.0.113.0/24\n2001:db8::/32\nnot-a-cidr\n")
    ranges = zoomranges.load([str(f)])
    assert ranges.loaded and ranges.sources[0]["count"] == 2 and ranges.sources[0]["bad_lines"] == ["not-a-cidr"]
    dns = [{"name": "zoom.us", "addresses": ["203.0.113.10", "192.0.2.1"], "error": None}]
    rc = cloud._ranges_check(ranges, None, dns, None)
    assert rc["checked"] and rc["names"][0]["outside"] == ["192.0.2.1"]
    assert rc["age_days"] is not None and rc["age_days"] < 1
    _, findings = cloud.conclude([web()], [], [], None, [], [], ranges_check=rc)
    assert "cloud-dns-outside-zoom-ranges" in ids(findings)
    rc = cloud._ranges_check(zoomranges.load([str(tmp_path / "missing.txt")]), None, dns, None)
    assert rc["checked"] is False and "FileNotFoundError" in rc["why"]
    _, findings = cloud.conclude([web()], [], [], None, [], [], ranges_check=rc)
    assert ids(findings)["cloud-ranges-skipped"].severity.value == "info"


@pytest.mark.parametrize("key,value,msg", [
    ("web_urls", ["http://zoom.us/"], "not an https"),
    ("tcp_ports", ["88o1"], "not a port"),
    ("udp_ports", [70000], "1-65535"),
    ("control_host", "stun.example.net", "HOST:PORT"),
    ("stun_timeout", 0.0, "more than 0"),
    ("media_hosts", ["a..b"], "not a host name"),
    ("stun_hosts", ["bad host"], "not a host name"),
    ("zoom_ranges", ["http://example.net/Zoom.txt"], "https"),
    ("web_urls", [], "at least one"),
    ("app_process_names", [""], "process name"),
])
def test_bad_options_are_usage_errors(key, value, msg):
    with pytest.raises(UsageError, match=msg):
        cloud.validate(replace(cloud.Options(), **{key: value}))


def test_defaults_are_valid_and_hostport_parses():
    cloud.validate(cloud.Options())
    assert cloud.split_hostport("[2001:db8::1]:3478") == ("2001:db8::1", 3478)
    assert cloud.split_hostport("stun.example.net:19302") == ("stun.example.net", 19302)


# -- issue 21: forged rejects, and silence as a measurement ------------------------------------

def test_forged_reject_from_a_known_listener_is_blocked_and_named():
    """What stun.exchange(listens=True) returns for a port-unreachable from a STUN host on
    3478/8801: blocked with the proof named, never "UDP 8801 open (proven)" and PASS."""
    forged = "icmp-port-unreachable-known-listener"
    attempts = [udp(3478, "blocked", forged), udp(8801, "blocked", forged), udp(3479, "reachable")]
    summary, findings = cloud.conclude([web()], [tcp(8801, "open")], attempts, None, [8801],
                                       [3478, 3479, 8801])
    got = ids(findings)
    assert summary["udp_ports"] == {"3478": "blocked", "3479": "reachable", "8801": "blocked"}
    step = summary["media_path"]["steps"][0]
    assert step["state"] == "blocked" and "rejected it on the way" in step["why"]
    msg = got["cloud-udp-media-blocked"].message
    assert "port-unreachable" in msg and "known to listen" in msg and "s:3478" in msg
    assert verdict(summary, findings, [web()]).status == Status.WARN


def test_known_udp_ports_are_the_stun_port_and_zooms_media_ports():
    assert {3478, 8801, 8810} <= cloud.KNOWN_UDP_PORTS
    assert 3479 not in cloud.KNOWN_UDP_PORTS and 8811 not in cloud.KNOWN_UDP_PORTS


def test_a_web_fetch_stuck_in_resolve_for_its_whole_wait_is_a_measured_timeout():
    silent = cloud.web_result("https://zoom.us/", None, {"phase": "resolve"}, waited=1.6)
    assert (silent["ok"], silent["phase"], silent["state"]) == (False, "resolve", "timeout")
    assert silent["waited_s"] == 1.6 and "zoom.us" in silent["detail"] and "1.6 s" in silent["detail"]
    summary, findings = cloud.conclude([silent], [], [], None, [], [])
    f = ids(findings)["cloud-https-blocked"]
    assert f.severity.value == "fail" and "silent for 1.6 s" in f.message
    assert verdict(summary, findings, [silent]).status == Status.FAIL
    # stuck in our own proxy lookup (a PAC evaluation): proves nothing about the network
    cut = cloud.web_result("https://zoom.us/", None, {"phase": "proxy-lookup"}, waited=1.6)
    assert cut["phase"] == "deadline"


def test_silence_in_a_wait_too_short_to_judge_is_a_deadline():
    web_ = [web(False, "connect", "timeout", None)]
    tcp_ = [{"host": "m", "port": 8801, "state": "filtered", "error": "timeout"}]
    udp_ = [{"host": "s", "port": 3478, "state": "silent", "proof": None}]
    cloud.cut_silences(web_, tcp_, udp_, False, False, 0.7, 0.7)
    assert web_[0]["phase"] == "deadline" and web_[0]["ok"] is False
    assert tcp_[0]["state"] == "deadline" and udp_[0]["state"] == "deadline"
    summary, findings = cloud.conclude(web_, tcp_, udp_, None, [8801], [3478])
    assert verdict(summary, findings, web_).status == Status.ERROR
    # judged waits keep their state and carry the seconds waited
    web_ = [web(False, "connect", "timeout", None)]
    tcp_ = [{"host": "m", "port": 8801, "state": "filtered", "error": "timeout"}]
    udp_ = [{"host": "s", "port": 3478, "state": "silent", "proof": None}]
    cloud.cut_silences(web_, tcp_, udp_, True, True, 1.6, 1.2)
    assert (web_[0]["phase"], web_[0]["waited_s"]) == ("connect", 1.6)
    assert (tcp_[0]["state"], tcp_[0]["waited_s"]) == ("filtered", 1.6)
    assert (udp_[0]["state"], udp_[0]["waited_s"]) == ("silent", 1.2)
    summary, findings = cloud.conclude(web_, tcp_, udp_, None, [8801], [3478])
    assert verdict(summary, findings, web_).status == Status.FAIL
