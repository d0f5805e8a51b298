"""The installers a fleet deploys: the MSI (built here by wixl), the macOS pkg's scripts, the SBOM.

What runs only on the public CI (WiX 3's candle/light, pkgbuild, signtool, codesign) is listed in
docs/packaging.md; everything else is checked here on the real files:

* the MSI is built by packaging/build_release.py (the workflow's own script) from a stand-in
  one-folder payload, then read back with msitools: files, properties, upgrade code, the custom
  actions that create and remove the scheduled task, and their conditions;
* the command line those custom actions run is formatted as Windows Installer formats it and run
  through roomprobe's real CLI, so a property that breaks it breaks this test;
* the pkg's postinstall and uninstall scripts run against a scratch root with a fake ``defaults``;
* the SBOM is CycloneDX JSON naming this roomprobe version, and SHA256SUMS verifies.
"""

from __future__ import annotations

import hashlib
import json
import os
import plistlib
import re
import shutil
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import roomprobe

REPO = Path(__file__).resolve().parent.parent
RELEASE = REPO / "packaging" / "build_release.py"
MACOS = REPO / "packaging" / "macos"
SECRET = "https://hooks.example.invalid/services/T000/B000/S3CRETPATH?token=abc123"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-I", "-m", "roomprobe", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for tool in ("wixl", "msiinfo", "msibuild", "msiextract"):
        assert shutil.which(tool), f"{tool} missing: .ci/run installs wixl and msitools"
    out = tmp_path_factory.mktemp("release")
    done = subprocess.run([sys.executable, "-I", str(RELEASE), str(out), "--stand-in", "--installer", "msi"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return out


def _table(msi: Path, name: str) -> list[dict[str, str]]:
    text = subprocess.run(["msiinfo", "export", str(msi), name], capture_output=True, text=True,
                          check=True).stdout
    lines = text.splitlines()
    cols = lines[0].split("\t")
    return [dict(zip(cols, ln.split("\t"), strict=False)) for ln in lines[3:] if ln]


def _msi(release: Path) -> Path:
    return release / f"roomprobe-{roomprobe.__version__}-x64.msi"


def test_msi_installs_the_one_folder_payload_per_machine(release):
    msi = _msi(release)
    listed = subprocess.run(["msiextract", "-l", str(msi)], capture_output=True, text=True, check=True).stdout
    payload = release / "onedir" / "roomprobe"
    expected = {f"roomprobe/{p.relative_to(payload).as_posix()}" for p in payload.rglob("*") if p.is_file()}
    assert set(listed.split("\n")) - {""} == expected
    dirs = {row["Directory"]: row for row in _table(msi, "Directory")}
    assert dirs["INSTALLDIR"]["Directory_Parent"] == "ProgramFiles64Folder"
    assert dirs["INSTALLDIR"]["DefaultDir"] == "roomprobe"
    props = {row["Property"]: row["Value"] for row in _table(msi, "Property")}
    assert props["ALLUSERS"] == "1"  # per-machine
    assert props["ProductVersion"] == roomprobe.__version__
    assert props["UpgradeCode"] == "{6E0C1B5A-8E55-4B8B-9A2B-1D1C3F3F2A10}"
    assert props["KEEPHISTORY"] == "1"
    secure = set(props["SecureCustomProperties"].split(";"))
    assert {"CONTROLLER", "INTERVAL", "CONFIGFILE", "WEBHOOKFILE", "KEEPHISTORY"} <= secure
    assert not any("hooks." in v or "token" in v.lower() for v in props.values())  # no secret baked in


def test_msi_upgrades_in_place(release):
    rows = _table(_msi(release), "Upgrade")
    assert {r["UpgradeCode"] for r in rows} == {"{6E0C1B5A-8E55-4B8B-9A2B-1D1C3F3F2A10}"}
    actions = {r["ActionProperty"] for r in rows}
    assert actions == {"WIX_UPGRADE_DETECTED", "WIX_DOWNGRADE_DETECTED"}
    seq = {r["Action"]: r for r in _table(_msi(release), "InstallExecuteSequence")}
    assert "RemoveExistingProducts" in seq


def test_msi_custom_actions_create_and_remove_the_task(release):
    msi = _msi(release)
    ca = {r["Action"]: r for r in _table(msi, "CustomAction")}
    seq = {r["Action"]: r for r in _table(msi, "InstallExecuteSequence")}
    for name in ("ScheduleInstall", "ScheduleRemove", "SchedulePurge"):
        kind = int(ca[name]["Type"])
        assert kind & 0x3F == 18, name  # an EXE from the installed File table
        assert kind & 0x400 and kind & 0x800, name  # deferred, no impersonation: runs as SYSTEM
        assert ca[name]["Source"] == "roomprobe.exe"
    assert "schedule install" in ca["ScheduleInstall"]["Target"]
    for prop in ("[INTERVAL]", "[CONTROLLER]", "[CONFIGFILE]", "[WEBHOOKFILE]", "[INSTALLDIR]roomprobe-w.exe"):
        assert prop in ca["ScheduleInstall"]["Target"]
    assert ca["ScheduleRemove"]["Target"] == "schedule remove"
    assert ca["SchedulePurge"]["Target"] == "schedule remove --purge"
    assert int(ca["ScheduleInstall"]["Type"]) & 0x40 == 0  # a failed schedule fails the install
    inst, files = int(seq["ScheduleInstall"]["Sequence"]), int(seq["InstallFiles"]["Sequence"])
    assert inst > files and "NOT REMOVE" in seq["ScheduleInstall"]["Condition"]
    for name in ("ScheduleRemove", "SchedulePurge"):
        assert int(seq[name]["Sequence"]) < int(seq["RemoveFiles"]["Sequence"])  # while the exe exists
        cond = seq[name]["Condition"]
        assert 'REMOVE="ALL"' in cond and "NOT UPGRADINGPRODUCTCODE" in cond  # an upgrade keeps the task


def _msi_format(target: str, props: dict[str, str]) -> list[str]:
    """Windows Installer's [PROPERTY] formatting, then the C runtime's argv rules (quotes group,
    backslashes are literal unless they precede a quote), as the custom action's exe sees them."""
    text = re.sub(r"\[([A-Z_]+)\]", lambda m: props.get(m.group(1), ""), target)
    args, cur, quoted, any_ = [], "", False, False
    for ch in text:
        if ch == '"':
            quoted, any_ = not quoted, True
        elif ch == " " and not quoted:
            if cur or any_:
                args.append(cur)
            cur, any_ = "", False
        else:
            cur += ch
    if cur or any_:
        args.append(cur)
    return args


def test_msi_install_action_command_runs_through_the_real_cli(release, tmp_path):
    ca = {r["Action"]: r for r in _table(_msi(release), "CustomAction")}
    target = ca["ScheduleInstall"]["Target"]
    # A bare silent install (no properties): a task with the defaults, no machine config.
    bare = tmp_path / "bare"
    args = _msi_format(target, {"INSTALLDIR": "C:\\Program Files\\roomprobe\\"})
    done = _cli(*args, "--platform", "windows", "--dir", str(bare))
    assert done.returncode == 0, done.stderr
    task = (bare / "roomprobe-check.xml").read_bytes().decode("utf-16")
    assert "<Command>C:\\Program Files\\roomprobe\\roomprobe-w.exe</Command>" in task
    assert not (bare / "config.toml").exists()
    # With every property: the URL comes from the file into an owner-only config, never the task.
    cfg = tmp_path / "site.toml"
    cfg.write_text('[check]\nroom_name = "Board Room 4"\n')
    url = tmp_path / "webhook.url"
    url.write_text(SECRET + "\n")
    full = tmp_path / "full"
    args = _msi_format(target, {"INSTALLDIR": "C:\\Program Files\\roomprobe\\", "CONTROLLER": "10.0.0.5",
                                "INTERVAL": "1h", "CONFIGFILE": str(cfg), "WEBHOOKFILE": str(url)})
    done = _cli(*args, "--platform", "windows", "--dir", str(full))
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout + done.stderr and "S3CRETPATH" not in done.stdout
    task = (full / "roomprobe-check.xml").read_bytes().decode("utf-16")
    assert "--controller 10.0.0.5" in task and f"--config {full / 'config.toml'}" in task
    assert "S3CRETPATH" not in task and "<Interval>PT1H</Interval>" in task
    deployed = full / "config.toml"
    assert stat.S_IMODE(deployed.stat().st_mode) == 0o600
    assert SECRET in deployed.read_text() and "Board Room 4" in deployed.read_text()
    # The deployed config is one 'roomprobe check' accepts.
    listed = _cli("check", "--config", str(deployed), "--only", "interfaces", "--no-history", "--format", "json")
    assert listed.returncode in (0, 1, 2), listed.stderr


def test_msi_install_action_refuses_bad_input_with_one_line(release, tmp_path):
    ca = {r["Action"]: r for r in _table(_msi(release), "CustomAction")}
    url = tmp_path / "webhook.url"
    url.write_text("ftp://x/S3CRETPATH\n")
    args = _msi_format(ca["ScheduleInstall"]["Target"], {"WEBHOOKFILE": str(url)})
    done = _cli(*args, "--platform", "windows", "--dir", str(tmp_path / "out"))
    assert done.returncode == 3 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "roomprobe-check.xml").exists()  # nothing half-installed
    two = tmp_path / "two.url"
    two.write_text(SECRET + "\n" + SECRET + "\n")
    args = _msi_format(ca["ScheduleInstall"]["Target"], {"WEBHOOKFILE": str(two)})
    done = _cli(*args, "--platform", "windows", "--dir", str(tmp_path / "out2"))
    assert done.returncode == 3 and "one line" in done.stderr and "S3CRETPATH" not in done.stderr


def test_uninstall_keeps_history_unless_purged(tmp_path):
    out = tmp_path / "sched"
    url = tmp_path / "w.url"
    url.write_text(SECRET)
    assert _cli("schedule", "install", "--platform", "windows", "--dir", str(out), "--webhook-file",
                str(url)).returncode == 0
    db = tmp_path / "history.sqlite3"
    db.write_bytes(b"history")
    kept = _cli("schedule", "remove", "--platform", "windows", "--dir", str(out), "--history-db", str(db))
    assert kept.returncode == 0, kept.stderr
    assert not (out / "config.toml").exists() and not (out / "roomprobe-check.xml").exists()
    assert db.exists()
    purged = _cli("schedule", "remove", "--platform", "windows", "--dir", str(out), "--purge",
                  "--history-db", str(db))
    assert purged.returncode == 0 and not db.exists()


# ------------------------------------------------------------------ macOS pkg


def test_pkg_files_lint():
    for script in (MACOS / "build-pkg.sh", MACOS / "uninstall.sh", *sorted((MACOS / "scripts").iterdir())):
        assert os.access(script, os.X_OK), f"{script} must be executable (pkgbuild runs it as is)"
        done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert done.returncode == 0, (script, done.stderr)
    dist = ET.fromstring((MACOS / "distribution.xml").read_text())
    assert dist.tag == "installer-gui-script"
    assert dist.find("pkg-ref").get("id") == "com.roomprobe.pkg"
    profile = plistlib.loads((MACOS / "com.roomprobe.agent.mobileconfig").read_bytes())
    keys = set(profile["PayloadContent"][0])
    assert {"Controller", "Interval", "ConfigFile", "WebhookFile"} <= keys
    assert profile["PayloadContent"][0]["PayloadType"] == "com.roomprobe.agent"


def _fake_pkg_root(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A scratch root with the payload's roomprobe (a wrapper around this checkout's CLI) and a
    fake ``defaults`` that reads the managed profile from a JSON file."""
    root = tmp_path / "root"
    app = root / "usr/local/roomprobe/roomprobe"
    app.parent.mkdir(parents=True)
    app.write_text(f'#!/bin/sh\nexec {sys.executable} -I -m roomprobe "$@"\n')
    app.chmod(0o755)
    shutil.copy(MACOS / "uninstall.sh", app.parent / "uninstall.sh")
    fake = tmp_path / "defaults"
    fake.write_text(f'#!{sys.executable}\nimport json,sys\nd=json.load(open("{tmp_path}/prefs.json"))\n'
                    'k=sys.argv[3]\nprint(d[k]) if k in d else sys.exit(1)\n')
    fake.chmod(0o755)
    prefs = tmp_path / "com.roomprobe.agent.plist"
    env = {"ROOMPROBE_PKG_PREFIX": str(root), "ROOMPROBE_DEFAULTS": str(fake), "ROOMPROBE_PKG_PREFS": str(prefs)}
    return root, env


def test_pkg_postinstall_schedules_from_the_profile_and_uninstall_removes(tmp_path):
    root, env = _fake_pkg_root(tmp_path)
    url = tmp_path / "webhook.url"
    url.write_text(SECRET + "\n")
    (tmp_path / "prefs.json").write_text(json.dumps({"Controller": "10.0.0.5", "Interval": "30m",
                                                     "WebhookFile": str(url)}))
    Path(env["ROOMPROBE_PKG_PREFS"]).write_text("managed")
    post = subprocess.run(["bash", str(MACOS / "scripts" / "postinstall")], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **env})
    assert post.returncode == 0, post.stdout + post.stderr
    daemons = root / "Library/LaunchDaemons"
    job = plistlib.loads((daemons / "com.roomprobe.check.plist").read_bytes())
    argv = job["ProgramArguments"]
    assert argv[argv.index("--controller") + 1] == "10.0.0.5"
    assert argv[argv.index("--config") + 1] == str(daemons / "config.toml")
    assert "S3CRETPATH" not in json.dumps(job) and "S3CRETPATH" not in post.stdout
    assert SECRET in (daemons / "config.toml").read_text()
    assert os.path.islink(root / "usr/local/bin/roomprobe")
    # An upgrade without a profile keeps the schedule it had.
    Path(env["ROOMPROBE_PKG_PREFS"]).unlink()
    before = (daemons / "com.roomprobe.check.plist").read_bytes()
    again = subprocess.run(["bash", str(MACOS / "scripts" / "postinstall")], capture_output=True, text=True,
                           timeout=120, env={**os.environ, **env})
    assert again.returncode == 0 and "kept the existing schedule" in again.stdout
    assert (daemons / "com.roomprobe.check.plist").read_bytes() == before
    gone = subprocess.run(["bash", str(root / "usr/local/roomprobe/uninstall.sh")], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env})
    assert gone.returncode == 0, gone.stderr
    assert not (daemons / "com.roomprobe.check.plist").exists() and not (daemons / "config.toml").exists()
    assert not (root / "usr/local/roomprobe").exists() and not os.path.lexists(root / "usr/local/bin/roomprobe")


# ------------------------------------------------------------------ SBOM, checksums, version


def test_sbom_names_this_version_and_the_runtime_dependencies(release):
    bom = json.loads((release / f"roomprobe-{roomprobe.__version__}.cdx.json").read_text())
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"].startswith("1.")
    assert bom["metadata"]["component"]["name"] == "roomprobe"
    assert bom["metadata"]["component"]["version"] == roomprobe.__version__
    names = {re.sub(r"[-_.]+", "-", c["name"]).lower() for c in bom["components"]}
    assert {"click", "psutil", "dnspython", "scapy", "pypac", "tomli-w"} <= names
    assert all(c.get("purl", "").startswith("pkg:pypi/") for c in bom["components"])


def test_checksums_cover_every_artifact(release):
    lines = (release / "SHA256SUMS").read_text().splitlines()
    named = {}
    for ln in lines:
        digest, name = ln.split("  ", 1)
        named[name] = digest
        assert hashlib.sha256((release / name).read_bytes()).hexdigest() == digest
    assert set(named) == {f"roomprobe-{roomprobe.__version__}-x64.msi",
                          f"roomprobe-{roomprobe.__version__}.cdx.json"}


def test_version_has_one_place_and_a_tag_must_match_it(tmp_path):
    from importlib.metadata import version

    assert version("roomprobe") == roomprobe.__version__
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and 'attr = "roomprobe.__version__"' in pyproject
    env = {**os.environ, "GITHUB_REF_TYPE": "tag", "GITHUB_REF_NAME": "v999.0.0"}
    done = subprocess.run([sys.executable, "-I", str(RELEASE), str(tmp_path), "--stand-in", "--installer",
                           "none"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 3 and "does not match" in done.stderr
