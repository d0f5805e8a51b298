"""The proxy probe in a real lab: tinyproxy, a dead loopback proxy, a proxy demanding auth, a PAC
file and a WPAD file over HTTP, and a TLS server with a private CA standing in for zoom.us behind
an intercepting gateway. zoom.us resolves only inside the lab, through the namespace hosts file.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from labca import LabCA

pytestmark = pytest.mark.lab

HERE = Path(__file__).resolve().parent
ZOOM = "203.0.113.10"  # lab "zoom.us" (TLS server)
WEB = "203.0.113.11"  # PAC/WPAD web server
PROXY = "203.0.113.20"  # tinyproxy
SECRET = "S3cretPw-xyz"


def wait_line(proc: subprocess.Popen) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "listening", f"lab server failed: {line!r}"


def wait_port(run, addr: str, port: int, timeout: float = 5.0) -> None:
    """Poll until something listens (tinyproxy prints nothing useful to wait on)."""
    code = (f"import socket,time\nend = time.monotonic() + {timeout}\nwhile True:\n  try:\n"
            f"    socket.create_connection(('{addr}',{port}),0.2).close(); break\n"
            "  except OSError:\n    if time.monotonic() > end: raise SystemExit(1)\n"
            "    time.sleep(0.05)\n")
    run([sys.executable, "-c", code], timeout=timeout + 10)


class World:
    """A room on the lan, lab zoom.us with a private-CA certificate, helpers to add proxies."""

    def __init__(self, lab, tmp: Path, hostname_addr: str | None = None) -> None:
        self.lab, self.tmp = lab, tmp
        self.room = lab.add_host("room", "lan", 20)
        self.ctrl_addr = "198.51.100.30"
        for octet in (10, 11, 20, 21):
            lab.add_cloud_address(octet)
        self.ca = LabCA(tmp / "ca")
        cert = self.ca.issue("zoom", ["zoom.us", "api.zoom.us"])
        wait_line(lab.router_popen([sys.executable, str(HERE / "proxylab.py"), "tls", ZOOM, "443",
                                    str(cert.cert), str(cert.key)], stdout=subprocess.PIPE, text=True))
        names = f"{ZOOM} zoom.us api.zoom.us\n{WEB} wpad.lab.example\n"
        me = socket.gethostname()
        self.hosts(f"127.0.0.1 localhost\n{hostname_addr or self.room.addr} {me}\n{names}")
        # tinyproxy in the router resolves zoom.us too
        lab.etc_file(SimpleNamespace(ns=lab.router), "hosts", f"127.0.0.1 localhost\n{names}")

    def hosts(self, text: str) -> None:
        self.lab.etc_file(self.room, "hosts", text)

    def tinyproxy(self, *, listen: str = PROXY, port: int = 8888, auth: bool = False,
                  in_room: bool = False) -> str:
        conf = self.tmp / f"tinyproxy-{listen}-{port}.conf"
        lines = [f"Port {port}", f"Listen {listen}", "Timeout 10", "MaxClients 20", "LogLevel Info",
                 "ConnectPort 443", "User nobody", "Group nogroup"]
        if auth:
            lines.append(f"BasicAuth labuser {SECRET}")
        conf.write_text("\n".join(lines) + "\n")
        conf.chmod(0o644)
        if in_room:
            self.room.popen(["tinyproxy", "-d", "-c", str(conf)])
            wait_port(self.room.run, listen, port)
        else:
            self.lab.router_popen(["tinyproxy", "-d", "-c", str(conf)])
            wait_port(self.lab.router_exec, listen, port)
        return f"http://{listen}:{port}"

    def web(self, files: dict[str, str], port: int = 80) -> str:
        d = self.tmp / f"www{port}"
        d.mkdir(exist_ok=True)
        for name, text in files.items():
            (d / name).write_text(text)
        wait_line(self.lab.router_popen([sys.executable, str(HERE / "proxylab.py"), "http", WEB, str(port),
                                         str(d)], stdout=subprocess.PIPE, text=True))
        return f"http://{WEB}:{port}"

    def check(self, *sets: str, env: dict[str, str] | None = None, trust_lab: bool = True,
              extra: tuple[str, ...] = ()):
        args = ["check", "--controller", self.ctrl_addr, "--only", "proxy", "--format", "json",
                "--timeout", "8"]
        if trust_lab:  # the lab CA plays both this device's store and the public web PKI
            args += ["--set", f"proxy.ca_file={self.ca.cert_path}",
                     "--set", f"proxy.public_ca_file={self.ca.cert_path}"]
        for s in sets:
            args += ["--set", s]
        out = self.room.roomprobe(*args, *extra, env=env)
        assert out.rc in (0, 1, 2), out.stdout + out.stderr
        return out


@pytest.fixture
def world(lab, tmp_path):
    return World(lab, tmp_path)


def finding(out, fid: str) -> dict:
    found = [f for f in out.report["findings"] if f["id"] == fid]
    assert found, f"no {fid}: {out.report['findings']}"
    return found[0]


def test_direct_trusted_then_intercepted(world):
    out = world.check()
    p = out.probe("proxy")
    assert p["status"] == "pass" and p["reason"] == "direct", p
    assert out.report["findings"] == []
    direct = p["evidence"]["tls"][0]
    assert direct["via"] == "direct" and direct["verified"] is True
    assert "roomprobe Lab Inspection CA" in direct["issuer"]
    assert p["evidence"]["room_address"]["address_toward_peer"] == world.room.addr

    # The same server judged against the system store: a private issuer on zoom.us = interception.
    out = world.check(trust_lab=False)
    assert out.rc == 2
    f = finding(out, "tls-intercepted")
    assert f["severity"] == "fail" and "roomprobe Lab Inspection CA" in f["evidence"]["issuer"]
    assert f["evidence"]["via"] == "direct" and f["evidence"]["verify_error"]


def test_dead_loopback_proxy(world):
    with socket.socket() as s:  # a free port (nothing will listen on it in the room)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = world.check(env={"HTTPS_PROXY": f"http://127.0.0.1:{port}", "no_proxy": "198.51.100.0/25"})
    f = finding(out, "proxy-loopback-dead")
    assert f["severity"] == "fail" and f["evidence"]["tcp"] == "refused"
    assert f["evidence"]["port"] == port and "env" in f["evidence"]["sources"]
    assert out.probe("proxy")["status"] == "fail" and out.rc == 2
    assert "controller-via-proxy" not in out.finding_ids()  # CIDR no_proxy honoured
    first = out.report["diagnosis"][0]
    assert (first["product"], first["code"]) == ("zoom-rooms", 2002), out.report["diagnosis"]
    assert "proxy-loopback-dead" in first["because"]


def test_loopback_agent_and_tls_through_it(world):
    url = world.tinyproxy(listen="127.0.0.1", port=3128, in_room=True)
    out = world.check(env={"https_proxy": url, "no_proxy": world.ctrl_addr})
    f = finding(out, "proxy-loopback-agent")
    assert f["severity"] == "warn" and f["evidence"]["connect"] == "ok"
    assert f["evidence"]["process"] == "tinyproxy"
    via = [t for t in out.probe("proxy")["evidence"]["tls"] if t["via"] != "direct"]
    assert via and via[0]["verified"] is True  # tinyproxy tunnels, it does not intercept
    assert out.finding_ids() == {"proxy-loopback-agent"}
    assert out.rc == 1


def test_auth_required_and_credentials_never_printed(world, tmp_path):
    url = world.tinyproxy(auth=True)
    out = world.check(env={"https_proxy": url, "no_proxy": "198.51.100.0/25"})
    f = finding(out, "proxy-auth-required")
    assert f["evidence"]["status_code"] == 407

    # Right credentials in the URL: CONNECT works, TLS through the proxy verifies.
    good = f"http://labuser:{SECRET}@{PROXY}:8888"
    out = world.check(env={"https_proxy": good, "no_proxy": "198.51.100.0/25"})
    assert "proxy-auth-required" not in out.finding_ids(), out.report["findings"]
    assert [p["connect"] for p in out.probe("proxy")["evidence"]["proxies"]] == ["ok"]

    # Wrong password, and the secret in every output format: never shown.
    bad = f"http://labuser:{SECRET}X@{PROXY}:8888"
    env = {"HTTPS_PROXY": bad, "http_proxy": good, "no_proxy": "198.51.100.0/25"}
    jpath = tmp_path / "report.json"
    outputs = []
    for fmt in ("text", "json"):
        args = ["check", "--controller", world.ctrl_addr, "--only", "proxy", "--format", fmt, "-v",
                "--json", str(jpath), "--set", f"proxy.ca_file={world.ca.cert_path}"]
        run = world.room.roomprobe(*args, env=env)
        outputs += [run.stdout, run.stderr, jpath.read_text()]
    assert "proxy-auth-required" in outputs[0] + outputs[3]
    assert "rejects the configured credentials" in outputs[0]
    for text in outputs:
        assert SECRET not in text and "labuser" not in text
    rep = json.loads(outputs[3])
    assert any(p["proxy"] == f"http://{PROXY}:8888" for p in rep["probes"][0]["evidence"]["proxies"])


def test_forbidden_unreachable_and_garbage_proxies(world):
    url = world.tinyproxy()
    out = world.check("proxy.connect_target=zoom.us:8443", env={"https_proxy": url})
    f = finding(out, "proxy-connect-denied")
    assert f["evidence"]["status_code"] == 403

    out = world.check("proxy.connect_timeout=1", env={"https_proxy": "http://203.0.113.99:3128"})
    f = finding(out, "proxy-unreachable")
    assert f["evidence"]["tcp"] in ("timeout", "error") and f["evidence"]["loopback"] is False

    wait_line(world.lab.router_popen([sys.executable, str(HERE / "proxylab.py"), "garbage",
                                      "203.0.113.21", "8080"], stdout=subprocess.PIPE, text=True))
    out = world.check(env={"https_proxy": "http://203.0.113.21:8080"})
    f = finding(out, "proxy-bad-answer")
    assert f["evidence"]["connect"] == "garbage"
    assert out.report["diagnosis"][0]["code"] == 5003
    assert {"proxy-auth-required", "proxy-connect-denied"}.isdisjoint(out.finding_ids())


PAC_GOOD = """function FindProxyForURL(url, host) {
  if (isInNet(host, "198.51.100.0", "255.255.255.128")) return "DIRECT";
  return "PROXY PROXYADDR:8888; DIRECT";
}""".replace("PROXYADDR", PROXY)
PAC_ALL = 'function FindProxyForURL(url, host) { return "PROXY PROXYADDR:8888"; }'.replace("PROXYADDR", PROXY)


def test_pac_over_http(world):
    world.tinyproxy()
    base = world.web({"good.pac": PAC_GOOD, "all.pac": PAC_ALL, "broken.pac": "function Find( {"})
    out = world.check(f"proxy.pac_url={base}/good.pac")
    ev = out.probe("proxy")["evidence"]
    routes = {r["target"]: r for r in ev["routes"] if r["source"] == "pac"}
    assert routes["https://zoom.us/"]["proxy"] == f"http://{PROXY}:8888"
    assert routes["https://zoom.us/"]["via"] == "pac"
    assert routes[f"http://{world.ctrl_addr}:9090/"]["proxy"] is None
    assert out.report["findings"] == [] and out.rc == 0

    out = world.check(f"proxy.pac_url={base}/all.pac")
    f = finding(out, "controller-via-proxy")
    assert f["evidence"]["peer"] == world.ctrl_addr and f["evidence"]["via"] == "pac"

    for name in ("broken.pac", "missing.pac"):
        out = world.check(f"proxy.pac_url={base}/{name}")
        f = finding(out, "proxy-pac-error")
        assert f["evidence"]["pac_url"].endswith(name)
        assert ("malformed" in f["evidence"]["error"]) == (name == "broken.pac")


def test_wpad_from_domain(world):
    world.tinyproxy()
    world.web({"wpad.dat": PAC_GOOD})
    out = world.check("proxy.wpad=on", "proxy.wpad_domain=lab.example")
    ev = out.probe("proxy")["evidence"]
    assert ev["wpad"]["found"] == "http://wpad.lab.example/wpad.dat"
    assert any(s["name"] == "wpad" for s in ev["sources"])
    assert [p["proxy"] for p in ev["proxies"]] == [f"http://{PROXY}:8888"]
    out = world.check("proxy.wpad=off")
    assert out.probe("proxy")["evidence"]["wpad"] == {"mode": "off"}
    # A value the probe cannot act on is refused before anything runs: one line, exit 3.
    bad = world.room.roomprobe("check", "--controller", world.ctrl_addr, "--only", "proxy",
                               "--set", "proxy.wpad=yes")
    assert bad.rc == 3 and bad.stdout == "", bad
    assert bad.stderr.strip().splitlines() == ["roomprobe: proxy.wpad='yes' is not one of auto, on, off"]


def test_controller_via_env_proxy_and_cidr_bypass(world):
    url = world.tinyproxy()
    out = world.check(env={"http_proxy": url, "https_proxy": url})
    f = finding(out, "controller-via-proxy")
    assert f["evidence"]["source"] == "env" and f["evidence"]["via"] == "fixed"
    out = world.check(env={"http_proxy": url, "NO_PROXY": "10.0.0.0/8,198.51.100.0/25"})
    assert "controller-via-proxy" not in out.finding_ids()


def test_hostname_resolves_to_loopback(world):
    world.hosts(f"127.0.0.1 localhost\n127.0.1.1 {socket.gethostname()}\n{ZOOM} zoom.us\n")
    out = world.check("proxy.hostname_check=on")
    f = finding(out, "host-resolves-to-loopback")
    assert f["evidence"]["addresses"] == ["127.0.1.1"]
    assert f["evidence"]["address_toward_peer"] == world.room.addr
    assert f["severity"] == "warn" and out.rc == 1
    # auto: judged on Windows/macOS only (Debian maps the host name to 127.0.1.1 by design)
    out = world.check()
    assert out.report["findings"] == []
    assert out.probe("proxy")["evidence"]["room_address"]["hostname_resolves_to"] == ["127.0.1.1"]


def test_hostname_on_lan_address_is_fine(world):
    out = world.check("proxy.hostname_check=on")
    assert out.report["findings"] == [] and out.rc == 0
    assert out.probe("proxy")["evidence"]["room_address"]["hostname_resolves_to"] == [world.room.addr]
