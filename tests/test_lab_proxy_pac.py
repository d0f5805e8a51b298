"""PAC/WPAD, fallback chains, bypass lists, bad settings and TLS verdicts in the proxy lab.

Each test would fail if the probe said PASS for what it did not prove: a looping PAC must not
hang the CLI (it is killed within its deadline), a PAC that never arrives is an error, a dead
first proxy with a working fallback is a warning, a proxy no target uses is not tested, a proxy
that stalls after CONNECT is no pass, and each certificate fault gets its own verdict.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from test_lab_proxy import HERE, PROXY, WEB, ZOOM, World, finding, wait_line

pytestmark = pytest.mark.lab

DEAD = f"{PROXY}:9"  # the proxy's address, a port where nothing listens (refused at once)
PAC_TOP_LOOP = "while (true) {}\nfunction FindProxyForURL(url, host) { return 'DIRECT'; }"
PAC_FN_LOOP = "function FindProxyForURL(url, host) { while (true) {} }"
PAC_ZOOM_LOOP = ("function FindProxyForURL(url, host) {\n if (dnsDomainIs(host, 'zoom.us') && url != '/') "
                 "{ while (true) {} }\n return 'DIRECT'; }")
PAC_MEMORY = "function FindProxyForURL(u, h) { var a = []; while (true) { a.push(new Array(1e6).join('x')); } }"


@pytest.fixture
def world(lab, tmp_path):
    return World(lab, tmp_path)


def test_looping_and_hostile_pac_files_are_killed_within_the_deadline(world):
    base = world.web({"top.pac": PAC_TOP_LOOP, "fn.pac": PAC_FN_LOOP, "zoom.pac": PAC_ZOOM_LOOP,
                      "mem.pac": PAC_MEMORY})
    for name in ("top.pac", "fn.pac", "zoom.pac", "mem.pac"):
        out = world.check(f"proxy.pac_url={base}/{name}")
        f = finding(out, "proxy-pac-error")
        assert out.probe("proxy")["status"] == "fail" and out.rc == 2, name
        assert out.seconds < 7.5, (name, out.seconds)  # the 4.5 s probe, not a hang
        if name != "mem.pac":
            assert "did not finish" in f["evidence"]["error"], f
        assert not [r for r in out.probe("proxy")["evidence"]["routes"]
                    if r["source"] == "pac" and r["via"] == "pac"], name


def test_pac_that_never_arrives_is_not_a_pass(world):
    wait_line(world.lab.router_popen([sys.executable, str(HERE / "proxylab.py"), "slowhttp", WEB, "8081"],
                                     stdout=subprocess.PIPE, text=True))
    out = world.check(f"proxy.pac_url=http://{WEB}:8081/slow.pac")
    f = finding(out, "proxy-pac-error")
    assert "in time" in f["evidence"]["error"] and out.rc == 2
    assert out.seconds < 7.5
    out = world.check("proxy.pac_url=/dev/zero")
    assert "not a regular file" in finding(out, "proxy-pac-error")["evidence"]["error"]
    assert out.rc == 2


def test_huge_valid_pac_and_multi_entry_fallback(world):
    url = world.tinyproxy()
    padding = "// " + "x" * 1000 + "\n"
    huge = padding * 1250 + ("function FindProxyForURL(url, host) {\n"
                             f"  if (isInNet(host, '198.51.100.0', '255.255.255.128')) return 'DIRECT';\n"
                             f"  return 'PROXY {DEAD}; PROXY {PROXY}:8888; DIRECT'; }}\n")
    assert len(huge) > 1_200_000
    base = world.web({"huge.pac": huge})
    out = world.check(f"proxy.pac_url={base}/huge.pac")
    ev = out.probe("proxy")["evidence"]
    zoom = next(r for r in ev["routes"] if r["target"] == "https://zoom.us/" and r["source"] == "pac")
    assert zoom["chain"] == [f"http://{DEAD}", url, "DIRECT"], zoom
    f = finding(out, "proxy-fallback")  # dead first entry, clients fall back to the working proxy
    assert f["severity"] == "warn" and f["evidence"]["fallback"] == url
    assert out.finding_ids() == {"proxy-fallback"} and out.rc == 1
    assert {p["proxy"]: p.get("connect") for p in ev["proxies"]}[url] == "ok"


def test_my_ip_address_is_the_routed_interface(world):
    world.tinyproxy()
    # The host name maps to 127.0.1.1 (as on Debian): resolving it, as pypac does, picks the wrong
    # branch; the routed interface's address picks the right one.
    world.hosts(f"127.0.0.1 localhost\n127.0.1.1 {socket.gethostname()}\n{ZOOM} zoom.us api.zoom.us\n")
    pac = ("function FindProxyForURL(url, host) {\n"
           "  if (isInNet(host, '198.51.100.0', '255.255.255.128')) return 'DIRECT';\n"
           "  if (isInNet(myIpAddress(), '198.51.100.0', '255.255.255.128')) return 'PROXY PROXYADDR:8888';\n"
           "  return 'PROXY DEADADDR'; }").replace("PROXYADDR", PROXY).replace("DEADADDR", DEAD)
    base = world.web({"myip.pac": pac})
    out = world.check(f"proxy.pac_url={base}/myip.pac")
    ev = out.probe("proxy")["evidence"]
    assert [p["proxy"] for p in ev["proxies"]] == [f"http://{PROXY}:8888"], ev["routes"]
    assert out.report["findings"] == [] and out.rc == 0


@pytest.mark.parametrize("no_proxy", ["zoom.us,198.51.100.0/25", ".zoom.us,198.51.100.30", "*"])
def test_proxy_no_target_uses_is_not_tested(world, no_proxy):
    out = world.check(env={"https_proxy": f"http://{DEAD}", "http_proxy": f"http://{DEAD}",
                           "NO_PROXY": no_proxy})
    p = out.probe("proxy")
    assert p["evidence"]["proxies"] == [] and p["evidence"]["unused_proxies"] == [f"http://{DEAD}"]
    assert out.report["findings"] == [] and p["status"] == "pass" and out.rc == 0
    # The same dead proxy, used: a failure naming the targets that go through it.
    out = world.check(env={"https_proxy": f"http://{DEAD}", "NO_PROXY": "api.zoom.us,198.51.100.0/25"})
    f = finding(out, "proxy-unreachable")
    assert f["evidence"]["targets"] == ["https://zoom.us/"], f


def test_bad_proxy_value_is_a_finding_naming_the_setting(world):
    out = world.check(env={"https_proxy": "http://127.0.0.1:abc"})
    assert out.rc == 2 and "Traceback" not in out.stderr, out.stderr
    f = finding(out, "proxy-bad-setting")
    assert f["evidence"]["setting"] == "https_proxy (env)"
    assert "port" in f["message"] and "https_proxy" in f["hint"]


def test_proxy_that_stalls_after_connect_is_not_a_pass(world):
    world.lab.add_cloud_address(22)
    wait_line(world.lab.router_popen([sys.executable, str(HERE / "proxylab.py"), "stall", "203.0.113.22",
                                      "3128"], stdout=subprocess.PIPE, text=True))
    out = world.check("proxy.tls_timeout=1.5", env={"https_proxy": "http://203.0.113.22:3128"})
    f = finding(out, "tls-handshake-failed")
    assert f["evidence"]["via"] == "http://203.0.113.22:3128" and f["evidence"]["verdict"] == "no-answer"
    assert out.probe("proxy")["status"] == "fail" and out.rc == 2


def test_expired_and_wrong_name_certificates_are_told_apart(world):
    expired = world.ca.issue("expired", ["zoom.us"], valid_from_days=-60, valid_to_days=-30)
    wrong = world.ca.issue("wrong", ["other.example"])
    for port, cert in ((8443, expired), (9443, wrong)):
        wait_line(world.lab.router_popen([sys.executable, str(HERE / "proxylab.py"), "tls", ZOOM, str(port),
                                          str(cert.cert), str(cert.key)], stdout=subprocess.PIPE, text=True))
    out = world.check("proxy.tls_port=8443")
    f = finding(out, "tls-cert-expired")
    assert f["evidence"]["server_date"] and f["evidence"]["local_time"], f
    assert "clock" in f["message"] and "tls-intercepted" not in out.finding_ids()
    out = world.check("proxy.tls_port=9443")
    f = finding(out, "tls-name-mismatch")
    assert "other.example" in f["evidence"]["subject"]
    assert "tls-intercepted" not in out.finding_ids() and out.rc == 2


def test_wpad_through_the_search_domain(world):
    world.tinyproxy()
    world.web({"wpad.dat": f"function FindProxyForURL(u, h) {{ if (isInNet(h, '198.51.100.0', "
                           f"'255.255.255.128')) return 'DIRECT'; return 'PROXY {PROXY}:8888'; }}"})
    world.lab.etc_file(world.room, "resolv.conf", "nameserver 203.0.113.53\nsearch lab.example\n")
    out = world.check("proxy.wpad=on")
    ev = out.probe("proxy")["evidence"]
    assert ev["wpad"]["domain"] == "lab.example" and ev["wpad"]["found"] == "http://wpad.lab.example/wpad.dat"
    assert [p["proxy"] for p in ev["proxies"]] == [f"http://{PROXY}:8888"]
    assert out.report["findings"] == [] and out.rc == 0
