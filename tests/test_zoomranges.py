"""Zoom's range loader (no network: the fetch is replaced) and the app-socket classifier."""

from __future__ import annotations

import json

import pytest

from roomprobe.host import appconns
from roomprobe.net import zoomranges

URL = "https://ranges.example.invalid/Zoom.txt"


def test_url_is_cached_with_its_date_and_reused(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(zoomranges, "_fetch_url", lambda url, t: calls.append(url) or "198.51.100.0/24\n")
    nets, info = zoomranges.load_source(URL, cache_dir=tmp_path, now=1000.0)
    assert info["ok"] and info["age_s"] == 0.0 and len(calls) == 1
    meta = next(tmp_path.glob("*.json"))
    assert json.loads(meta.read_text())["fetched_at"] == 1000.0
    assert not list(tmp_path.glob("*.tmp"))  # written atomically, no leftovers
    nets, info = zoomranges.load_source(URL, cache_dir=tmp_path, now=1000.0 + 3600)
    assert info["cached"] and info["age_s"] == 3600 and len(calls) == 1  # fresh: not refetched


def test_stale_cache_is_used_with_its_real_age_when_refresh_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(zoomranges, "_fetch_url", lambda url, t: "198.51.100.0/24\n")
    zoomranges.load_source(URL, cache_dir=tmp_path, now=0.0)

    def fail(url, t):
        raise OSError("network down")

    monkeypatch.setattr(zoomranges, "_fetch_url", fail)
    nets, info = zoomranges.load_source(URL, cache_dir=tmp_path, max_age_s=10, now=30 * 86400.0)
    assert info["ok"] and info["age_s"] == 30 * 86400 and "network down" in info["refresh_failed"]


def test_no_source_no_truth(tmp_path, monkeypatch):
    def fail(url, t):
        raise OSError("unreachable")

    monkeypatch.setattr(zoomranges, "_fetch_url", fail)
    r = zoomranges.load([URL], cache_dir=tmp_path)
    assert not r.loaded and "unreachable" in r.sources[0]["why"] and r.contains("198.51.100.1") is None
    assert not zoomranges.load(["http://x.invalid/Zoom.txt"]).loaded  # only https is trusted
    big = tmp_path / "big.txt"
    big.write_bytes(b"1.2.3.0/24\n" * (zoomranges.MAX_BYTES // 10))
    r = zoomranges.load([str(big)])
    assert not r.loaded and "larger than" in r.sources[0]["why"]
    page = tmp_path / "page.html"
    page.write_text("<html>blocked by policy</html>")
    assert zoomranges.load([str(page)]).sources[0]["why"] == "no CIDR in it"


def test_families_are_judged_separately(tmp_path):
    f = tmp_path / "Zoom.txt"
    f.write_text("198.51.100.0/24\n")
    r = zoomranges.load([str(f)])
    assert r.contains("198.51.100.7") is True and r.contains("192.0.2.1") is False
    assert r.contains("2001:db8::1") is None  # no IPv6 list: not "outside"


@pytest.mark.parametrize("conns,transport,meeting", [
    ([{"proto": "udp", "remote_port": 8801, "status": "NONE", "remote": "a:8801"}], "udp-8801", True),
    ([{"proto": "tcp", "remote_port": 8802, "status": "ESTABLISHED", "remote": "a:8802"}], "tcp-8801", True),
    ([{"proto": "tcp", "remote_port": 8801, "status": "SYN_SENT", "remote": "a:8801"},
      {"proto": "tcp", "remote_port": 443, "status": "ESTABLISHED", "remote": "a:443"}], "tls-443", None),
    ([], None, False),
])
def test_app_transport(conns, transport, meeting):
    got, in_meeting, why = appconns.classify(conns)
    assert (got, in_meeting) == (transport, meeting) and why


def test_app_not_running_is_said():
    snap = appconns.snapshot(("NoSuchZoomRoomsProcessX",))
    assert snap["running"] is False and "not running" in snap["why"]
