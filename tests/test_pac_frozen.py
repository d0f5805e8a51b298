"""The PAC worker in a frozen (PyInstaller) binary: there is no ``python -m`` inside it, so the
binary starts itself with ``--pac-worker`` and its entry point becomes the worker.

These run the real entry points as subprocesses: a frozen build is stood in for by setting
``sys.frozen`` and pointing ``sys.executable`` at a script that runs packaging/pyinstaller/entry.py
(what the bootloader does), so the whole chain (command line, flag, worker, reply) is exercised.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from roomprobe.proxy.sources import pac

REPO = Path(__file__).resolve().parent.parent
ENTRY = REPO / "packaging" / "pyinstaller" / "entry.py"
SCRIPT = "function FindProxyForURL(url, host) { return host == 'zoom.us' ? 'PROXY p:3128; DIRECT' : 'DIRECT'; }"
REQUEST = json.dumps({"script": SCRIPT, "jobs": [{"url": "https://zoom.us/", "host": "zoom.us"},
                                                 {"url": "http://10.0.0.5/", "host": "10.0.0.5"}]})


def test_worker_command_line_in_both_modes(monkeypatch):
    monkeypatch.delattr(sys, "frozen", raising=False)
    cmd = pac._worker_cmd()  # isolated (core.selfexec): never ``-m`` from the working directory
    assert cmd[:3] == [sys.executable, "-I", "-c"] and cmd[-1] == "--pac-worker"
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", "/opt/roomprobe/roomprobe")
    assert pac._worker_cmd() == ["/opt/roomprobe/roomprobe", "--pac-worker"]


@pytest.mark.parametrize("cmd", [[sys.executable, str(ENTRY), "--pac-worker"],
                                 [sys.executable, "-m", "roomprobe", "--pac-worker"]],
                         ids=["pyinstaller-entry", "cli-main"])
def test_entry_points_turn_into_the_worker(cmd):
    proc = subprocess.run(cmd, input=REQUEST, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    reply = json.loads(proc.stdout)
    assert reply == {"ok": True, "results": {"https://zoom.us/": "PROXY p:3128; DIRECT",
                                             "http://10.0.0.5/": "DIRECT"}}


def test_the_flag_is_only_a_helper_role_alone():
    """``--pac-worker`` with anything else is not the worker: click refuses it (one line, exit 3)."""
    proc = subprocess.run([sys.executable, "-m", "roomprobe", "--pac-worker", "check"], input="",
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("roomprobe: no such option: --pac-worker")


def test_frozen_build_evaluates_and_kills_through_its_own_binary(monkeypatch, tmp_path):
    binary = tmp_path / "roomprobe"
    binary.write_text(f"#!/bin/sh\nexec {sys.executable} {ENTRY} \"$@\"\n")
    binary.chmod(0o755)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(binary))
    got = pac.run_script(SCRIPT, ["https://zoom.us/", "http://10.0.0.5/"], 10)
    assert got == {"https://zoom.us/": ["http://p:3128", "DIRECT"], "http://10.0.0.5/": ["DIRECT"]}
    with pytest.raises(pac.PacError, match="did not finish"):
        pac.run_script("function FindProxyForURL(u, h) { while (true) {} }", ["https://zoom.us/"], 1.5)
