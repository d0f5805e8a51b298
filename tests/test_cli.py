"""The CLI as a user meets it: usage errors are one line and exit 3, help is fast, reports valid.

Everything here runs on the bare machine, so it only ever targets 127.0.0.1 (or nothing), and
every check that gets as far as probing names its probes with --only (no DNS, no cloud traffic).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jsonschema
import pytest

from roomprobe.report.build import load_schema


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "ROOMPROBE_CONFIG": os.devnull, "NO_COLOR": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "roomprobe", *args], capture_output=True,
                          text=True, timeout=60, env=full)


@pytest.mark.parametrize("args, words", [
    (["check", "--room", "10.0.0.999"], "is not an IP address or host name"),
    (["check", "--controller", "not an address"], "is not an IP address or host name"),
    (["check", "--port", "70000"], "out of range"),
    (["check", "--port", "abc"], "'abc' is not a valid integer"),
    (["check", "--timeout", "0"], "--timeout 0.0 is out of range"),
    (["check", "--only", "nosuch"], "no probe named 'nosuch'"),
    (["check", "--set", "subnet.nope=1"], "has no option 'nope'"),
    (["check", "--config", "/nonexistent/roomprobe.toml"], "cannot read config file"),
    (["check", "--bogus"], "no such option: --bogus"),
    (["check", "--format", "xml"], "'xml' is not one of"),
    (["nosuchcommand"], "No such command"),
])
def test_bad_input_is_one_line_and_exit_3(args, words):
    out = cli(*args)
    assert out.returncode == 3, out
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert words in lines[0] and lines[0].startswith("roomprobe: ")


def test_bad_config_values_are_one_line(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[check]\nport = 'ninety'\n")
    out = cli("check", "--config", str(cfg))
    assert out.returncode == 3 and len(out.stderr.strip().splitlines()) == 1
    assert "[check].port has the wrong type" in out.stderr


def test_version_and_help():
    out = cli("--version")
    assert out.returncode == 0 and out.stdout.startswith("roomprobe, version ")
    out = cli("--help")
    assert out.returncode == 0 and "check" in out.stdout and "Exit codes" in out.stdout


def test_help_imports_nothing_heavy():
    code = ("import sys\nfrom roomprobe.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('scapy', 'psutil', 'dns', 'netifaces', 'roomprobe.probes') "
            "if m in sys.modules]\nprint('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr


def test_loopback_room_check_json_to_file_and_stdout(tmp_path):
    path = tmp_path / "sub" / "report.json"
    path.parent.mkdir()
    out = cli("check", "--room", "127.0.0.1", "--port", "1", "--only", "interfaces,controller-port",
              "--json", str(path))
    assert out.returncode == 2, out.stderr  # nothing listens on port 1
    assert out.stdout.splitlines()[0].startswith("FAIL")
    report = json.loads(path.read_text())
    jsonschema.validate(report, load_schema())
    assert report["targets"]["role"] == "room"
    assert [p["id"] for p in report["probes"]] == ["interfaces", "controller-port"]
    assert report["probes"][1]["evidence"]["state"] == "not-listening"
    assert [f["id"] for f in report["findings"]] == ["port-not-listening"]
    assert list(path.parent.iterdir()) == [path]  # no temp file left behind

    out = cli("check", "--room", "127.0.0.1", "--port", "1", "--only", "controller-port", "--json", "-")
    assert json.loads(out.stdout)["status"] == "fail"


def test_unwritable_json_path_keeps_the_verdict_and_exits_3(tmp_path):
    out = cli("check", "--only", "interfaces", "--no-history", "--json", str(tmp_path / "missing-dir" / "r.json"))
    assert out.returncode == 3 and "could not write the report" in out.stderr
    assert out.stdout.startswith(("PASS", "WARN", "FAIL")), out.stdout  # the verdict is still shown
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0,
                    reason="needs unshare -m (root)")
def test_json_on_a_full_disk_prints_the_verdict_then_says_so(tmp_path):
    """A real full file system (a 64 KiB tmpfs, filled): every probe ran, so the verdict is printed,
    then one line saying the file could not be written; no temp file is left behind."""
    d = tmp_path / "full"
    d.mkdir()
    script = (f"mount -t tmpfs -o size=64k tmpfs {d} && (dd if=/dev/zero of={d}/fill bs=4k 2>/dev/null; true) && "
              f"{sys.executable} -m roomprobe check --only interfaces --no-history --no-color "
              f"--json {d}/r.json; echo RC=$?; ls -a {d}")
    out = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "ROOMPROBE_CONFIG": os.devnull})
    verdict, _, rest = out.stdout.partition("RC=")
    assert rest.startswith("3"), out
    assert verdict.startswith(("PASS", "WARN", "FAIL")) and "interfaces" in verdict, out.stdout
    assert "No space left on device" in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert sorted(rest.split()[1:]) == [".", "..", "fill"], rest  # no r.json, no temp file


def test_config_file_sets_what_flags_set(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[check]\nroom = "127.0.0.1"\nport = 1\nonly = ["controller-port"]\nformat = "json"\n'
                   '[probes.controller-port]\nconnect_timeout = 1.0\n')
    out = cli("check", "--config", str(cfg))
    report = json.loads(out.stdout)
    assert report["targets"] == {"controller": None, "room": "127.0.0.1", "role": "room", "port": 1}
    assert [p["id"] for p in report["probes"]] == ["controller-port"]
    # A flag beats the file.
    out = cli("check", "--config", str(cfg), "--format", "text")
    assert out.stdout.startswith("FAIL")


def test_no_targets_skips_peer_probes_and_passes():
    out = cli("check", "--format", "json", "--only", "interfaces,subnet,controller-port")
    report = json.loads(out.stdout)
    jsonschema.validate(report, load_schema())
    statuses = {p["id"]: (p["status"], p["reason"]) for p in report["probes"]}
    assert statuses["subnet"] == ("skip", "no-peer")
    assert statuses["controller-port"] == ("skip", "no-target")


def test_probes_lists_every_probe_with_options():
    out = cli("probes", "--format", "json")
    rows = {r["id"]: r for r in json.loads(out.stdout)}
    assert {"interfaces", "subnet", "controller-port"} <= set(rows)
    assert "zoom_rooms_processes" in rows["controller-port"]["options"]


def test_unknown_code_is_refused_before_probing():
    out = cli("check", "--code", "zoom-rooms:99999", "--only", "interfaces")
    assert out.returncode == 3 and "no such Zoom error code" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_user_code_with_nothing_wrong_says_so():
    out = cli("check", "--code", "2002", "--only", "interfaces", "--format", "json")
    report = json.loads(out.stdout)
    first = report["diagnosis"][0]
    assert (first["product"], first["code"]) == ("zoom-rooms", 2002)
    assert first["because"] == [] and first["likelihood"] == "low"
