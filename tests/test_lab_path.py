"""The path probe and ``roomprobe path`` on a real five-router chain (tests/pathlab.py), run as
user ``nobody`` with no capabilities, each fault compared with ``mtr --report`` in the same run.

Each fault's test asserts what a naive reading gets wrong: loss called where a router only
rate-limits its answers, a silent hop called 100% loss, the loss or the MTU drop placed one hop
late, the destination blamed for a queue at the site's edge.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from lab import lab_unavailable_reason
from pathlab import HOP_ADDRS, ZOOM, PathLab

pytestmark = pytest.mark.lab


@pytest.fixture
def pl() -> Iterator[PathLab]:
    reason = lab_unavailable_reason()
    if reason:
        pytest.skip(reason)
    if shutil.which("mtr") is None:
        pytest.skip("mtr (mtr-tiny) is the reference: apt-get install mtr-tiny")
    with PathLab() as lab:
        yield lab


def run_path(pl: PathLab, *args: str) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """``roomprobe path ZOOM --format json`` as nobody: (exit code, report, the path evidence)."""
    from roomprobe.report.build import load_schema

    r = pl.roomprobe("path", ZOOM, "--format", "json", *args)
    assert r.stdout, r.stderr
    rep = json.loads(r.stdout)
    jsonschema.validate(rep, load_schema())
    return r.returncode, rep, rep["probes"][0]["evidence"]["paths"][0]


def addrs(path: dict[str, Any]) -> list[str | None]:
    return [(h["addresses"] or [None])[0] for h in path["hops"]]


def by_hop(mtr: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {row["hop"]: row for row in mtr}


def finding_ids(rep: dict[str, Any]) -> set[str]:
    return {f["id"] for f in rep["findings"]}


@pytest.mark.parametrize("method", ["udp", "tcp", "icmp"])
def test_clean_path_every_method_unprivileged_matches_mtr(pl: PathLab, method: str) -> None:
    rc, rep, path = run_path(pl, "-c", "10", "-i", "0.1", "--method", method)
    assert rc == 0 and rep["status"] == "pass", rep["findings"]
    assert path["method"] == method and path["reached_ttl"] == 6
    assert addrs(path) == HOP_ADDRS
    assert [h["zone"] for h in path["hops"]] == ["lan", "site", "edge", "provider", "zoom", "zoom"]
    mtr = by_hop(pl.mtr(10, "-i", "0.1"))
    for h in path["hops"]:
        assert mtr[h["ttl"]]["host"] == h["addresses"][0]
        assert abs(h["rtt_ms"]["median"] - mtr[h["ttl"]]["avg"]) < 2.0


@pytest.mark.parametrize("silent_hop", [False, True])
def test_check_runs_the_path_probe_within_its_deadline_as_nobody(pl: PathLab, silent_hop: bool) -> None:
    """Inside check's 5 s deadline, even when a silent hop makes every round wait its full wait:
    the probe plans only the rounds that fit, so the deadline never cuts the proof short."""
    from roomprobe.report.build import load_schema

    if silent_hop:
        pl.no_icmp("r2")
    r = pl.roomprobe("check", "--only", "path", "--set", f"path.targets={ZOOM}", "--format", "json")
    rep = json.loads(r.stdout)
    jsonschema.validate(rep, load_schema())
    probe = rep["probes"][0]
    assert probe["id"] == "path" and probe["status"] == "pass", probe
    assert probe["evidence"]["proof"][ZOOM]["hops"] == 6
    assert probe["duration_s"] < 5.0


def test_loss_beginning_at_the_provider_behind_a_rate_limiting_site_router(pl: PathLab) -> None:
    """Real loss from hop 4 (1 in 4, counted per TTL) and a rate limit at hop 2: a naive
    reading ("the first hop with loss") blames the site; the loss begins at the provider."""
    pl.ratelimit_icmp("r2")
    pl.drop_share_in("r4", 4)
    rc, rep, path = run_path(pl, "-c", "20", "-i", "0.1", "--no-mtu")
    mtr = by_hop(pl.mtr(20, "-i", "0.1"))
    hops = {h["ttl"]: h for h in path["hops"]}
    assert rc == 2 and "path-loss-provider" in finding_ids(rep)
    assert not finding_ids(rep) & {"path-loss-site", "path-loss-lan", "path-loss-edge"}
    loss = path["loss"]
    assert loss["begins"] == {"ttl": 4, "address": "198.51.100.2", "zone": "provider"}
    assert loss["last_clean"]["ttl"] == 3 and loss["last"]["address"] == ZOOM
    assert path["rate_limited"] == [2] and "rate-limits" in hops[2]["note"]
    assert mtr[2]["loss"] > 0  # mtr shows the rate limit as loss
    for ttl in (4, 5, 6):  # the fixed share: both tools within 2 percentage points
        assert hops[ttl]["loss_pct"] == pytest.approx(25.0, abs=2)
        assert abs(hops[ttl]["loss_pct"] - mtr[ttl]["loss"]) <= 2
    f = next(f for f in rep["findings"] if f["id"] == "path-loss-provider")
    isp = f["evidence"]["isp"]  # what the ISP asks for: both ends, every hop
    assert [h["address"] for h in isp["hops"]] == HOP_ADDRS
    assert isp["source"] == "10.23.1.10" and isp["destination"] == ZOOM and isp["rounds"] == 20


def test_random_loss_from_the_edge_matches_mtr_within_chance(pl: PathLab) -> None:
    """30% random drops at r3 (every packet from the room's side): loss begins at hop 3, and
    each hop's loss agrees with mtr's within four standard deviations of the difference."""
    import math

    pl.drop_random_in("r3", 30)
    n = 60
    rc, rep, path = run_path(pl, "-c", str(n), "-i", "0.05", "--no-mtu", "--wait", "0.3")
    mtr = by_hop(pl.mtr(n, "-i", "0.05"))
    assert path["loss"]["begins"]["ttl"] == 3 and "path-loss-edge" in finding_ids(rep)
    # Four standard deviations, not three: six hops are compared, and at three one run in a
    # hundred would differ somewhere by chance alone (both tools draw their own rounds).
    four_sd = 4 * math.sqrt(2 * 0.3 * 0.7 / n) * 100
    for h in path["hops"]:
        assert abs(h["loss_pct"] - mtr[h["ttl"]]["loss"]) <= four_sd, (h["ttl"], h["loss_pct"], mtr)
    assert path["hops"][0]["loss_pct"] == 0 and path["hops"][1]["loss_pct"] == 0


def test_rate_limited_hop_is_not_loss(pl: PathLab) -> None:
    pl.ratelimit_icmp("r3")
    rc, rep, path = run_path(pl, "-c", "20", "-i", "0.1", "--no-mtu")
    mtr = by_hop(pl.mtr(20, "-i", "0.1"))
    hop3 = path["hops"][2]
    assert hop3["loss_pct"] > 10 and "rate-limits" in hop3["note"] and path["rate_limited"] == [3]
    assert mtr[3]["loss"] > 10  # what a naive reading calls 'loss at the edge'
    assert rc == 0 and rep["status"] == "pass" and not rep["findings"], rep["findings"]
    assert path["loss"] is None and path["destination"]["loss_pct"] == 0


def test_silent_router_is_no_reply_not_loss(pl: PathLab) -> None:
    pl.no_icmp("r2")
    rc, rep, path = run_path(pl, "-c", "5", "-i", "0.1", "--no-mtu")
    mtr = pl.mtr(5, "-i", "0.1")
    assert rc == 0 and rep["status"] == "pass"
    assert path["silent"] == [2] and path["hops"][1]["note"] == "no reply" and path["loss"] is None
    assert addrs(path) == [HOP_ADDRS[0], None, *HOP_ADDRS[2:]]
    assert by_hop(mtr)[2]["host"] == "???" and by_hop(mtr)[2]["loss"] == 100  # what mtr shows


def test_queue_from_the_wan_uplink_is_named_at_the_edge(pl: PathLab) -> None:
    """A standing queue on r2's link to r3 (tbf + a cubic flow): delay begins at hop 3 (the
    first public hop, the edge) and persists; a naive reading blames the slow destination."""
    pl.queue("r2", rate="4mbit", buffer_ms=200)
    import time

    time.sleep(3)  # let cubic fill the buffer
    rc, rep, path = run_path(pl, "-c", "10", "-i", "0.2", "--no-mtu")
    assert "path-delay-edge" in finding_ids(rep), rep["findings"]
    assert "path-delay-zoom" not in finding_ids(rep) and "path-rtt-high" not in finding_ids(rep)
    d = path["delay"]
    assert d["begins"]["ttl"] == 3 and d["last_clean"]["ttl"] == 2 and d["added_ms"] >= 20
    meds = [h["rtt_ms"]["median"] for h in path["hops"]]
    assert meds[1] < 5 and min(meds[2:]) >= 20


def test_mtu_step_with_frag_needed_is_named_at_the_router_that_said_so(pl: PathLab) -> None:
    """r3's link towards the provider carries 1280 bytes: full-size probes expire AT r3 fine
    and get "fragmentation needed" from r3 from hop 4 on. A naive reading places it at hop 4."""
    pl.mtu_step("r3", 1280)
    rc, rep, path = run_path(pl, "-c", "3", "-i", "0.1")
    assert path["mtu"] == {"ttl": 3, "address": "192.0.2.2", "zone": "edge", "mtu": 1280,
                           "frag_needed": True}
    assert "path-mtu-reduced" in finding_ids(rep) and path["loss"] is None


def test_mtu_black_hole_without_frag_needed(pl: PathLab) -> None:
    """Same step, but r3 sends no "fragmentation needed": big probes vanish beyond hop 3 while
    small ones pass. A naive reading (no ICMP, no MTU problem) misses it."""
    pl.mtu_step("r3", 1280, frag_needed=False)
    rc, rep, path = run_path(pl, "-c", "3", "-i", "0.1")
    assert path["mtu"] is not None and path["mtu"]["ttl"] == 3 and not path["mtu"]["frag_needed"]
    assert "path-mtu-blackhole" in finding_ids(rep)
    assert path["destination"]["loss_pct"] == 0 and path["loss"] is None


def test_route_through_a_vxlan_tunnel_is_named_vpn(pl: PathLab) -> None:
    pl.vxlan_room()
    rc, rep, path = run_path(pl, "-c", "5", "-i", "0.1")
    mtr = by_hop(pl.mtr(5, "-i", "0.1"))
    assert addrs(path) == ["10.99.0.1", "198.51.100.2", "203.0.113.66", ZOOM]
    assert [mtr[h]["host"] for h in sorted(mtr)] == addrs(path)
    assert path["hops"][0]["zone"] == "vpn" and path["interface"] == "vx0"
    assert "path-via-vpn" in finding_ids(rep)
    assert path["local_mtu"] == 1450 and path["mtu"] is None  # the tunnel's own MTU is no black hole


def test_ctrl_c_ends_with_the_report_so_far(pl: PathLab) -> None:
    import signal
    import time

    proc = pl.roomprobe_popen("path", ZOOM, "-c", "0", "-i", "0.1", "--no-mtu", "--format", "json")
    time.sleep(3.0)  # the interpreter starts, then rounds run until interrupted
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    rep = json.loads(out)
    path = rep["probes"][0]["evidence"]["paths"][0]
    assert proc.returncode == 0 and rep["status"] == "pass", err
    assert path["rounds"] >= 3 and path["reached_ttl"] == 6 and addrs(path) == HOP_ADDRS


def test_both_directions_show_loss_only_on_the_way_back(pl: PathLab) -> None:
    """Loss only on the way back (r4 drops 1 in 5 packets coming from Zoom's side). Forward,
    every answer from beyond r4 crosses it too, so the forward trace alone shows loss from hop 5
    and would blame Zoom; the peer's trace back shows it begins at r4 (its hop 2) on the way back."""
    token = "path-back-token-1"
    pl.agent("zoom", ZOOM, token)
    pl.drop_share_in("r4", 5, towards_room=True)
    rc, rep, path = run_path(pl, "-c", "20", "-i", "0.1", "--no-mtu", "--back", ZOOM, "--peer-token", token)
    paths = rep["probes"][0]["evidence"]["paths"]
    assert len(paths) == 2, rep["findings"]
    back = paths[1]
    assert back.get("answered") is not False, rep["findings"]
    assert back["role"] == "back" and back["direction"] == "back" and back["address"] == "10.23.1.10"
    assert [(h["addresses"] or [None])[0] for h in back["hops"]] == [
        "203.0.113.1", "203.0.113.65", "198.51.100.1", "192.0.2.1", "10.23.2.1", "10.23.1.10"]
    assert back["loss"]["begins"]["ttl"] == 2 and back["loss"]["begins"]["address"] == "203.0.113.65"
    assert back["rounds"] == 10 and back["destination"]["loss_pct"] == 20.0
    # Forward, the answers from beyond r4 cross it on their way back: loss "begins" at hop 5 and a
    # one-way reading would blame Zoom; the trace back places it at r4.
    assert path["loss"]["begins"]["ttl"] == 5 and path["loss"]["zone"] == "zoom"
    assert any(f["message"].startswith("On the way back") for f in rep["findings"])
