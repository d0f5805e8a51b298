"""The cloud probe against a stand-in Zoom cloud in the lab router (tests/cloudlab.py).

Each test builds the healthy cloud (HTTPS with a lab CA, TCP 8801/8802 listeners, coturn STUN on
UDP 3478/3479/8801, a control STUN server), switches one fault on with nftables in the router
(drop vs reject, per port and protocol) and asserts on the CLI's JSON report from the room.
"""

from __future__ import annotations

import subprocess
import sys

import cloudlab
import pytest
from lab import LAB_DNS

pytestmark = pytest.mark.lab


def fw(lab, *rules: str) -> None:
    """Firewall rules on the router's input (the cloud addresses are local to it)."""
    body = "\n".join(rules)
    lab.router_exec(["nft", "-f", "-"], input=f"""
table inet cloudfw {{
  chain input {{ type filter hook input priority 0; policy accept;
{body}
  }}
}}
""")


def check(room, cfg, *extra, env=None, unfinished=False):
    """Run the cloud probe; a run that could not finish its measurement exits 3 (UNKNOWN)."""
    out = room.roomprobe("check", "--only", "cloud", "--config", str(cfg), "--format", "json",
                         "--timeout", "6", *extra, env=env)
    assert out.rc in ((3,) if unfinished else (0, 1, 2)), out.stdout + out.stderr
    return out, out.probe("cloud")


def mp(probe):
    return probe["evidence"]["media_path"]


def test_healthy_cloud(lab, tmp_path):
    cloud, room = cloudlab.build(lab, tmp_path)
    out, probe = check(room, cloud.config(control=True))
    assert out.rc == 0 and probe["status"] == "pass", probe
    ev = probe["evidence"]
    assert ev["https_ok"] is True
    assert (mp(probe)["transport"], mp(probe)["basis"]) == ("udp-8801", "proven")
    assert [s["state"] for s in mp(probe)["steps"]] == ["open", "open", "open"]
    assert mp(probe)["app"]["running"] is False  # no Zoom Rooms here: said, not guessed
    assert "media path: UDP 8801 (proven)" in probe["summary"] and "app not running" in probe["summary"]
    assert ev["tcp_ports"] == {"8801": "open", "8802": "open"}
    assert ev["udp_ports"] == {"3478": "reachable", "3479": "reachable", "8801": "reachable"}
    assert ev["udp_falls_back_to_tcp_443"] is False
    for w in ev["web"]:
        assert w["status"] == 200 and w["proxy"] is None
        assert set(w["timings"]) == {"resolve_ms", "connect_ms", "tls_ms", "first_byte_ms"}
        assert w["tls"]["issuer"] == "roomprobe Lab Inspection CA"
    for a in ev["udp"]:  # coturn saw us: the mapped address is the room's own
        assert a["answer"]["mapped"]["address"] == room.addr
        assert a["answer"]["software"].startswith("Coturn")
    zr = ev["zoom_ranges"]  # the lab's range file: the name resolves inside it
    assert zr["checked"] is True and zr["count"] == 1 and zr["names"][0]["outside"] == []
    assert out.finding_ids() == set() and out.report["diagnosis"] == []
    assert out.seconds < 5


def test_control_alone_makes_udp_likely(lab, tmp_path):
    """Zoom's real case: no STUN host of Zoom's to ask, a control that answers."""
    cloud, room = cloudlab.build(lab, tmp_path)
    out, probe = check(room, cloud.config(control=True, stun_hosts=(), media_hosts=()))
    assert (mp(probe)["transport"], mp(probe)["basis"]) == ("udp-8801", "likely")
    assert probe["status"] == "pass" and out.finding_ids() == set()
    assert probe["evidence"]["control_host"] == "control.zoomlab.test:3478"  # stated in the report


def udp_ports_only(cfg, ports):
    cfg.write_text(cfg.read_text().replace("udp_ports = [3478, 3479, 8801]", f"udp_ports = {ports!r}"))
    return cfg


def test_host_not_known_to_listen_there_is_an_open_path_not_a_block(lab, tmp_path):
    """Port-unreachable from the target itself, on a port it is not known to listen on (3479
    is only RFC 5780's alternate STUN port): the packet arrived, nothing listens, path open."""
    cloud, room = cloudlab.build(lab, tmp_path)
    cfg = udp_ports_only(cloud.config(control=True, stun_hosts=("nostun.zoomlab.test",)), [3479])
    out, probe = check(room, cfg)
    ev = probe["evidence"]
    assert {a["proof"] for a in ev["udp"]} == {"icmp-port-unreachable-from-host"}
    assert {a["icmp"]["from"] for a in ev["udp"]} == {cloudlab.NOSTUN}
    assert ev["udp_ports"] == {"3479": "open"}
    assert "cloud-udp-media-blocked" not in out.finding_ids()
    assert mp(probe)["transport"] == "udp-8801" and probe["status"] == "pass"


def test_reject_forged_in_a_known_listeners_name_is_a_block(lab, tmp_path):
    """Issue 21 section 3: nftables' plain ``reject`` answers ICMP port-unreachable carrying the
    TARGET's address. From a STUN host on 3478, from Zoom's media port 8801 and from the control
    STUN server, hosts known to listen there, that is a firewall rejecting on the way: blocked,
    naming the ICMP and why, never "UDP 8801 open (proven)" and PASS."""
    cloud, room = cloudlab.build(lab, tmp_path)
    fw(lab, f"ip daddr {cloudlab.STUN} udp dport {{ 3478, 8801 }} reject",
       f"ip daddr {cloudlab.CONTROL} udp dport 3478 reject")
    out, probe = check(room, cloud.config(control=True))
    ev = probe["evidence"]
    assert probe["status"] == "warn" and probe["reason"] == "cloud-udp-media-blocked", probe
    assert ev["udp_ports"] == {"3478": "blocked", "3479": "reachable", "8801": "blocked"}
    rejected = [a for a in ev["udp"] if a["port"] in (3478, 8801)]
    assert {a["proof"] for a in rejected} == {"icmp-port-unreachable-known-listener"}
    assert {(a["icmp"]["icmp"], a["icmp"]["from"]) for a in rejected} == {("port-unreachable", cloudlab.STUN)}
    assert (ev["control"]["state"], ev["control"]["proof"]) == ("blocked", "icmp-port-unreachable-known-listener")
    assert mp(probe)["steps"][0]["state"] == "blocked" and "rejected" in mp(probe)["steps"][0]["why"]
    assert (mp(probe)["transport"], mp(probe)["basis"]) == ("tcp-8801", "proven")
    f = next(f for f in out.report["findings"] if f["id"] == "cloud-udp-media-blocked")
    assert "port-unreachable" in f["message"] and "known to listen" in f["message"], f["message"]
    assert out.rc == 1


def test_udp_rejected_by_a_filter_is_blocked_with_icmp_proof(lab, tmp_path):
    cloud, room = cloudlab.build(lab, tmp_path)
    # A filter that says "administratively prohibited" is proof of a block.
    fw(lab, f"ip daddr {cloudlab.STUN} udp dport {{ 3478, 3479, 8801 }} reject with icmp type admin-prohibited")
    out, probe = check(room, cloud.config())
    ev = probe["evidence"]
    assert probe["status"] == "warn" and probe["reason"] == "cloud-udp-media-blocked"
    assert ev["udp_ports"] == {"3478": "blocked", "3479": "blocked", "8801": "blocked"}
    assert {a["proof"] for a in ev["udp"]} == {"icmp-admin-prohibited"}
    assert (mp(probe)["transport"], mp(probe)["basis"]) == ("tcp-8801", "proven")
    assert ev["udp_falls_back_to_tcp_443"] is True
    assert out.finding_ids() == {"cloud-udp-media-blocked"}
    assert out.rc == 1
    assert any(d["code"] == 104101 or "104101" in str(d["code"]) for d in out.report["diagnosis"])


def test_room_firewall_eperm_is_a_local_block(lab, tmp_path):
    cloud, room = cloudlab.build(lab, tmp_path)
    room.nft("table inet roomfw {\n chain output {\n  type filter hook output priority 0; policy accept;\n"
             "  udp dport { 3478, 3479, 8801 } drop\n }\n}\n")
    out, probe = check(room, cloud.config(control=True))
    ev = probe["evidence"]
    assert {a["proof"] for a in ev["udp"]} == {"local"} and {a["error"] for a in ev["udp"]} == {"EPERM"}
    assert ev["control"]["proof"] == "local"
    assert "cloud-udp-local-block" in out.finding_ids()
    assert probe["status"] == "warn" and probe["reason"] == "cloud-udp-local-block"
    assert mp(probe)["steps"][0]["state"] == "blocked"
    assert mp(probe)["transport"] == "tcp-8801"


def test_udp_dropped_is_unknown_without_control_and_blocked_with_it(lab, tmp_path):
    cloud, room = cloudlab.build(lab, tmp_path)
    fw(lab, f"ip daddr {cloudlab.STUN} udp dport {{ 3478, 3479, 8801 }} drop")
    out, probe = check(room, cloud.config(control=False))
    ev = probe["evidence"]
    # silence for the whole retransmit schedule is measured: no-answer, with the seconds waited
    assert ev["udp_ports"] == {"3478": "no-answer", "3479": "no-answer", "8801": "no-answer"}
    assert all(a["state"] == "no-answer" and a["waited_s"] > 0 for a in ev["udp"])
    assert out.finding_ids() == {"cloud-udp-unknown"}  # silence alone is never "blocked"
    assert "got no answer for" in mp(probe)["steps"][0]["why"]
    assert probe["status"] == "warn" and ev["control"] is None  # tested, nothing proven
    assert (mp(probe)["transport"], mp(probe)["basis"]) == ("tcp-8801", "floor")
    assert all(a["sends"] >= 2 for a in ev["udp"])  # it retransmitted before giving up
    assert probe["duration_s"] < 1.9  # three silent ports in parallel cost one 1 s timeout

    out, probe = check(room, cloud.config(control=True))
    ev = probe["evidence"]
    assert ev["control"]["state"] == "reachable"
    assert ev["udp_ports"] == {"3478": "blocked", "3479": "blocked", "8801": "blocked"}
    assert {a["proof"] for a in ev["udp"]} == {"control"}
    assert out.finding_ids() == {"cloud-udp-media-blocked"}
    assert mp(probe)["transport"] == "tcp-8801" and probe["status"] == "warn"


def test_only_443_network(lab, tmp_path):
    cloud, room = cloudlab.build(lab, tmp_path)
    fw(lab, 'iifname "r-lan" meta l4proto udp reject with icmp type admin-prohibited',
       'iifname "r-lan" tcp dport != 443 reject with tcp reset')
    out, probe = check(room, cloud.config(control=True))
    ev = probe["evidence"]
    assert [s["state"] for s in mp(probe)["steps"]] == ["blocked", "blocked", "open"]
    assert (mp(probe)["transport"], mp(probe)["basis"]) == ("tls-443", "proven")
    assert ev["udp_falls_back_to_tcp_443"] is True
    assert {"cloud-udp-media-blocked", "cloud-tcp-media-blocked"} <= out.finding_ids()
    assert probe["status"] == "warn" and out.rc == 1


def test_app_in_a_meeting_on_udp_is_observed(lab, tmp_path):
    cloud, room = cloudlab.build(lab, tmp_path)
    cloudlab.zoom_app(room, f"udp:{cloudlab.STUN}:8801", f"tcp:{cloudlab.WEB}:443")
    # Everything the probe could test itself is dropped: the app's own sockets still tell.
    fw(lab, f"ip daddr {cloudlab.STUN} udp dport {{ 3478, 3479, 8801 }} drop")
    out, probe = check(room, cloud.config(control=False))
    app = probe["evidence"]["app"]
    assert app["running"] is True and app["in_meeting"] is True and app["transport"] == "udp-8801"
    assert {c["remote"] for c in app["connections"]} >= {f"{cloudlab.STUN}:8801", f"{cloudlab.WEB}:443"}
    assert all(c["in_zoom_ranges"] is True for c in app["connections"])
    servers = {(s["address"], s["port"]): s for s in app["servers"]}
    assert servers[(cloudlab.WEB, 443)]["state"] == "open" and servers[(cloudlab.WEB, 443)]["ms"] > 0
    assert (mp(probe)["transport"], mp(probe)["basis"]) == ("udp-8801", "observed")
    assert "app in a meeting on UDP 8801" in probe["summary"]


def test_app_on_tcp_media_is_degraded_and_443_only_is_not_a_meeting(lab, tmp_path):
    cloud, room = cloudlab.build(lab, tmp_path)
    proc = cloudlab.zoom_app(room, f"tcp:{cloudlab.MEDIA}:8801", comm="ZoomRooms.exe")
    out, probe = check(room, cloud.config(control=True))
    assert (mp(probe)["transport"], mp(probe)["basis"]) == ("tcp-8801", "observed")
    assert "cloud-app-media-degraded" in out.finding_ids() and probe["status"] == "warn"
    proc.kill()
    proc.wait()
    cloudlab.zoom_app(room, f"tcp:{cloudlab.WEB}:443")
    out, probe = check(room, cloud.config(control=True))
    app = probe["evidence"]["app"]
    assert app["transport"] == "tls-443" and app["in_meeting"] is None
    assert "not in a meeting" in app["why"]
    assert mp(probe)["basis"] != "observed"


def test_silent_resolver_is_a_measured_failure_unless_the_deadline_cuts_the_wait(lab, tmp_path):
    """Issue 21 section 2: a web name the resolver never answers, waited out for the fetch's
    whole wait (connect_timeout 1.5 s), is a measured "no answer" at resolve: FAIL naming the
    silence and the seconds, never PASS and no longer UNKNOWN. Only a deadline that leaves too
    short a wait to judge (--timeout 1) gives UNKNOWN."""
    cloud, room = cloudlab.build(lab, tmp_path)
    # Web names the hosts file does not know, a resolver that never answers (5 s timeout).
    lab.etc_file(room, "resolv.conf", "nameserver 203.0.113.99\noptions timeout:5 attempts:1\n")
    lab.add_cloud_address(99)
    fw(lab, "ip daddr 203.0.113.99 udp dport 53 drop", "ip daddr 203.0.113.99 tcp dport 53 drop")
    cfg = cloud.config(control=True)
    text = cfg.read_text().replace('web_urls = ["https://web.zoomlab.test/", "https://www.zoomlab.test/"]',
                                   'web_urls = ["https://silent.zoomlab.test/"]')
    cfg.write_text(text)
    out, probe = check(room, cfg)
    web = probe["evidence"]["web"]
    assert (web[0]["ok"], web[0]["phase"], web[0]["state"]) == (False, "resolve", "timeout"), web
    assert web[0]["waited_s"] >= 1.5 and "did not answer" in web[0]["detail"]
    assert probe["status"] == "fail" and probe["reason"] == "cloud-https-blocked"
    f = next(f for f in out.report["findings"] if f["id"] == "cloud-https-blocked")
    assert "silent.zoomlab.test" in f["message"], f["message"]
    assert f"silent for {web[0]['waited_s']:.1f} s" in f["message"], f["message"]
    assert out.rc == 2 and out.report["status"] == "fail"
    # The same silence inside a wait the deadline cut to under a second proves nothing.
    out = room.roomprobe("check", "--only", "cloud", "--config", str(cfg), "--format", "json",
                         "--timeout", "1")
    probe = out.probe("cloud")
    assert probe["status"] == "error" and probe["reason"] == "https-deadline", probe
    assert probe["evidence"]["web"][0]["phase"] == "deadline"
    assert "cloud-https-unproven" in out.finding_ids()
    assert out.rc == 3 and out.report["status"] == "unknown" and out.report["complete"] is False


@pytest.mark.parametrize("timeout", ["5", "2"])
def test_nothing_gets_out_fails_naming_the_silence(lab, tmp_path, timeout):
    """Issue 21 section 2: ``--only cloud`` in a room whose every packet the router drops (its
    DNS server included: names come from DNS, not the hosts file) FAILS, naming the silence,
    with the default deadline and with a 2 s one; it used to end UNKNOWN (exit 3)."""
    cloud, room = cloudlab.build(lab, tmp_path)
    lab.etc_file(room, "hosts", "127.0.0.1 localhost\n")
    lab.etc_file(room, "resolv.conf", f"nameserver {LAB_DNS}\n")
    fw(lab, 'iifname "r-lan" drop')
    lab.router_exec(["nft", "add", "chain", "inet", "cloudfw", "forward",
                     "{ type filter hook forward priority 0; policy accept; }"])
    lab.router_exec(["nft", "add", "rule", "inet", "cloudfw", "forward", "iifname", "r-lan", "drop"])
    out = room.roomprobe("check", "--only", "cloud", "--config", str(cloud.config(control=True)),
                         "--format", "json", "--timeout", timeout)
    probe = out.probe("cloud")
    assert probe["status"] == "fail" and probe["reason"] == "cloud-https-blocked", probe
    assert {(w["phase"], w["state"]) for w in probe["evidence"]["web"]} == {("resolve", "timeout")}
    f = next(f for f in out.report["findings"] if f["id"] == "cloud-https-blocked")
    assert "did not answer" in f["message"] and " s, the whole wait" in f["message"], f["message"]
    assert out.rc == 2 and out.report["status"] == "fail"


def test_bad_proxy_value_is_a_finding_not_a_crash(lab, tmp_path):
    cloud, room = cloudlab.build(lab, tmp_path)
    out, probe = check(room, cloud.config(), env={"https_proxy": "http://127.0.0.1:abc"})
    assert probe["status"] == "fail" and probe["reason"] == "cloud-https-blocked"
    assert {(w["phase"], w["state"]) for w in probe["evidence"]["web"]} == {("proxy", "bad-setting")}


def test_tcp_media_dropped_and_reset(lab, tmp_path):
    cloud, room = cloudlab.build(lab, tmp_path)
    fw(lab, f"ip daddr {cloudlab.MEDIA} tcp dport 8801 drop",
       f"ip daddr {cloudlab.MEDIA} tcp dport 8802 reject with tcp reset")
    out, probe = check(room, cloud.config())
    ev = probe["evidence"]
    states = {a["port"]: a["state"] for a in ev["tcp"]}
    assert states == {8801: "filtered", 8802: "refused"}
    assert ev["tcp_ports"] == {"8801": "blocked", "8802": "blocked"}
    assert out.finding_ids() == {"cloud-tcp-media-blocked"}
    assert mp(probe)["transport"] == "udp-8801"  # UDP still works: media is fine
    assert probe["status"] == "warn"


def test_https_blocked(lab, tmp_path):
    cloud, room = cloudlab.build(lab, tmp_path)
    fw(lab, f"ip daddr {cloudlab.WEB} tcp dport 443 drop")
    out, probe = check(room, cloud.config(), "--code", "5003")
    ev = probe["evidence"]
    assert out.rc == 2 and probe["status"] == "fail" and probe["reason"] == "cloud-https-blocked"
    assert {(w["phase"], w["state"]) for w in ev["web"]} == {("connect", "timeout")}
    assert ev["https_ok"] is False and ev["udp_falls_back_to_tcp_443"] is False
    assert mp(probe)["steps"][2]["state"] == "blocked"
    assert probe["duration_s"] < 2.4  # two dropped URLs in parallel cost one 1.5 s timeout
    assert out.finding_ids() == {"cloud-https-blocked"}
    first = out.report["diagnosis"][0]
    assert (first["product"], first["code"]) == ("zoom-client", 5003), out.report["diagnosis"]
    assert "cloud-https-blocked" in first["because"]


def test_untrusted_certificate_and_http_error(lab, tmp_path):
    cloud, room = cloudlab.build(lab, tmp_path)
    out, probe = check(room, cloud.config(ca=False))  # the system store does not trust the lab CA
    assert out.finding_ids() == {"cloud-tls-failed"}
    assert {(w["phase"], w["state"]) for w in probe["evidence"]["web"]} == {("tls", "untrusted")}
    assert probe["status"] == "fail"

    cloud.restart_web(403)
    out, probe = check(room, cloud.config())
    assert out.finding_ids() == {"cloud-http-error"}
    assert {w["status"] for w in probe["evidence"]["web"]} == {403}
    assert probe["status"] == "fail"  # no web URL works


def test_https_goes_through_the_system_proxy(lab, tmp_path):
    cloud, room = cloudlab.build(lab, tmp_path)
    proxy = cloud.proxy()
    fw(lab, f'iifname "r-lan" ip daddr {cloudlab.WEB} tcp dport 443 drop')  # direct 443 blocked
    out, probe = check(room, cloud.config(), env={"https_proxy": proxy})
    for w in probe["evidence"]["web"]:
        assert w["proxy"] == proxy and w["status"] == 200, w
        assert "proxy_ms" in w["timings"]
    assert "cloud-https-blocked" not in out.finding_ids()

    out, probe = check(room, cloud.config(), env={"https_proxy": proxy, "no_proxy": "zoomlab.test"})
    assert out.finding_ids() == {"cloud-https-blocked"}  # bypassed: direct, and direct is dropped


@pytest.mark.parametrize("setting,line", [
    ("cloud.udp_ports=3478,99999", "roomprobe: cloud.udp_ports: 99999 is not a port number (1-65535)"),
    ("cloud.media_hosts=a..b", "roomprobe: cloud.media_hosts: 'a..b' is not a host name or IP address "
                               "(e.g. mmr.example.net or 192.0.2.10)"),
])
def test_bad_option_exits_3(setting, line):
    proc = subprocess.run([sys.executable, "-m", "roomprobe", "check", "--only", "cloud",
                           "--set", setting], capture_output=True, text=True,
                          env={"ROOMPROBE_CONFIG": "/dev/null", "PATH": "/usr/bin:/bin"}, timeout=30)
    assert proc.returncode == 3
    assert proc.stderr.strip().splitlines() == [line]
