"""Proxy sources and routing, on sample outputs of reg query, netsh, scutil and gsettings.

gsettings_none.txt was captured on this project's Debian machine; the Windows and macOS samples
follow those tools' published output formats (with and without proxies).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from roomprobe.proxy.sources import Source, route, safe_url
from roomprobe.proxy.sources import env as envsrc
from roomprobe.proxy.sources.bypass import bypassed, split_list
from roomprobe.proxy.sources.checks import classify_answer, split_proxy
from roomprobe.proxy.sources.gnome import parse_gsettings
from roomprobe.proxy.sources.macos import parse_scutil
from roomprobe.proxy.sources.pac import PacCache, PacError, wpad_urls
from roomprobe.proxy.sources.windows import (
    parse_netsh_winhttp,
    parse_reg_query,
    parse_winhttp_blob,
    wininet_source,
)

DATA = Path(__file__).parent / "data" / "proxy"


def data(name: str) -> str:
    return (DATA / name).read_text()


def test_wininet_with_proxy_pac_and_override():
    values = parse_reg_query(data("reg_internet_settings_proxy.txt"))
    assert values["User Agent"] == "Mozilla/4.0 (compatible; MSIE 8.0; Win32)"
    src = wininet_source(values, parse_reg_query(data("reg_connections_autodetect.txt")))
    assert src.proxies == {"http": "http://proxy.corp.example:8080",
                           "https": "http://proxy.corp.example:8443",
                           "socks": "socks://socks.corp.example:1080"}
    assert src.bypass == ["*.corp.example", "10.*", "192.168.0.0/16", "<local>"]
    assert src.pac_url == "http://pac.corp.example/proxy.pac"
    assert src.auto_detect is True  # flags 0x09 in DefaultConnectionSettings
    assert src.active


def test_wininet_disabled_proxy_is_not_used():
    src = wininet_source(parse_reg_query(data("reg_internet_settings_noproxy.txt")))
    assert src.proxies == {} and src.pac_url is None and not src.auto_detect and not src.active


def test_netsh_winhttp_direct_and_proxy():
    direct = parse_netsh_winhttp(data("netsh_winhttp_direct.txt"))
    assert not direct.active and direct.error is None
    prox = parse_netsh_winhttp(data("netsh_winhttp_proxy.txt"))
    assert prox.proxies == {"all": "http://127.0.0.1:8888"}
    assert prox.bypass == ["<local>", "*.corp.example"]
    assert parse_netsh_winhttp("Fehler: unbekannt").error


def test_winhttp_registry_blob_matches_netsh():
    blob = parse_reg_query(data("reg_winhttpsettings_proxy.txt"))["WinHttpSettings"]
    src = parse_winhttp_blob(blob)
    netsh = parse_netsh_winhttp(data("netsh_winhttp_proxy.txt"))
    assert (src.proxies, src.bypass) == (netsh.proxies, netsh.bypass)
    assert not parse_winhttp_blob("1800000000000000010000000000000000000000").active


def test_scutil_none_and_manual():
    none = parse_scutil(data("scutil_proxy_none.txt"))
    assert not none.active and none.bypass == ["*.local", "169.254/16"]
    man = parse_scutil(data("scutil_proxy_manual.txt"))
    assert man.proxies == {"http": "http://127.0.0.1:3128", "https": "http://127.0.0.1:3128"}
    assert man.pac_url == "http://wpad.corp.example/proxy.pac" and man.auto_detect
    assert "10.20.0.0/16" in man.bypass


def test_gsettings_none_and_manual():
    assert not parse_gsettings(data("gsettings_none.txt")).active
    man = parse_gsettings(data("gsettings_manual.txt"))
    assert man.proxies == {"http": "http://alice:hunter2@proxy.corp.example:3128",
                           "https": "http://proxy.corp.example:3129"}
    assert "10.0.0.0/8" in man.bypass
    auto = parse_gsettings(data("gsettings_none.txt").replace("'none'", "'auto'"))
    assert auto.auto_detect and auto.pac_url is None


def test_env_lowercase_wins_and_no_proxy():
    src = envsrc.read({"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:2",
                       "HTTP_PROXY": "proxy:3", "NO_PROXY": "10.0.0.0/8, .corp.example"})
    assert src.proxies == {"https": "http://lower:2", "http": "http://proxy:3"}
    assert src.bypass == ["10.0.0.0/8", ".corp.example"]
    assert not envsrc.read({"PATH": "/bin"}).active


@pytest.mark.parametrize(("host", "entries", "expected"), [
    ("10.1.2.3", ["10.0.0.0/8"], True),  # CIDR: urllib ignores this one
    ("169.254.10.1", ["169.254/16"], True),  # macOS short form
    ("10.9.9.9", ["10.*"], True),
    ("11.9.9.9", ["10.*"], False),
    ("room.corp.example", ["*.corp.example"], True),
    ("corp.example", [".corp.example"], True),
    ("evilcorp.example", ["corp.example"], False),
    ("controller", ["<local>"], True),
    ("controller.corp", ["<local>"], False),
    ("zoom.us", ["*"], True),
    ("::1", ["::1/128"], True),
    ("198.51.100.30", split_list("localhost;198.51.100.0/25"), True),
])
def test_bypass(host, entries, expected):
    assert bypassed(host, entries) is expected


def test_route_fixed_bypass_and_pac(tmp_path):
    src = Source("env", "environment", proxies={"https": "http://p:1"}, bypass=["10.0.0.0/8"])
    assert route(src, "https://zoom.us/").proxy == "http://p:1"
    assert route(src, "http://zoom.us/").via == "direct"
    assert route(src, "https://10.0.0.5/").via == "bypass"
    pac = tmp_path / "p.pac"
    pac.write_text('function FindProxyForURL(url, host) { if (dnsDomainIs(host, "zoom.us")) '
                   'return "PROXY gw:8080; DIRECT"; return "DIRECT"; }')
    # The routing is under test, not the PAC child's start-up: a busy CI machine (two suites side
    # by side) took over a second to start it, which a 1 s budget turned into 'pac-error'.
    cache = PacCache(lambda: 10.0)
    psrc = Source("pac", "option", pac_url=str(pac))
    r = route(psrc, "https://api.zoom.us/", cache)
    assert (r.proxy, r.via) == ("http://gw:8080", "pac")
    assert route(psrc, "http://10.0.0.5/", cache).proxy is None
    bad = tmp_path / "bad.pac"
    bad.write_text("function nope() {}")
    r = route(Source("pac", "option", pac_url=str(bad)), "https://zoom.us/", cache)
    assert r.via == "pac-error" and "malformed" in (r.error or "")
    with pytest.raises(PacError):
        cache.script(str(tmp_path / "missing.pac"))


def test_wpad_candidates():
    assert wpad_urls("room.site.corp.example") == [
        "http://wpad.room.site.corp.example/wpad.dat", "http://wpad.site.corp.example/wpad.dat",
        "http://wpad.corp.example/wpad.dat"]
    assert wpad_urls("example") == []


@pytest.mark.parametrize(("head", "kind", "code"), [
    (b"HTTP/1.1 200 Connection established\r\n\r\n", "ok", 200),
    (b"HTTP/1.0 407 Proxy Authentication Required\r\n\r\n", "auth-required", 407),
    (b"HTTP/1.0 401 Unauthorized\r\n\r\n", "auth-required", 401),
    (b"HTTP/1.0 403 Access violation\r\n\r\n", "forbidden", 403),
    (b"HTTP/1.1 502 Bad Gateway\r\n\r\n", "refused-other", 502),
    (b"SSH-2.0-OpenSSH_9.2\r\n", "garbage", None),
    (b"", "closed", None),
])
def test_classify_connect_answer(head, kind, code):
    assert classify_answer(head) == (kind, code)


def test_credentials_are_split_and_stripped():
    assert split_proxy("http://al%40ice:p%3Ass@gw:3128") == ("http", "gw", 3128, "al@ice:p:ss")
    assert split_proxy("gw") == ("http", "gw", 8080, None)
    assert safe_url("http://u:secret@gw:3128/") == "http://gw:3128/"
    assert "secret" not in str(Source("env", "e", proxies={"http": "http://u:secret@gw:1"}).to_evidence())


def test_proxy_for_uses_env_with_cidr_bypass(monkeypatch):
    from roomprobe.proxy import resolver as proxies

    for k in [k for k in __import__("os").environ if k.lower().endswith("_proxy")]:
        monkeypatch.delenv(k)
    # The environment alone (this machine's desktop settings are not part of the test).
    monkeypatch.setattr(proxies, "system_sources", lambda: [envsrc.read()])
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    assert proxies.proxy_for("https://zoom.us/") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://gw:3128")
    monkeypatch.setenv("no_proxy", "198.51.100.0/25")
    assert proxies.proxy_for("https://zoom.us/") == "http://gw:3128"
    assert proxies.proxy_for("https://198.51.100.30:9090/") is None
    assert proxies.proxy_for("http://zoom.us/") is None


@pytest.mark.parametrize(("host", "port", "entries", "expected"), [
    ("zoom.us", 443, ["zoom.us:443"], True),
    ("zoom.us", 443, ["zoom.us:8443"], False),  # a port entry matches only that port
    ("api.zoom.us", 443, [".zoom.us"], True),
    ("ZOOM.US.", 443, ["zoom.us"], True),  # case and trailing dot
    ("notzoom.us", 443, ["zoom.us"], False),
    ("::1", 80, ["[::1]:80"], True),
    ("10.1.2.3", 443, [" 10.0.0.0/8 "], True),
])
def test_bypass_curl_semantics(host, port, entries, expected):
    assert bypassed(host, entries, port) is expected


@pytest.mark.parametrize(("value", "ok"), [
    ("http://127.0.0.1:abc", False), ("http://[::1", False), ("ftp://gw:21", False), ("http://:3128", False),
    ("\xc2\x97", False), ("http://gw:3128", True), ("socks5://gw:1080", True), ("gw:3128", True),
])
def test_proxy_problem_never_raises(value, ok):
    from roomprobe.proxy.sources import proxy_problem

    assert (proxy_problem(value) is None) is ok


def test_bad_env_proxy_is_a_route_not_a_crash(monkeypatch):
    from roomprobe.net import httpsprobe
    from roomprobe.proxy import resolver as proxies

    monkeypatch.setenv("https_proxy", "http://127.0.0.1:abc")
    monkeypatch.setattr(proxies, "system_sources", lambda: [envsrc.read()])
    proxies.reset()
    r = proxies.route_for("https://zoom.us/")
    assert r.via == "invalid" and "https_proxy" in (r.error or "")
    assert proxies.proxy_for("https://zoom.us/") is None
    # returns before any packet
    out = httpsprobe.fetch("https://zoom.us/", route_of=proxies.route_for, timeout=1.0)
    assert (out["phase"], out["state"], out["ok"]) == ("proxy", "bad-setting", False)
    proxies.reset()


def test_wpad_answers_proxy_for_an_auto_detect_source(monkeypatch, tmp_path):
    """cloud/bandwidth (proxy_for) and the proxy probe take the WPAD proxy for auto-detect sources."""
    from roomprobe.proxy import resolver as proxies

    wpad = tmp_path / "wpad.dat"
    wpad.write_text('function FindProxyForURL(u, h) { return "PROXY gw:3128; DIRECT"; }')
    for k in [k for k in __import__("os").environ if k.lower().endswith("_proxy")]:
        monkeypatch.delenv(k)
    auto = Source("wininet", "HKCU", auto_detect=True)
    monkeypatch.setattr(proxies, "system_sources", lambda: [envsrc.read(), auto])
    res = proxies.Resolver(wpad_url=str(wpad))
    r = res.route_for("https://zoom.us/")
    assert (r.proxy, r.via, r.chain) == ("http://gw:3128", "wpad", ["http://gw:3128", None])
    assert res.wpad_info()["found"] == str(wpad)


def test_pac_child_is_killed_and_limits_hold(tmp_path):
    import time

    from roomprobe.proxy.sources import pac

    loop = tmp_path / "loop.pac"
    loop.write_text("function FindProxyForURL(u, h) { while (true) {} }")
    cache = PacCache(lambda: 1.0)
    t0 = time.monotonic()
    with pytest.raises(PacError, match="did not finish"):
        cache("file://" + str(loop), "https://192.0.2.1/")
    assert time.monotonic() - t0 < 3
    assert pac.parse_entries("PROXY a:1; SOCKS b:2;  HTTPS c:3; junk; DIRECT") == [
        "http://a:1", "socks5://b:2", "https://c:3", "DIRECT"]
    assert pac.parse_entries("") == ["DIRECT"]
