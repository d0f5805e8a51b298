"""Issue 21 item 1: every child that is roomprobe itself (serve --agent's check, the PAC worker)
starts isolated from the working directory. A ``roomprobe/`` package planted where the parent
was started must never be imported (it was: ``python -m roomprobe`` puts the cwd first on
sys.path), and the request must still succeed from there.

The parent is started the way an operator starts it: the installed ``roomprobe`` script (a
``python -m roomprobe`` parent would itself import the planted package, which is the
operator's own doing, not ours)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from roomprobe.core import selfexec
from roomprobe.peer import agent as ag
from roomprobe.proxy.sources import pac

SCRIPT = "function FindProxyForURL(url, host) { return 'PROXY p:3128; DIRECT'; }"


def plant(where: Path) -> Path:
    """A ``roomprobe`` package in ``where`` whose import writes a marker file; the marker path."""
    marker = where / "PLANTED-CODE-RAN"
    pkg = where / "roomprobe"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    (pkg / "__main__.py").write_text(f"open({str(marker)!r}, 'w').write('ran main')\n")
    return marker


def console_script() -> str:
    script = Path(sys.executable).parent / ("roomprobe.exe" if os.name == "nt" else "roomprobe")
    if not script.exists():
        pytest.skip("the roomprobe console script is not installed next to this Python")
    return str(script)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_agent_started_beside_a_planted_package_never_imports_it(tmp_path):
    marker = plant(tmp_path)
    port = free_port()
    token = "agent-token-planted"
    env = {**os.environ, "ROOMPROBE_CONFIG": os.devnull}
    proc = subprocess.Popen([console_script(), "serve", "--bind", "127.0.0.1", "--speed-port",
                             str(port), "--token", token, "--agent", "--duration", "60"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        assert proc.stdout is not None
        assert "room check agent" in proc.stdout.readline()
        got = ag.ask("127.0.0.1", port, token, ag.CheckRequest(only=("interfaces",), timeout=5),
                     60)
        assert got["answered"], got  # before the fix: 502, the planted package had no cli
        assert got["report"]["schema"] == "roomprobe/report/v1"
        assert not marker.exists(), "the planted roomprobe/ package was imported by the child"
    finally:
        proc.terminate()
        proc.wait(10)


def test_agent_child_isolated_in_process(tmp_path, monkeypatch):
    """The same through Agent.handle and the real runner, the cwd being the planted folder."""
    marker = plant(tmp_path)
    monkeypatch.chdir(tmp_path)
    status, body = ag.Agent(["interfaces", "subnet"]).handle(
        json.dumps({"only": ["interfaces"], "timeout": 5}).encode())
    assert status == 200, body
    assert not marker.exists()


def test_pac_worker_isolated_from_the_working_directory(tmp_path, monkeypatch):
    marker = plant(tmp_path)
    monkeypatch.chdir(tmp_path)
    got = pac.run_script(SCRIPT, ["https://zoom.us/"], 20)
    assert got == {"https://zoom.us/": ["http://p:3128", "DIRECT"]}, got
    assert not marker.exists()


def test_child_command_lines(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    argv = selfexec.self_argv("check", "--format", "json")
    assert argv[:3] == [sys.executable, "-I", "-c"] and argv[-3:] == ["check", "--format", "json"]
    path = json.loads(argv[4])
    assert str(tmp_path) not in path and all(os.path.isabs(p) for p in path)
    assert path[0] == str(Path(ag.__file__).resolve().parent.parent.parent)
    assert pac._worker_cmd()[-1] == pac.WORKER_FLAG
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", "/opt/roomprobe/roomprobe")
    assert selfexec.self_argv("check") == ["/opt/roomprobe/roomprobe", "check"]
    assert pac._worker_cmd() == ["/opt/roomprobe/roomprobe", "--pac-worker"]


def test_user_pythonpath_survives_isolation(tmp_path, monkeypatch):
    """-I drops PYTHONPATH and the user site: the parent's own import path is handed over, so a
    roomprobe installed there is still the one the child runs."""
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "rp_marker_mod.py").write_text("X = 42\n")
    # where PYTHONPATH entries sit: right after the script's (unsafe) directory
    monkeypatch.setattr(sys, "path", [sys.path[0], str(extra), *sys.path[1:]])
    argv = selfexec.self_argv()
    path = json.loads(argv[4])
    assert str(extra) in path
    out = subprocess.run([*argv, "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "Usage:" in out.stdout, out.stderr


def test_a_scheduled_python_command_line_never_imports_the_working_directory(tmp_path, monkeypatch):
    """The scheduler's fallback command (no roomprobe script on PATH) was ``python -m
    roomprobe``: run from a folder holding a ``roomprobe/`` package, it ran that package."""
    from roomprobe.fleet import schedule

    marker = plant(tmp_path)
    monkeypatch.setattr(schedule.shutil, "which", lambda name: None)
    exe = schedule.default_exe("linux")
    assert exe[0] == sys.executable and exe[-2:] == ["-m", "roomprobe"]
    out = subprocess.run([*exe, "--help"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=30)
    assert not marker.exists(), "the scheduled command imported the planted package"
    assert out.returncode == 0 and "Usage: roomprobe" in out.stdout, out.stderr


@pytest.mark.parametrize("finds", [True, False])
def test_python_310_scheduled_line_is_isolated_whatever_the_install(tmp_path, monkeypatch, finds):
    """On 3.10 (no -P) a plain ``-m`` ran a planted package (CI's 3.10 run caught it): the line is
    ``-I -m`` when an isolated interpreter finds this package, else the isolated bootstrap."""
    marker = plant(tmp_path)
    monkeypatch.setattr(sys, "version_info", (3, 10, 13, "final", 0))
    monkeypatch.setattr(selfexec, "_isolated_finds_this_package", lambda python: finds)
    argv = selfexec.module_argv(sys.executable)
    assert argv[1] == "-I" and (argv[2:] == ["-m", "roomprobe"]) is finds, argv
    out = subprocess.run([*argv, "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert not marker.exists(), "the scheduled command imported the planted package"
    assert out.returncode == 0 and "Usage:" in out.stdout, out.stderr


def test_an_isolated_interpreter_finds_this_package_here():
    assert selfexec._isolated_finds_this_package(sys.executable) is True  # the venv's editable install
