"""Cloud, proxy and bandwidth ask one resolver (roomprobe.proxy.resolver) and so never disagree.

The lab cloud (tests/cloudlab.py) with direct HTTPS to it dropped by the router: the cloud probe
can only pass through the proxy, so a pass proves the route it took. The room's OS setting is
GNOME "automatic, no URL" (a stand-in ``gsettings`` on PATH), i.e. WPAD through the DNS search
domain, the way Zoom on a corporate desktop finds its proxy. The WPAD file branches on
``isInNet`` of the resolved target (the lab cloud's names resolve into 203.0.113.0/24 -> the
proxy; the controller's address does not -> DIRECT).

Then the 407 headline: a proxy demanding credentials is why the cloud's HTTPS fails, so the
diagnosis must name the proxy first, not "allow TCP 443 on the firewall".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import cloudlab
import pytest
from test_lab_proxy import HERE, SECRET, wait_line

pytestmark = pytest.mark.lab

PROXY = f"http://{cloudlab.PROXY}:8888"
WPAD_ADDR = "203.0.113.31"
CTRL = "198.51.100.30"
WPAD_PAC = """function FindProxyForURL(url, host) {
  if (isInNet(host, "203.0.113.0", "255.255.255.0")) return "PROXY PROXYADDR:8888";
  return "DIRECT";
}""".replace("PROXYADDR", cloudlab.PROXY)
GSETTINGS = """#!/bin/sh
# Stand-in for GNOME's gsettings: proxy mode "automatic" without a URL (= WPAD).
cat <<'EOF'
org.gnome.system.proxy autoconfig-url ''
org.gnome.system.proxy ignore-hosts ['localhost', '127.0.0.0/8', '::1']
org.gnome.system.proxy mode 'auto'
EOF
"""
WHO_DECIDES = """import json
from roomprobe.proxy import resolver as proxies
from roomprobe.peer import speed
print(json.dumps({u: [proxies.proxy_for(u), speed.system_proxy(u)] for u in
                  ("https://web.zoomlab.test/", "http://CTRL:9095/__down")}))
"""


def _block_direct_https(lab) -> None:
    lab.router_exec(["nft", "-f", "-"], input=(
        "table inet onlyproxy {\n chain i { type filter hook input priority 0; policy accept;\n"
        f"  iifname \"r-lan\" ip daddr {cloudlab.WEB} tcp dport 443 drop\n }}\n}}\n"))


def _proxy_options(cloud) -> str:
    ca = cloud.ca.cert_path
    return (f'\n[probes.proxy]\ntargets = ["https://web.zoomlab.test/"]\n'
            f'connect_target = "web.zoomlab.test:443"\ntls_host = "web.zoomlab.test"\n'
            f'ca_file = "{ca}"\npublic_ca_file = "{ca}"\nhostname_check = "off"\n')


def _check(room, cfg, *extra: str, env: dict[str, str] | None = None):
    out = room.roomprobe("check", "--only", "proxy,cloud", "--controller", CTRL, "--config", str(cfg),
                         "--format", "json", "--timeout", "8", *extra, env=env)
    assert out.rc in (0, 1, 2), out.stdout + out.stderr
    return out


def _gnome_auto(lab, room, tmp_path, files: dict[str, str], pac_url: str = "") -> dict[str, str]:
    """PAC/WPAD files served on WPAD_ADDR:80 and the room's desktop set to "automatic" (with
    ``pac_url``, or WPAD through the search domain); returns the env that makes it so."""
    lab.add_cloud_address(int(WPAD_ADDR.rsplit(".", 1)[1]))
    www = tmp_path / "www"
    www.mkdir()
    for name, text in files.items():
        (www / name).write_text(text)
    wait_line(lab.router_popen([sys.executable, str(HERE / "proxylab.py"), "http", WPAD_ADDR, "80", str(www)],
                               stdout=subprocess.PIPE, text=True))
    lab.etc_file(room, "hosts", cloudlab.hosts_text() + f"{WPAD_ADDR} wpad.lab.example\n")
    lab.etc_file(room, "resolv.conf", cloudlab.RESOLV_LOCAL + "search lab.example\n")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "gsettings").write_text(GSETTINGS.replace("autoconfig-url ''", f"autoconfig-url '{pac_url}'"))
    (fake / "gsettings").chmod(0o755)
    return {"PATH": f"{fake}:{os.environ.get('PATH', '/usr/bin:/bin')}"}


def test_cloud_proxy_and_bandwidth_agree_on_wpad(lab, tmp_path):
    cloud, room = cloudlab.build(lab, tmp_path)
    cloud.proxy()
    _block_direct_https(lab)
    env = _gnome_auto(lab, room, tmp_path, {"wpad.dat": WPAD_PAC})
    fake = tmp_path / "bin"
    cfg = cloud.config(extra=_proxy_options(cloud))

    out = _check(room, cfg, env=env)
    proxy = out.probe("proxy")
    ev = proxy["evidence"]
    gnome = next(s for s in ev["sources"] if s["name"] == "gnome")
    assert gnome["auto_detect"] is True and ev["wpad"]["found"] == "http://wpad.lab.example/wpad.dat", ev
    routes = {r["target"]: r for r in ev["routes"]}
    web = routes["https://web.zoomlab.test/"]
    assert (web["source"], web["via"], web["chain"]) == ("gnome", "wpad", [PROXY]), web  # isInNet: yes
    ctrl = routes[f"http://{CTRL}:9090/"]
    assert (ctrl["via"], ctrl["chain"]) == ("wpad", ["DIRECT"]), ctrl  # isInNet: no
    assert [p["proxy"] for p in ev["proxies"]] == [PROXY] and proxy["status"] == "pass", proxy

    cl = out.probe("cloud")
    for w in cl["evidence"]["web"]:  # direct 443 is dropped: a 200 can only have come through it
        assert w["proxy"] == PROXY and w["status"] == 200, w
    assert "cloud-https-blocked" not in out.finding_ids(), out.report["findings"]

    # The bandwidth probe's question (speed.system_proxy) gets the same answer, in the same room.
    code = WHO_DECIDES.replace("CTRL", CTRL)
    got = json.loads(room.run([sys.executable, "-c", code], env={**os.environ, **env}).stdout)
    assert got == {"https://web.zoomlab.test/": [PROXY, PROXY],
                   f"http://{CTRL}:9095/__down": [None, None]}, got

    # Control: the desktop set to "none" (no WPAD): everything goes direct, and direct is dropped.
    (fake / "gsettings").write_text(GSETTINGS.replace("mode 'auto'", "mode 'none'"))
    out = _check(room, cfg, env=env)
    assert out.probe("proxy")["evidence"]["wpad"] == {"mode": "auto"}
    assert {w["proxy"] for w in out.probe("cloud")["evidence"]["web"]} == {None}
    assert "cloud-https-blocked" in out.finding_ids() and out.rc == 2


def test_proxy_demanding_credentials_is_the_headline(lab, tmp_path):
    cloud, room = cloudlab.build(lab, tmp_path)
    _block_direct_https(lab)
    router = SimpleNamespace(ns=lab.router)  # the proxy resolves the lab names itself
    lab.etc_file(router, "hosts", cloudlab.hosts_text())
    lab.etc_file(router, "resolv.conf", cloudlab.RESOLV_LOCAL)
    conf = tmp_path / "tinyproxy-auth.conf"
    conf.write_text(f"Port 8888\nListen {cloudlab.PROXY}\nTimeout 10\nAllow 198.51.100.0/24\n"
                    f"ConnectPort 443\nMaxClients 20\nLogLevel Error\nBasicAuth labuser {SECRET}\n")
    conf.chmod(0o644)
    lab.router_popen(["tinyproxy", "-d", "-c", str(conf)])
    cloudlab.wait_port(lab, "t", 8888)
    cfg = cloud.config(extra=_proxy_options(cloud))

    out = _check(room, cfg, env={"https_proxy": PROXY, "no_proxy": "198.51.100.0/25"})
    assert {"proxy-auth-required", "cloud-https-blocked"} <= out.finding_ids(), out.report["findings"]
    assert {(w["phase"], w["proxy"]) for w in out.probe("cloud")["evidence"]["web"]} == {("proxy", PROXY)}
    first = out.report["diagnosis"][0]
    assert "proxy-auth-required" in first["because"], out.report["diagnosis"]
    assert "proxy" in first["cause"].lower() and "firewall is not the cause" in first["cause"], first
    assert first["fix"][0].startswith("Fix the proxy first"), first

    # With the credentials: both probes go through, and nothing blames the proxy or the firewall.
    good = f"http://labuser:{SECRET}@{cloudlab.PROXY}:8888"
    out = _check(room, cfg, env={"https_proxy": good, "no_proxy": "198.51.100.0/25"})
    assert {"proxy-auth-required", "cloud-https-blocked"}.isdisjoint(out.finding_ids()), out.report["findings"]
    assert out.probe("proxy")["status"] == "pass" and SECRET not in out.stdout


def test_https_walks_the_pac_fallback_chain(lab, tmp_path):
    """``PROXY dead; PROXY works; DIRECT``: the cloud's HTTPS tries the chain in order, as browsers
    do, and says which entry worked (tests/test_https_chain.py: what falls back and what not)."""
    cloud, room = cloudlab.build(lab, tmp_path)
    cloud.proxy()
    dead = f"{cloudlab.PROXY}:9"  # the proxy's address, a port where nothing listens
    chain = f"PROXY {dead}; PROXY {cloudlab.PROXY}:8888; DIRECT"
    env = _gnome_auto(lab, room, tmp_path, {
        "chain.pac": f'function FindProxyForURL(u, h) {{ return "{chain}"; }}',
        "direct.pac": f'function FindProxyForURL(u, h) {{ return "PROXY {dead}; DIRECT"; }}'},
        pac_url=f"http://{WPAD_ADDR}/chain.pac")
    _block_direct_https(lab)  # a pass can only come from the second entry
    out, web = _cloud_web(room, cloud, env)
    for w in web:
        assert w["ok"] and w["status"] == 200 and w["proxy"] == PROXY, w
        assert w["chain"] == [f"http://{dead}", PROXY, "DIRECT"], w
        assert [(t["proxy"], t["phase"], t["state"]) for t in w["tried"]] == [
            (f"http://{dead}", "connect", "refused")], w
    assert "cloud-https-blocked" not in out.finding_ids(), out.report["findings"]

    # "PROXY dead; DIRECT" with direct HTTPS dropped too: nothing works, and it says so.
    bin_gs = tmp_path / "bin" / "gsettings"
    bin_gs.write_text(bin_gs.read_text().replace("chain.pac", "direct.pac"))
    out, web = _cloud_web(room, cloud, env)
    for w in web:
        assert not w["ok"] and w["proxy"] is None and w["phase"] == "connect", w
        assert [t["proxy"] for t in w["tried"]] == [f"http://{dead}"], w
    assert "cloud-https-blocked" in out.finding_ids() and out.rc == 2
    # ... and with direct allowed again, DIRECT (the last entry) is the one that works.
    lab.router_exec(["nft", "delete", "table", "inet", "onlyproxy"])
    out, web = _cloud_web(room, cloud, env)
    for w in web:
        assert w["ok"] and w["proxy"] is None and w["chain"] == [f"http://{dead}", "DIRECT"], w


def _cloud_web(room, cloud, env):
    out = room.roomprobe("check", "--only", "cloud", "--config", str(cloud.config()), "--format", "json",
                         "--timeout", "8", env=env)
    assert out.rc in (0, 1, 2), out.stdout + out.stderr
    return out, out.probe("cloud")["evidence"]["web"]
