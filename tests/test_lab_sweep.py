"""roomprobe sweep over 210 lab addresses (listening, refused, dropped, absent), compared with nmap.

Every state is asserted per address against what the lab built, and against nmap's verdict on
the same list from the same namespace; the outputs (json, csv, Prometheus, html) are read back
with the tools their readers use (jsonschema, csv, promtool, an html parser, chromium if present).
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import jsonschema
import pytest
from sweeplab import agreement, build, states_of

WANT = {"open": "open", "refused": "refused", "dropped": "filtered", "absent": "unreachable"}
COUNTS = {"open": 80, "refused": 60, "dropped": 50, "absent": 20}
NAME = 'Board <img src=x onerror=alert(1)> "4.01"'


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    from lab import Lab, lab_unavailable_reason

    if (why := lab_unavailable_reason()) is not None:
        pytest.skip(why)
    if shutil.which("nmap") is None:
        pytest.skip("nmap is not installed (apt-get install nmap)")
    tmp = tmp_path_factory.mktemp("sweep")
    with Lab() as lab:
        sl = build(lab, COUNTS)
        addrs = sl.addresses()
        by_kind = {k: [a for a in addrs if sl.expected[a] == k] for k in COUNTS}
        inv = tmp / "rooms.csv"
        inv.write_text(
            "name,address,controller,port\n"
            # the first room's controller is off this subnet, the second's on it
            f'"{NAME.replace(chr(34), chr(34) * 2)}",{by_kind["open"][0]},198.51.100.30,\n'
            f"=HYPERLINK(1),{by_kind['open'][1]},{by_kind['open'][2]},9090\n"
            f"Dropped room,{by_kind['dropped'][0]},,\n")
        prom, page = tmp / "rooms.prom", tmp / "rooms.html"
        run = sl.scanner.roomprobe("sweep", str(inv), *addrs, "--format", "json",
                                   "--prometheus-textfile", str(prom), "--html", str(page), timeout=120)
        nmap_states, _ = sl.nmap(addrs)
        csv_run = sl.scanner.roomprobe("sweep", str(inv), "--format", "csv", timeout=60)
        yield {"sl": sl, "run": run, "data": json.loads(run.stdout), "nmap": nmap_states,
               "prom": prom.read_text(), "html": page.read_text(), "page": page, "csv": csv_run,
               "by_kind": by_kind}


def test_every_address_has_the_state_the_lab_built(swept):
    run, data, sl = swept["run"], swept["data"], swept["sl"]
    assert run.rc == 2, run.stderr  # the worst room is CRITICAL
    assert "Traceback" not in run.stderr
    got = states_of(data)
    assert set(got) == set(sl.expected)
    wrong = {a: (got[a], sl.expected[a]) for a in got if got[a] != WANT[sl.expected[a]]}
    assert not wrong, wrong
    assert data["summary"]["by_state"] == {WANT[k]: n for k, n in COUNTS.items()}
    assert data["summary"]["rooms"] == sum(COUNTS.values()) and data["summary"]["exit_code"] == 2


def test_states_agree_with_nmap(swept):
    same, diff = agreement(states_of(swept["data"]), swept["nmap"])
    assert not diff and same == sum(COUNTS.values())


def test_reports_are_v1_worst_first_with_the_likely_code(swept):
    from roomprobe.fleet.sweep import STATE_RANK, STATUS_RANK
    from roomprobe.report.build import load_schema, schema_validator

    rooms, schema = swept["data"]["rooms"], load_schema()
    for rep in rooms:
        jsonschema.validate(rep, schema)
    schema_validator("sweep-v1").validate(swept["data"])  # the whole output: its published schema
    keys = [(STATUS_RANK[r["status"]], STATE_RANK[r["sweep"]["state"]]) for r in rooms]
    assert keys == sorted(keys)
    assert rooms[0]["sweep"]["state"] == "unreachable" and rooms[-1]["status"] == "pass"
    for rep in rooms:
        state, code = rep["sweep"]["state"], rep["sweep"]["likely_code"]
        if state == "open":
            assert rep["probes"][0]["status"] == "pass" and rep["status"] in ("pass", "warn")
            assert (code is None) == (rep["status"] == "pass")
        else:
            assert rep["status"] == "fail" and code == "zoom-rooms:2002", rep["sweep"]
            fid = {"refused": "port-refused", "filtered": "port-filtered", "unreachable": "port-unreachable"}
            assert fid[state] in {f["id"] for f in rep["findings"]}
        if state == "unreachable":  # on this subnet: no ARP answer is measured, and named
            assert "peer-no-arp-reply" in {f["id"] for f in rep["findings"]}
        if state == "filtered":  # the room answered ARP: up, but 9090 dropped
            reach = next(p for p in rep["probes"] if p["id"] == "reachability")
            assert reach["status"] == "pass" and reach["evidence"]["arp"]["mac"]


def test_controller_path_is_reported_as_seen_from_here(swept):
    rooms = {r.get("room_name"): r for r in swept["data"]["rooms"]}
    off = rooms[NAME]
    path = next(p for p in off["probes"] if p["id"] == "controller-path")
    assert off["status"] == "warn" and path["status"] == "warn"  # 9090 open, controller elsewhere
    assert {f["id"] for f in off["findings"]} == {"peer-other-subnet"}
    assert "not measured from this host" in path["evidence"]["note"]
    on = rooms["=HYPERLINK(1)"]
    path = next(p for p in on["probes"] if p["id"] == "controller-path")
    assert on["status"] == "pass" and path["status"] == "skip"  # unmeasurable is never PASS
    assert path["evidence"]["controllers"][0]["answers_from_here"] is True
    assert path["evidence"]["controllers"][0]["same_subnet_as_room"] is True


def test_csv_is_worst_first_and_defuses_formulas(swept):
    r = swept["csv"]
    assert r.rc == 2, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [x["status"] for x in rows] == ["fail", "warn", "pass"]
    assert rows[0]["room"] == "Dropped room" and rows[0]["state"] == "filtered"
    assert rows[0]["likely_code"] == "zoom-rooms:2002"
    assert rows[2]["room"] == "'=HYPERLINK(1)"  # a spreadsheet shows it, never runs it
    assert rows[1]["room"] == NAME


def test_prometheus_textfile_has_one_room_label_per_room(swept):
    text = swept["prom"]
    if shutil.which("promtool"):
        chk = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                             text=True, timeout=30)
        assert chk.returncode == 0, chk.stdout + chk.stderr
    exits = re.findall(r'^roomprobe_exit_code\{(.*)\} (\S+)$', text, re.M)
    assert len(exits) == sum(COUNTS.values())
    targets = {re.search(r'target="([^"]+)"', lb).group(1): float(v) for lb, v in exits}
    sl = swept["sl"]
    want = {a: 0.0 if sl.expected[a] == "open" else 2.0 for a in sl.expected}
    want[swept["by_kind"]["open"][0]] = 1.0  # the named room whose controller is elsewhere: WARNING
    assert targets == want
    assert re.search(r'roomprobe_likely_code\{[^}]*code="2002"', text)


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.csp = self.script = None
        self.statuses: list[str] = []
        self.external: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "meta" and a.get("http-equiv") == "Content-Security-Policy":
            self.csp = a["content"]
        if tag == "tbody":
            self.statuses.append(a["data-status"])
        if tag == "script":
            self._in_script = True
        self.external += [v for k, v in attrs if k in ("src", "href") and v]

    def handle_endtag(self, tag):
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data):
        if self._in_script:
            self.script = data


def test_html_page_is_self_contained_sorted_and_escaped(swept):
    import base64
    import hashlib

    html = swept["html"]
    p = _Page()
    p.feed(html)
    assert len(p.statuses) == sum(COUNTS.values())  # inventory rooms are lab addresses too
    order = {"fail": 0, "unknown": 1, "warn": 2, "pass": 3}
    assert [order[s] for s in p.statuses] == sorted(order[s] for s in p.statuses)
    digest = base64.b64encode(hashlib.sha256(p.script.encode()).digest()).decode()
    assert p.csp and f"script-src 'sha256-{digest}'" in p.csp and "default-src 'none'" in p.csp
    assert p.external == []  # nothing fetched from anywhere
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert html.count("<details>") == len(p.statuses)


def test_html_page_renders_in_headless_chromium(swept, tmp_path):
    from lab import require_tool

    shot = tmp_path / "sweep.png"
    cmd = [require_tool("chromium", "chromium"), "--headless", "--no-sandbox", "--disable-gpu",
           "--window-size=1200,900", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(cmd + ["--dump-dom", f"file://{swept['page']}"], capture_output=True,
                         text=True, timeout=90)
    assert dom.stdout.count("<tbody") == sum(COUNTS.values()), dom.stderr[-500:]
    subprocess.run(cmd + [f"--screenshot={shot}", f"file://{swept['page']}"], capture_output=True,
                   timeout=90)
    assert shot.is_file() and shot.stat().st_size > 10_000
    assert "Refused to execute inline script" not in dom.stderr  # the CSP hash admits our script



def test_silence_is_judged_from_the_measured_round_trips(swept):
    """A dropped room is 'no answer' after two SYNs (one retransmission), each waiting what the
    answering rooms' round trips say (srtt + 4 x rttvar, within the floor and --timeout / 2),
    not the whole --timeout; the evidence says what the wait was based on."""
    dropped = set(swept["by_kind"]["dropped"])
    for rep in swept["data"]["rooms"]:
        if rep["targets"]["room"] not in dropped:
            continue
        ev = rep["probes"][0]["evidence"]
        assert ev["error"] == "timeout" and ev["tries"] == 2, ev
        assert ev["rtt_samples"] > 0 and ev["srtt_ms"] is not None, ev
        assert 0.25 <= ev["wait_s"] <= ev["timeout_s"] / 2, ev
        assert "no answer to 2 SYNs" in rep["probes"][0]["summary"]


MIXED_SMALL = {"open": 20, "refused": 15, "dropped": 15, "absent": 5, "rejected": 15,
               "slow-open": 10, "slow-refused": 10, "r-open": 15, "r-refused": 10, "r-dropped": 10,
               "r-absent": 5}
MIXED_WANT = {"open": "open", "refused": "refused", "dropped": "filtered", "absent": "unreachable",
              "rejected": "filtered", "slow-open": "open", "slow-refused": "refused",
              "r-open": "open", "r-refused": "refused", "r-dropped": "filtered"}


def test_mixed_list_routed_rate_limited_and_rejecting_rooms_agree_with_nmap():
    """The bench's mixed list, small: rooms behind a router over a slow link, behind a
    rate-limited link, rejecting with ICMP (which the kernel rate-limits): every state is the
    one the lab built and the one nmap finds."""
    from lab import Lab, lab_unavailable_reason

    if (why := lab_unavailable_reason()) is not None:
        pytest.skip(why)
    if shutil.which("nmap") is None:
        pytest.skip("nmap is not installed (apt-get install nmap)")
    with Lab() as lab:
        sl = build(lab, MIXED_SMALL)
        addrs = sl.addresses()
        run = sl.scanner.roomprobe("sweep", *addrs, "--format", "json", timeout=120)
        nmap_states, _ = sl.nmap(addrs)
    assert run.rc == 2 and "Traceback" not in run.stderr, run.stderr
    got = states_of(json.loads(run.stdout))
    # an absent routed room: the router's ARP gives up after seconds, its ICMP host-unreachable
    # is rate-limited: filtered (no answer) or unreachable (that ICMP), as nmap's "filtered"
    wrong = {a: (got[a], k) for a, k in sl.expected.items()
             if got[a] != MIXED_WANT.get(k, got[a] if got[a] in ("filtered", "unreachable") else "?")}
    assert not wrong, wrong
    same, diff = agreement(got, nmap_states)
    assert not diff, diff
