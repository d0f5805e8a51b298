"""The proxy probe against a real mitmproxy (PyPI ``mitmproxy``, run as ``mitmdump``).

mitmproxy pins an older ``cryptography`` than the project's tests use (tests/labca.py), so it
lives in its own virtual environment: ``ROOMPROBE_MITMDUMP``, else /opt/roomprobe-mitm/bin/mitmdump
(.ci/run creates it), else ``mitmdump`` on PATH; without one the module is skipped.

One lab and two mitmdump processes serve the whole module (startup costs a second each):

- ``open``: an explicit proxy (``regular`` on :8080), a transparent proxy (``transparent`` on
  :8081, reached through an nftables ``redirect`` in the router) and a SOCKS5 proxy (:1080); it
  intercepts TLS with its own CA and verifies the lab's zoom.us against the lab CA upstream;
- ``auth``: a SOCKS5 proxy demanding user/password (:1081) that passes TLS through untouched.

Every verdict asserted here would be wrong as PASS: an intercepting proxy is ``tls-intercepted``
(explicitly or transparently), a company CA the device trusts but the public PKI does not is
``tls-inspected``, a SOCKS proxy refusing our credentials is ``proxy-auth-required``, and proxies
roomprobe cannot speak (https://, socks4://) are ``proxy-not-tested``.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from lab import Lab, lab_unavailable_reason
from test_lab_proxy import SECRET, World, finding, wait_port

pytestmark = pytest.mark.lab

MITM = "203.0.113.21"  # mitmdump listens on every router address; proxies are named by this one
ZOOM = "203.0.113.10"
LAN = "198.51.100.0/25"
MITM_VENV = Path("/opt/roomprobe-mitm/bin/mitmdump")


def mitmdump_path() -> str | None:
    for cand in (os.environ.get("ROOMPROBE_MITMDUMP"), str(MITM_VENV), shutil.which("mitmdump")):
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return cand
    return None


class MitmWorld(World):
    """The proxy World plus two mitmdump processes in the router."""

    def start_mitm(self, exe: str) -> None:
        upstream_ca = str(self.ca.cert_path)
        self.confdir = self.tmp / "mitm-open"
        common = ["--set", f"ssl_verify_upstream_trusted_ca={upstream_ca}", "-q"]
        self.lab.router_popen([exe, "--set", f"confdir={self.confdir}", "--mode", "regular@8080",
                               "--mode", "transparent@8081", "--mode", "socks5@1080", *common])
        self.lab.router_popen([exe, "--set", f"confdir={self.tmp / 'mitm-auth'}", "--mode", "socks5@1081",
                               "--proxyauth", f"labuser:{SECRET}", "--ignore-hosts", ".*", *common])
        for port in (8080, 8081, 1080, 1081):  # mitmdump's first start (imports, a new CA) is slow
            wait_port(self.lab.router_exec, MITM, port, timeout=45)
        self.mitm_ca = self.confdir / "mitmproxy-ca-cert.pem"
        end = time.monotonic() + 10
        while not self.mitm_ca.exists() and time.monotonic() < end:
            time.sleep(0.05)
        # This device's store: the public roots (the lab CA plays them) plus the company's CA.
        self.device_store = self.tmp / "device-store.pem"
        self.device_store.write_text(self.ca.cert_path.read_text() + self.mitm_ca.read_text())

    def check_as(self, *sets: str, device_ca: Path, public_ca: Path, env: dict[str, str] | None = None):
        return self.check(f"proxy.ca_file={device_ca}", f"proxy.public_ca_file={public_ca}", *sets,
                          env=env, trust_lab=False)


@pytest.fixture(scope="module")
def mitm(tmp_path_factory: pytest.TempPathFactory):
    reason = lab_unavailable_reason()
    if reason:
        pytest.skip(reason)
    exe = mitmdump_path()
    if exe is None:
        pytest.skip("mitmdump not found: .ci/run installs it into /opt/roomprobe-mitm "
                    "(python3 -m venv /opt/roomprobe-mitm && /opt/roomprobe-mitm/bin/pip install mitmproxy)")
    lab = Lab()
    try:
        world = MitmWorld(lab, tmp_path_factory.mktemp("mitm"))
        world.start_mitm(exe)
        yield world
    finally:
        lab.close()


def _issuer_is_mitm(t: dict) -> bool:
    return "mitmproxy" in (t.get("issuer") or "")


def test_explicit_mitmproxy_is_intercepted(mitm):
    lab_ca = mitm.ca.cert_path
    out = mitm.check_as(device_ca=lab_ca, public_ca=lab_ca,
                        env={"https_proxy": f"http://{MITM}:8080", "no_proxy": LAN})
    f = finding(out, "tls-intercepted")
    assert f["evidence"]["via"] == f"http://{MITM}:8080" and _issuer_is_mitm(f["evidence"]), f
    assert f["severity"] == "fail" and out.probe("proxy")["status"] == "fail" and out.rc == 2
    [p] = out.probe("proxy")["evidence"]["proxies"]
    assert p["connect"] == "ok" and p["tls"]["verdict"] == "untrusted"


def test_transparent_mitmproxy_is_seen_on_the_direct_path(mitm):
    lab_ca = mitm.ca.cert_path
    table = f"rpmitm{os.getpid()}"
    mitm.lab.router_exec(["nft", "-f", "-"], input=(
        f"table ip {table} {{\n chain pre {{\n  type nat hook prerouting priority dstnat;\n"
        f"  ip saddr {LAN} ip daddr {ZOOM} tcp dport 443 redirect to :8081\n }}\n}}\n"))
    try:
        out = mitm.check_as(device_ca=lab_ca, public_ca=lab_ca)
    finally:
        mitm.lab.router_exec(["nft", "delete", "table", "ip", table])
    p = out.probe("proxy")
    assert p["evidence"]["proxies"] == [] and p["status"] == "fail", p
    f = finding(out, "tls-intercepted")
    assert f["evidence"]["via"] == "direct" and _issuer_is_mitm(f["evidence"]), f
    assert out.rc == 2
    # Without the redirect the same direct path is the lab's own certificate again: a pass.
    out = mitm.check_as(device_ca=lab_ca, public_ca=lab_ca)
    assert out.report["findings"] == [] and out.rc == 0, out.report["findings"]


def test_company_ca_trusted_by_the_device_is_inspection(mitm):
    """mitmproxy's CA in this device's store but not in the public PKI: ``tls-inspected``."""
    out = mitm.check_as(device_ca=mitm.device_store, public_ca=mitm.ca.cert_path,
                        env={"https_proxy": f"http://{MITM}:8080", "no_proxy": LAN})
    f = finding(out, "tls-inspected")
    assert f["severity"] == "warn" and _issuer_is_mitm(f["evidence"]), f
    assert f["evidence"]["via"] == f"http://{MITM}:8080" and f["evidence"]["public"], f
    assert out.finding_ids() == {"tls-inspected"} and out.rc == 1
    assert out.probe("proxy")["status"] == "warn"
    direct = out.probe("proxy")["evidence"]["tls"][0]
    assert direct["via"] == "direct" and direct["verdict"] == "ok"  # the public path is clean


def test_socks5_with_and_without_credentials(mitm):
    # An open SOCKS5 proxy that intercepts: the tunnel works, and TLS through it is mitmproxy's.
    out = mitm.check_as(device_ca=mitm.device_store, public_ca=mitm.device_store,
                        env={"https_proxy": f"socks5://{MITM}:1080", "no_proxy": LAN})
    [p] = out.probe("proxy")["evidence"]["proxies"]
    assert p["scheme"] == "socks5" and p["connect"] == "ok", p
    assert p["tls"]["verdict"] == "ok" and _issuer_is_mitm(p["tls"]), p["tls"]
    assert out.report["findings"] == [] and out.rc == 0, out.report["findings"]

    lab_ca = mitm.ca.cert_path
    # Demanding user/password: none, the wrong one, the right one.
    for url, sent in ((f"socks5://{MITM}:1081", False), (f"socks5://labuser:{SECRET}X@{MITM}:1081", True)):
        out = mitm.check_as(device_ca=lab_ca, public_ca=lab_ca, env={"https_proxy": url, "no_proxy": LAN})
        f = finding(out, "proxy-auth-required")
        assert f["evidence"]["credentials_sent"] is sent and f["evidence"]["scheme"] == "socks5", f
        assert out.rc == 2 and SECRET not in out.stdout
    out = mitm.check_as(device_ca=lab_ca, public_ca=lab_ca,
                        env={"https_proxy": f"socks5://labuser:{SECRET}@{MITM}:1081", "no_proxy": LAN})
    [p] = out.probe("proxy")["evidence"]["proxies"]
    assert p["connect"] == "ok" and p["tls"]["verdict"] == "ok", p
    assert "roomprobe Lab" in p["tls"]["issuer"]  # passed through, not intercepted
    assert out.report["findings"] == [] and out.rc == 0 and SECRET not in out.stdout


@pytest.mark.parametrize("scheme", ["https", "socks4"])
def test_schemes_roomprobe_cannot_speak_are_never_a_pass(mitm, scheme):
    lab_ca = mitm.ca.cert_path
    url = f"{scheme}://{MITM}:1080"  # something listens there: only the scheme stops the test
    out = mitm.check_as(device_ca=lab_ca, public_ca=lab_ca, env={"https_proxy": url, "no_proxy": LAN})
    f = finding(out, "proxy-not-tested")
    assert f["evidence"]["scheme"] == scheme and f["evidence"]["tcp"] == "open", f
    assert out.probe("proxy")["status"] != "pass" and out.rc == 1
