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


def check(room, cfg, *extra, env=None):
    out = room.roomprobe("check", "--only", "cloud", "--config", str(cfg), "--format", "json",
                         "--timeout", "6", *extra, env=env)
    assert out.rc in (0, 1, 2), out.stdout + out.stderr
    return out, out.probe("cloud")


def test_healthy_cloud(lab, tmp_path):
    cloud, room = cloudlab.build(lab, tmp_path)
    out, probe = check(room, cloud.config(control=True))
    assert out.rc == 0 and probe["status"] == "pass", probe
    ev = probe["evidence"]
    assert ev["https_ok"] is True and ev["media_path"] == "udp"
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
    assert out.finding_ids() == set() and out.report["diagnosis"] == []
    assert out.seconds < 5


def test_udp_rejected_is_blocked_with_icmp_proof(lab, tmp_path):
    cloud, room = cloudlab.build(lab, tmp_path)
    fw(lab, f"ip daddr {cloudlab.STUN} udp dport {{ 3478, 3479, 8801 }} reject")  # icmp port-unreachable
    out, probe = check(room, cloud.config())
    ev = probe["evidence"]
    assert probe["status"] == "warn" and probe["reason"] == "cloud-udp-media-blocked"
    assert ev["udp_ports"] == {"3478": "blocked", "3479": "blocked", "8801": "blocked"}
    assert {a["proof"] for a in ev["udp"]} == {"icmp"} and {a["error"] for a in ev["udp"]} == {"ECONNREFUSED"}
    assert ev["media_path"] == "tcp-media" and ev["udp_falls_back_to_tcp_443"] is True
    assert out.finding_ids() == {"cloud-udp-media-blocked"}
    assert out.rc == 1
    assert any(d["code"] == "104101-104118" or "104101" in str(d["code"]) for d in out.report["diagnosis"])


def test_udp_dropped_is_unknown_without_control_and_blocked_with_it(lab, tmp_path):
    cloud, room = cloudlab.build(lab, tmp_path)
    fw(lab, f"ip daddr {cloudlab.STUN} udp dport {{ 3478, 3479, 8801 }} drop")
    out, probe = check(room, cloud.config(control=False))
    ev = probe["evidence"]
    assert ev["udp_ports"] == {"3478": "unknown", "3479": "unknown", "8801": "unknown"}
    assert out.finding_ids() == {"cloud-udp-unknown"}  # silence alone is never "blocked"
    assert probe["status"] == "pass" and ev["control"] is None
    assert all(a["sends"] >= 2 for a in ev["udp"])  # it retransmitted before giving up
    assert probe["duration_s"] < 1.9  # three silent ports in parallel cost one 1 s timeout

    out, probe = check(room, cloud.config(control=True))
    ev = probe["evidence"]
    assert ev["control"]["state"] == "reachable"
    assert ev["udp_ports"] == {"3478": "blocked", "3479": "blocked", "8801": "blocked"}
    assert {a["proof"] for a in ev["udp"]} == {"control"}
    assert out.finding_ids() == {"cloud-udp-media-blocked"}


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
    assert ev["media_path"] == "udp"  # UDP still works: media is fine
    assert probe["status"] == "warn"


def test_https_blocked(lab, tmp_path):
    cloud, room = cloudlab.build(lab, tmp_path)
    fw(lab, f"ip daddr {cloudlab.WEB} tcp dport 443 drop")
    out, probe = check(room, cloud.config(), "--code", "5003")
    ev = probe["evidence"]
    assert out.rc == 2 and probe["status"] == "fail" and probe["reason"] == "cloud-https-blocked"
    assert {(w["phase"], w["state"]) for w in ev["web"]} == {("connect", "timeout")}
    assert ev["https_ok"] is False and ev["udp_falls_back_to_tcp_443"] is False
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


def test_bad_option_exits_3():
    proc = subprocess.run([sys.executable, "-m", "roomprobe", "check", "--only", "cloud",
                           "--set", "cloud.udp_ports=3478,99999"], capture_output=True, text=True,
                          env={"ROOMPROBE_CONFIG": "/dev/null", "PATH": "/usr/bin:/bin"}, timeout=30)
    assert proc.returncode == 3
    assert proc.stderr.strip().splitlines() == ["roomprobe: cloud.udp_ports: 99999 is not a port number (1-65535)"]
