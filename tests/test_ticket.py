"""Ticket-ready reports: the evidence pack, ``roomprobe report`` in text, markdown and html.

Runs on the bare machine: the only check it runs targets 127.0.0.1 (nothing listens on the
port chosen, so the report has a failure, findings and a diagnosis to render). The Zoom Rooms
version parsers run on recorded outputs (tests/data/os).
"""

from __future__ import annotations

import json
import os
import plistlib
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import jsonschema
import pytest

from roomprobe.core.settings import CheckSettings
from roomprobe.host import evidence
from roomprobe.report.build import load_schema
from roomprobe.report.html import render_html
from roomprobe.report.markdown import render_markdown

DATA = Path(__file__).parent / "data" / "os"
HOSTILE_NOTE = '<script>alert(1)</script> | pipe `tick` **bold** & "q"\nsecond line'
HOSTILE_ROOM = "Board <img src=x> | 4.01"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "ROOMPROBE_CONFIG": os.devnull, "NO_COLOR": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "roomprobe", *args], capture_output=True,
                          text=True, timeout=60, env=full)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """A real report: a check against 127.0.0.1 on a port nothing listens on, with a hostile note."""
    path = tmp_path_factory.mktemp("rep") / "room.json"
    out = cli("check", "--room", "127.0.0.1", "--port", "9", "--code", "2002", "--only",
              "interfaces,controller-port", "--room-name", HOSTILE_ROOM, "--note", HOSTILE_NOTE,
              "--json", str(path), env={"TZ": "America/New_York"})
    assert out.returncode == 2, out.stderr
    return path


# ---- the evidence pack in the report --------------------------------------------------------

def test_report_carries_the_evidence_pack(saved):
    rep = json.loads(saved.read_text())
    jsonschema.validate(rep, load_schema())
    assert rep["room_name"] == HOSTILE_ROOM and rep["note"] == HOSTILE_NOTE
    assert rep["user_code"] == "2002"
    assert rep["zoom_rooms_app"] is None  # Linux: there is no Zoom Rooms app
    assert rep["timezone"]["name"] == "America/New_York"
    assert rep["timezone"]["utc_offset"] in ("-05:00", "-04:00")
    win = rep["window"]
    assert win["started_local"].endswith(rep["timezone"]["utc_offset"])
    assert win["started_utc"] == rep["started_at"]
    start = datetime.fromisoformat(win["started_local"])
    end = datetime.fromisoformat(win["ended_local"])
    assert start <= end and (end - start).total_seconds() <= rep["duration_s"] + 2
    assert datetime.fromisoformat(win["started_utc"].replace("Z", "+00:00")) == start


def test_room_name_from_config_file(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[check]\nroom_name = "Huddle 2"\nnote = "from config"\n')
    out = cli("check", "--room", "127.0.0.1", "--port", "9", "--only", "controller-port",
              "--format", "json", "--config", str(cfg))
    rep = json.loads(out.stdout)
    assert rep["room_name"] == "Huddle 2" and rep["note"] == "from config"
    assert rep["user_code"] is None


def test_time_window_and_zone_follow_tz(monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        winter = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)
        summer = datetime(2026, 7, 15, 12, 0, tzinfo=timezone.utc)
        assert evidence.local_timezone(winter) == {"name": "Europe/Berlin", "abbreviation": "CET",
                                                   "utc_offset": "+01:00"}
        assert evidence.local_timezone(summer)["utc_offset"] == "+02:00"
        win = evidence.time_window(winter.timestamp(), winter.timestamp() + 61)
        assert win == {"started_local": "2026-01-15T13:00:00+01:00",
                       "ended_local": "2026-01-15T13:01:01+01:00",
                       "started_utc": "2026-01-15T12:00:00Z", "ended_utc": "2026-01-15T12:01:01Z"}
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


# ---- Zoom Rooms app version parsers (recorded outputs) ----------------------------------------

def test_reg_query_finds_zoom_rooms_not_workplace_or_controller():
    text = (DATA / "reg_query_uninstall_zoom_rooms.txt").read_text()
    blocks = evidence.parse_reg_query(text)
    assert [b["_key"].rsplit("\\", 1)[1] for b in blocks] == [
        "{5F1B7A2E-0C1D-4B8E-9C41-6A2D3E4F5A6B}", "ZoomRoomsController", "ZoomRooms", "Components"]
    assert blocks[2]["InstallLocation"] == r"C:\Program Files\ZoomRooms"
    assert blocks[2]["(Default)"] == ""
    assert evidence.zoom_rooms_version_from_reg(text) == "6.2.5 (4578)"
    other = (DATA / "reg_query_uninstall_no_zoom_rooms.txt").read_text()
    assert evidence.zoom_rooms_version_from_reg(other) is None
    assert evidence.zoom_rooms_version_from_reg("") is None


def test_info_plist_xml_and_binary():
    xml = (DATA / "zoompresence_info.plist").read_bytes()
    assert evidence.zoom_rooms_version_from_plist(xml) == "6.2.5 (44160)"
    binary = plistlib.dumps({"CFBundleVersion": "6.2.44160"}, fmt=plistlib.FMT_BINARY)
    assert evidence.zoom_rooms_version_from_plist(binary) == "6.2.44160"
    assert evidence.zoom_rooms_version_from_plist(b"not a plist") is None
    assert evidence.zoom_rooms_version_from_plist(plistlib.dumps(["a list"])) is None


def test_powershell_file_version():
    text = (DATA / "powershell_productversion.txt").read_text()
    assert evidence.parse_file_version(text) == "6.2.5.4578"
    assert evidence.parse_file_version("\r\n") is None


def test_no_app_lookup_on_linux():
    if sys.platform.startswith("linux"):
        assert evidence.zoom_rooms_app() is None


# ---- roomprobe report FILE -------------------------------------------------------------------

def test_markdown_pastes_cleanly(saved):
    out = cli("report", str(saved), "--format", "markdown")
    assert out.returncode == 0, out.stderr
    md = out.stdout
    rep = json.loads(saved.read_text())
    assert md.startswith("## roomprobe: FAIL in Board \\<img src=x\\> \\| 4.01\n")
    from roomprobe.report.model import Report
    from roomprobe.report.text import verdict

    line = verdict(Report.from_dict(rep))
    assert f"**Verdict:** {line}" in md and "TCP 9" in line
    # every table row has exactly its columns: user text cannot add a cell
    for line in md.splitlines():
        if line.startswith("| ") and "Status" not in line:
            cells = re.split(r"(?<!\\)\|", line)[1:-1]
            assert len(cells) in (2, 4), line
    # the hostile note is escaped and on one line
    assert "\\<script\\>alert(1)\\</script\\> \\| pipe \\`tick\\` \\*\\*bold\\*\\*" in md
    assert "<script>" not in md and "\nsecond line" not in md
    # findings with what to do, the diagnosis with numbered fix steps, the evidence pack
    for f in rep["findings"]:
        assert f"`{f['id']}`" in md and f["hint"].split("(")[0].strip()[:30] in md
    first = rep["diagnosis"][0]
    assert f"**zoom-rooms {first['code']}: " in md and "(the code the user saw)" in md
    assert "1. " in md and "2. " in md
    assert "| Time zone | America/New\\_York (UTC" in md
    assert "| OS | Linux " in md
    assert "```json" in md and "</details>" in md


def test_html_is_self_contained_escaped_and_complete(saved, tmp_path):
    page = tmp_path / "room.html"
    out = cli("report", str(saved), "--format", "html", "--output", str(page))
    assert out.returncode == 0 and out.stdout == "", out.stderr
    html = page.read_text()
    rep = json.loads(saved.read_text())
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    # no external resources, no scripts: nothing to fetch, nothing to run
    assert not re.search(r"<(script|link|iframe|object|embed)\b", html, re.I)
    assert not re.search(r"<[^>]*\b(src|href)\s*=", html, re.I)
    assert "url(" not in html and "@import" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;img src=x&gt;" in html
    # verdict, fix steps, evidence
    assert "roomprobe FAIL: Board &lt;img src=x&gt; | 4.01" in html
    for step in rep["diagnosis"][0]["fix"]:
        assert f"<li>{step.replace(chr(39), '&#x27;')}</li>" in html
    for f in rep["findings"]:
        assert f["id"] in html
    assert "<th>Time zone</th><td>America/New_York (UTC" in html
    assert "<th>Zoom Rooms app</th><td>no Zoom Rooms app on Linux</td>" in html


def test_text_render_has_verdict_and_evidence_pack(saved):
    out = cli("report", str(saved))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("FAIL ")
    assert "Findings:" in out.stdout and "Evidence pack:" in out.stdout
    assert "Code the user saw  2002" in out.stdout


def test_an_older_report_without_the_pack_still_renders(saved, tmp_path):
    rep = json.loads(saved.read_text())
    for key in ("room_name", "note", "user_code", "zoom_rooms_app", "timezone", "window"):
        del rep[key]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(rep))
    from roomprobe.report.model import Report

    md = render_markdown(Report.from_dict(rep))
    assert "| Time zone | not recorded |" in md and "| Zoom Rooms app | not recorded |" in md
    assert "not recorded" in render_html(Report.from_dict(rep))
    assert cli("report", str(old), "--format", "html").returncode == 0


@pytest.mark.parametrize("content, words", [
    (b"this is not json", "is not JSON (Expecting value"),
    (b'{"hello": "world"}', "is not a roomprobe report (schema roomprobe/report/v1: top level: "
                           "'schema' is a required property"),
    (b"\xff\xfe\x00garbage", "is not UTF-8 text"),
    (b"[1, 2]", "is not a roomprobe report (schema"),
])
def test_not_a_report_is_one_line_exit_3(tmp_path, content, words):
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    out = cli("report", str(bad), "--format", "markdown")
    assert out.returncode == 3 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], out.stderr


def test_a_damaged_report_names_the_field(saved, tmp_path):
    rep = json.loads(saved.read_text())
    rep["probes"][0]["status"] = "exploded"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(rep))
    out = cli("report", str(bad))
    assert out.returncode == 3 and "probes/0/status" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_report_usage_errors(tmp_path, saved):
    for args, words in [
        (["report", str(tmp_path / "missing.json")], "cannot read"),
        (["report", str(saved), "--format", "pdf"], "'pdf' is not one of"),
        (["report", str(saved), "-o", str(tmp_path / "no" / "dir" / "x.html")], "cannot write"),
        (["report"], "Missing argument"),
    ]:
        out = cli(*args)
        assert out.returncode == 3, (args, out)
        assert len(out.stderr.strip().splitlines()) == 1 and words in out.stderr, out.stderr


def test_app_lookup_never_delays_or_breaks_the_report(monkeypatch):
    """A hung or crashing OS lookup leaves zoom_rooms_app null after at most one more second."""
    import threading

    from roomprobe.commands import check

    release = threading.Event()
    cases = {"hung": lambda: release.wait(30), "crash": lambda: 1 / 0,
             "found": lambda: {"version": "6.2.5 (4578)", "source": "registry HKLM"}}
    try:
        for name, fn in cases.items():
            monkeypatch.setattr(evidence, "zoom_rooms_app", fn)
            t0 = time.monotonic()
            pack = check._evidence_pack(CheckSettings(code="2002"), time.time(), check._app_lookup())
            assert time.monotonic() - t0 < 1.5, name
            expected = {"version": "6.2.5 (4578)", "source": "registry HKLM"} if name == "found" else None
            assert pack.zoom_rooms_app == expected, name
            assert pack.user_code == "2002"
    finally:
        release.set()


def test_note_is_redacted_like_everything_else():
    out = cli("check", "--room", "127.0.0.1", "--port", "9", "--only", "controller-port", "--format",
              "json", "--note", "proxy is http://alice:s3cret@proxy.corp:3128 since Monday")
    rep = json.loads(out.stdout)
    assert "s3cret" not in out.stdout and "alice" not in out.stdout
    assert rep["note"] == "proxy is http://***:***@proxy.corp:3128 since Monday"


@pytest.mark.parametrize("make, words", [
    (lambda p: p.write_text("[" * 100000 + "]" * 100000), "nested more than 64 levels"),
    (lambda p: p.write_text('{"a":' * 5000 + "1" + "}" * 5000), "nested more than 64 levels"),
    (lambda p: p.write_bytes(b" " * (32 * 1024 * 1024 + 10)), "larger than 32 MiB"),
    (lambda p: p.write_text("1" * 5000), "not usable JSON"),
])
def test_hostile_report_files_are_one_line(tmp_path, make, words):
    """Deep nesting was a RecursionError; a huge file or /dev/zero was read whole into memory."""
    bad = tmp_path / "bad.json"
    make(bad)
    out = cli("report", str(bad))
    assert out.returncode == 3 and out.stdout == "", out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], out.stderr


def test_dev_zero_report_is_bounded():
    """/dev/zero never ends: the reader stops at the cap (this would hang or eat memory before)."""
    import time

    t0 = time.monotonic()
    out = cli("report", "/dev/zero")
    assert out.returncode == 3 and "not a regular file" in out.stderr and "Traceback" not in out.stderr
    assert time.monotonic() - t0 < 20


# ---- a Wi-Fi name the OS withheld is explained, never shown as "no Wi-Fi" ------------------------

HIDDEN_NOTE = "SSID hidden by macOS (location permission)"


@pytest.fixture()
def hidden_ssid_report(saved, tmp_path) -> Path:
    """The saved report with a Wi-Fi interface whose SSID macOS withheld, plus one that has its SSID."""
    rep = json.loads(saved.read_text())
    rep["host"]["interfaces"] += [
        {"name": "en0", "kind": "wifi", "up": True, "mac": None, "ssid": None, "ssid_note": HIDDEN_NOTE,
         "addresses": [{"family": "ipv4", "address": "192.0.2.10", "prefixlen": 24}]},
        {"name": "en1", "kind": "wifi", "up": True, "mac": None, "ssid": "RoomNet", "addresses": []}]
    jsonschema.validate(rep, load_schema())
    path = tmp_path / "hidden.json"
    path.write_text(json.dumps(rep))
    return path


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_a_hidden_ssid_shows_its_note_in_every_ticket_format(hidden_ssid_report, fmt):
    out = cli("report", str(hidden_ssid_report), "--format", fmt)
    assert out.returncode == 0, out.stderr
    assert f"en0 (wifi, up, {HIDDEN_NOTE}): 192.0.2.10/24" in out.stdout
    quoted = "&quot;RoomNet&quot;" if fmt == "html" else '"RoomNet"'
    assert f"en1 (wifi, up, SSID {quoted})" in out.stdout


def test_a_hidden_ssid_is_named_in_the_check_text_output(hidden_ssid_report):
    from roomprobe.report.model import Report
    from roomprobe.report.text import render_text

    rep = json.loads(hidden_ssid_report.read_text())
    text = render_text(Report.from_dict(rep))
    assert f"en0 (Wi-Fi): {HIDDEN_NOTE}" in text and "en1 (Wi-Fi)" not in text
    rep["host"]["interfaces"] = [i for i in rep["host"]["interfaces"] if i["name"] != "en0"]
    assert HIDDEN_NOTE not in render_text(Report.from_dict(rep))


def test_a_schema_valid_object_where_text_is_usual_renders_in_every_format(saved, tmp_path):
    """diagnosis[].ruled_out[].cause as an object is schema-valid: text and markdown rendered
    it, the html renderer died (html.escape of a dict: an internal error, exit 3)."""
    rep = json.loads(saved.read_text())
    assert rep["diagnosis"], "the saved report should carry a diagnosis"
    rep["diagnosis"][0]["ruled_out"] = [{"cause": {"why": "<script>x</script>"}, "how": 7},
                                        {"cause": ["a", 1]}]
    rep["diagnosis"][0]["cause"] = {"nested": True}
    jsonschema.validate(rep, load_schema())
    js = tmp_path / "odd.json"
    js.write_text(json.dumps(rep))
    for fmt in ("text", "markdown", "html"):
        out = cli("report", str(js), "--format", fmt, "-v")
        assert out.returncode == 0 and "Traceback" not in out.stderr, (fmt, out.stderr)
        assert fmt == "text" or "<script>x" not in out.stdout, fmt  # a terminal may show it
    assert "&lt;script&gt;x" in cli("report", str(js), "--format", "html").stdout
