"""The proxy probe against a real squid (Debian package ``squid``): one squid in the lab router with
three ports, an open one, one demanding Basic auth and one whose ACL denies everything; started
once per test module's lab run (squid startup costs about a second)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from test_lab_proxy import PROXY, SECRET, World, finding, wait_port

pytestmark = pytest.mark.lab

SQUID_CONF = """
http_port {addr}:3128 name=open
http_port {addr}:3129 name=auth
http_port {addr}:3130 name=deny
pid_filename {dir}/squid.pid
cache_log {dir}/cache.log
access_log none
cache deny all
coredump_dir {dir}
dns_nameservers 203.0.113.53
auth_param basic program /usr/lib/squid/basic_ncsa_auth {dir}/passwd
acl p_open myportname open
acl p_auth myportname auth
acl p_deny myportname deny
acl authed proxy_auth REQUIRED
http_access deny p_deny
http_access allow p_auth authed
http_access deny p_auth
http_access allow p_open
http_access deny all
"""


@pytest.fixture
def squid_world(lab, tmp_path):
    if shutil.which("squid") is None and not shutil.which("/usr/sbin/squid"):
        pytest.skip("squid is not installed (apt-get install squid)")
    world = World(lab, tmp_path)
    d = lab.tmp / "squid"  # squid drops to its own user: pytest's tmp_path (0700) is not readable
    d.mkdir()
    for parent in (lab.tmp, d):
        parent.chmod(0o755)
    hashed = subprocess.run(["openssl", "passwd", "-apr1", SECRET], capture_output=True, text=True,
                            check=True).stdout.strip()
    (d / "passwd").write_text(f"labuser:{hashed}\n")
    (d / "passwd").chmod(0o644)
    conf = d / "squid.conf"
    conf.write_text(SQUID_CONF.format(addr=PROXY, dir=d))
    lab.router_popen(["squid", "-N", "-f", str(conf)])
    for port in (3128, 3129, 3130):
        wait_port(lab.router_exec, PROXY, port)
    return world


def test_squid_open_auth_and_deny(squid_world):
    w, env = squid_world, {"no_proxy": "198.51.100.0/25"}
    out = w.check(env={**env, "https_proxy": f"http://{PROXY}:3128"})
    assert out.report["findings"] == [] and out.rc == 0, out.report["findings"]
    [p] = out.probe("proxy")["evidence"]["proxies"]
    assert p["connect"] == "ok" and p["tls"]["verdict"] == "ok" and p["targets"] == [
        "https://api.zoom.us/", "https://zoom.us/"]

    out = w.check(env={**env, "https_proxy": f"http://{PROXY}:3129"})
    assert finding(out, "proxy-auth-required")["evidence"]["status_code"] == 407 and out.rc == 2
    out = w.check(env={**env, "https_proxy": f"http://labuser:{SECRET}@{PROXY}:3129"})
    assert out.report["findings"] == [] and out.rc == 0, out.report["findings"]
    assert SECRET not in out.stdout

    out = w.check(env={**env, "https_proxy": f"http://{PROXY}:3130"})
    f = finding(out, "proxy-connect-denied")
    assert f["evidence"]["status_code"] == 403 and out.rc == 2
