"""Scheduler files for every OS: rendered, parsed, verified; install/status/remove into a temp dir.

Nothing here touches the real scheduler: every CLI call passes --dir (files only).
"""

from __future__ import annotations

import json
import os
import plistlib
import random
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from roomprobe.core.errors import UsageError
from roomprobe.fleet import schedule as sch

TASK_NS = "{http://schemas.microsoft.com/windows/2004/02/mit/task}"
ARGS = ["--controller", "198.51.100.5", "--note", "100% \"quoted\" $HOME & <tags>"]


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update({"ROOMPROBE_CONFIG": os.devnull, "NO_COLOR": "1"})
    env.pop("ROOMPROBE_SCHEDULE_DIR", None)
    return subprocess.run([sys.executable, "-m", "roomprobe", *args], capture_output=True, text=True,
                          timeout=60, env=env)


def spec(platform: str, every: str = "15m", splay: str | None = None, seed: int = 1, **kw) -> sch.Spec:
    return sch.make_spec(platform, every, splay, list(ARGS), exe=[sys.executable, "-m", "roomprobe"],
                         rng=random.Random(seed), **kw)


def test_splay_offsets_differ_per_machine_and_stay_in_the_interval():
    offsets = {spec("linux", seed=s).offset_s for s in range(50)}
    assert len(offsets) > 40 and all(0 <= o < 900 for o in offsets)
    assert spec("linux").splay_s == 300 and spec("linux", every="5m").splay_s == 150
    with pytest.raises(UsageError, match="shorter than --every"):
        spec("linux", every="10m", splay="10m")
    for bad in ("0m", "25h", "fast"):
        with pytest.raises(UsageError):
            spec("linux", every=bad)


def _systemd_sections(text: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    cur = None
    for line in text.splitlines():
        if line.startswith("[") and line.endswith("]"):
            cur = out.setdefault(line[1:-1], {})
        elif line and not line.startswith("#") and cur is not None:
            key, _, value = line.partition("=")
            cur[key] = value
    return out


def test_systemd_units_render_and_verify(tmp_path):
    s = spec("linux", run_as="daemon")
    files = sch.render(s)
    svc = _systemd_sections(files["roomprobe-check.service"])
    tmr = _systemd_sections(files["roomprobe-check.timer"])
    assert svc["Service"]["Type"] == "oneshot" and svc["Service"]["User"] == "daemon"
    assert svc["Service"]["SuccessExitStatus"] == "1 2"
    assert tmr["Timer"]["OnUnitActiveSec"] == "900s" and tmr["Timer"]["RandomizedDelaySec"] == "300s"
    assert tmr["Timer"]["OnBootSec"] == f"{60 + s.offset_s}s"
    # ExecStart quoting: systemd must not expand % or $, and the spaced argument stays one word.
    assert '"100%% \\"quoted\\" $$HOME & <tags>"' in svc["Service"]["ExecStart"]
    assert sch.read_meta(files["roomprobe-check.timer"])["command"][-1] == ARGS[-1]
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed; the render and parse checks above ran")
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    out = subprocess.run(["systemd-analyze", "verify", "--man=no", "roomprobe-check.service",
                          "roomprobe-check.timer"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    # verify exits 0 on directives it ignores, so any message about our units is a failure here
    # (it also lints unrelated units installed on the machine, e.g. Debian's irtt.service: not ours).
    ours = [ln for ln in out.stderr.splitlines() if "roomprobe" in ln or str(tmp_path) in ln]
    assert out.returncode == 0 and ours == [], out.stderr


def test_systemd_verify_catches_a_broken_unit(tmp_path):
    """The check above can fail: a mangled timer is reported."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    files = sch.render(spec("linux"))
    for name, text in files.items():
        (tmp_path / name).write_text(text.replace("OnUnitActiveSec=900s", "OnUnitActiveSec=soon"))
    out = subprocess.run(["systemd-analyze", "verify", "--man=no", "roomprobe-check.timer"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert "Failed to parse" in out.stderr


def test_windows_task_xml_is_valid_utf16_with_repetition_and_random_delay():
    s = spec("windows", every="1h", splay="10m")
    text = sch.render(s)["roomprobe-check.xml"]
    root = ET.fromstring(text.encode("utf-16"))  # as written to disk, UTF-16 as declared
    trig = root.find(f"{TASK_NS}Triggers/{TASK_NS}TimeTrigger")
    assert trig.find(f"{TASK_NS}Repetition/{TASK_NS}Interval").text == "PT1H"
    assert trig.find(f"{TASK_NS}RandomDelay").text == "PT10M"
    start = trig.find(f"{TASK_NS}StartBoundary").text
    assert start.startswith("2026-01-01T") and s.offset_s < 3600
    assert root.find(f"{TASK_NS}Principals/{TASK_NS}Principal/{TASK_NS}UserId").text == "S-1-5-18"
    exe = root.find(f"{TASK_NS}Actions/{TASK_NS}Exec")
    assert exe.find(f"{TASK_NS}Command").text == sys.executable
    args = exe.find(f"{TASK_NS}Arguments").text
    assert args.startswith("-m roomprobe check --no-bandwidth --controller 198.51.100.5 --note ")
    assert '"100% \\"quoted\\" $HOME & <tags>"' in args  # CommandLineToArgvW quoting
    assert sch.read_meta(text)["command"][-1] == ARGS[-1]  # the comment survived "--" in args
    user = ET.fromstring(sch.render(spec("windows", run_as="ROOM\\zoom"))["roomprobe-check.xml"].encode("utf-16"))
    assert user.find(f"{TASK_NS}Principals/{TASK_NS}Principal/{TASK_NS}LogonType").text == "InteractiveToken"


@pytest.mark.parametrize("every, key", [("15m", "StartCalendarInterval"), ("2h", "StartCalendarInterval"),
                                        ("7m", "StartInterval")])
def test_launchd_plist_parses_with_a_per_machine_calendar(every, key):
    s = spec("macos", every=every, run_as="zoom")
    plist = plistlib.loads(sch.render(s)["com.roomprobe.check.plist"].encode())
    assert plist["Label"] == "com.roomprobe.check" and plist["UserName"] == "zoom"
    assert plist["ProgramArguments"] == [sys.executable, "-m", "roomprobe", "check", "--no-bandwidth", *ARGS]
    assert key in plist
    if every == "15m":
        minutes = sorted(d["Minute"] for d in plist[key])
        assert len(minutes) == 4 and all(b - a == 15 for a, b in zip(minutes, minutes[1:], strict=False))
        assert minutes[0] == (s.offset_s // 60) % 15
    elif every == "2h":
        assert len(plist[key]) == 12
    else:
        assert plist[key] == 420


def test_install_status_remove_in_a_directory(tmp_path):
    d = tmp_path / "units"
    out = cli("schedule", "install", "--dir", str(d), "--every", "30m", "--splay", "2m",
              "--args", "--only interfaces --timeout 3")
    assert out.returncode == 0, out.stderr
    assert "not activated" in out.stdout
    assert sorted(p.name for p in d.iterdir()) == ["roomprobe-check.service", "roomprobe-check.timer"]
    st = json.loads(cli("schedule", "status", "--dir", str(d), "--format", "json",
                        "--history-db", str(tmp_path / "none.sqlite3")).stdout)
    assert st["installed"] is True and st["scheduler"] is None and st["last_run"] is None
    assert st["schedule"]["every_s"] == 1800 and st["schedule"]["splay_s"] == 120
    assert st["schedule"]["command"][-5:] == ["check", "--only", "interfaces", "--timeout", "3"]
    out = cli("schedule", "remove", "--dir", str(d))
    assert out.returncode == 0 and list(d.iterdir()) == []
    st = json.loads(cli("schedule", "status", "--dir", str(d), "--format", "json").stdout)
    assert st["installed"] is False
    # Windows and macOS files render from Linux too (for a fleet image), UTF-16 for the task.
    assert cli("schedule", "install", "--platform", "windows", "--dir", str(d)).returncode == 0
    assert (d / "roomprobe-check.xml").read_bytes()[:2] == b"\xff\xfe"
    st = json.loads(cli("schedule", "status", "--platform", "windows", "--dir", str(d), "--format", "json").stdout)
    assert st["installed"] is True and st["schedule"]["every_s"] == 900


def test_the_scheduled_command_actually_runs(tmp_path):
    """Run the exact argv the unit would run (ExecStart), and see it land in the history."""
    d, db = tmp_path / "units", tmp_path / "h.sqlite3"
    assert cli("schedule", "install", "--dir", str(d), "--args",
               f"--only interfaces --history-db {db}").returncode == 0
    meta = sch.read_meta((d / "roomprobe-check.service").read_text())
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    run = subprocess.run(meta["command"], capture_output=True, text=True, timeout=60, env=env)
    assert run.returncode == 0, run.stderr
    st = json.loads(cli("schedule", "status", "--dir", str(d), "--format", "json", "--history-db", str(db)).stdout)
    assert st["last_run"]["status"] == "pass"


@pytest.mark.parametrize("args, words", [
    (["--every", "5s"], "choose between 1m and 24h"),
    (["--every", "often"], "give a duration like 15m"),
    (["--args", "--bogus-flag"], "--args: No such option '--bogus-flag'; see"),
    (["--args", "--only 'unterminated"], "No closing quotation"),
])
def test_bad_install_input_is_one_line_exit_3(tmp_path, args, words):
    out = cli("schedule", "install", "--dir", str(tmp_path), *args)
    assert out.returncode == 3 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert words in out.stderr and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, quick", [
    ([], True), (["--controller", "10.0.0.5"], True), (["--bandwidth"], False),
    (["--peer", "10.0.0.20"], False), (["--only", "dns"], False), (["--no-bandwidth"], False)])
def test_scheduled_checks_skip_the_link_saturating_bandwidth_test_unless_asked(args, quick):
    spec = sch.make_spec("linux", "15m", None, list(args), exe=["roomprobe"])
    assert spec.command[:2] == ["roomprobe", "check"] and spec.command[-len(args) or len(spec.command):] == args
    assert (len(spec.command) == len(args) + 3 and spec.command[2] == "--no-bandwidth") == quick
    assert spec.command.count("--no-bandwidth") <= 1


def _task(s: sch.Spec) -> ET.Element:
    return ET.fromstring(sch.render(s)["roomprobe-check.xml"].encode("utf-16"))


def test_a_run_as_task_is_hidden_and_a_system_task_is_not():
    hidden = _task(spec("windows", run_as="ROOM\\zoom")).find(f"{TASK_NS}Settings/{TASK_NS}Hidden")
    assert hidden is not None and hidden.text == "true"
    assert _task(spec("windows")).find(f"{TASK_NS}Settings/{TASK_NS}Hidden").text == "false"


def test_launchd_logs_go_to_the_logs_folders_never_tmp():
    assert sch.launchd_log(daemon=True) == "/Library/Logs/roomprobe/roomprobe-check.log"
    agent_log = sch.launchd_log(daemon=False, home="/Users/zoom")
    assert agent_log == "/Users/zoom/Library/Logs/roomprobe/roomprobe-check.log"
    plist = plistlib.loads(sch.render(spec("macos"))["com.roomprobe.check.plist"].encode())
    assert plist["StandardOutPath"] == plist["StandardErrorPath"] == "/Library/Logs/roomprobe/roomprobe-check.log"
    agent = sch.make_spec("macos", "15m", None, [], exe=["roomprobe"], log=sch.launchd_log(False, "/Users/z"))
    plist = plistlib.loads(sch.render(agent)["com.roomprobe.check.plist"].encode())
    assert plist["StandardOutPath"].startswith("/Users/z/Library/Logs/roomprobe/")
    for platform in sch.PLATFORMS:  # (a fixed exe: the checkout itself may live under /tmp)
        fixed = sch.make_spec(platform, "15m", None, [], exe=["roomprobe"])
        assert all("/tmp" not in text for text in sch.render(fixed).values())


HOOK = "https://hooks.example.com/services/T000/B000/XXXXsecretXXXX"


@pytest.mark.parametrize("args, secret", [
    ([], False), (["--webhook", HOOK], True), ([f"--webhook={HOOK}"], True),
    (["--peer", "10.0.0.20", "--peer-token", "s3cret"], True),
    (["--note", "see https://user:pw@wiki.example/x"], True), (["--note", "room 4"], False)])
def test_secret_detection_decides_the_file_mode(args, secret):
    s = sch.make_spec("linux", "15m", None, args, exe=["roomprobe"])
    assert sch.has_secret(s) is secret and sch.file_mode(s) == (0o600 if secret else 0o644)


@pytest.mark.parametrize("platform", sch.PLATFORMS)
def test_files_with_a_webhook_are_written_owner_only(tmp_path, platform):
    plain, secret = tmp_path / "plain", tmp_path / "secret"
    assert cli("schedule", "install", "--platform", platform, "--dir", str(plain)).returncode == 0
    out = cli("schedule", "install", "--platform", platform, "--dir", str(secret),
              "--args", f"--webhook {HOOK}")
    assert out.returncode == 0, out.stderr
    assert "owner-only (0600)" in out.stdout and HOOK not in out.stdout
    assert {oct(p.stat().st_mode & 0o777) for p in plain.iterdir()} == {"0o644"}
    assert {oct(p.stat().st_mode & 0o777) for p in secret.iterdir()} == {"0o600"}
    st = cli("schedule", "status", "--platform", platform, "--dir", str(secret), "--format", "json")
    assert st.returncode == 0 and HOOK not in st.stdout and "XXXXsecretXXXX" not in st.stdout
    assert json.loads(st.stdout)["schedule"]["command"][-2:] == ["--webhook", "***"]
    text = cli("schedule", "status", "--platform", platform, "--dir", str(secret))
    assert "--webhook ***" in text.stdout and "XXXXsecretXXXX" not in text.stdout
