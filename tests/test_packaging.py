"""``pip install .`` / ``pipx install .`` ship everything, and the binary spec knows every module.

The wheel is built from a copy of this tree exactly as a user would (``pip wheel .``, with
pip's build isolation and its configured index) and opened: probes, commands, the schema and
the catalogs must all be inside, and the entry points must list every built-in probe. The
PyInstaller spec is executed with its build functions stubbed, on a stage laid out as
build-binary.sh lays it out, to check it lists every module that is only ever imported by name.
The real binary build is bench/binary.py.
"""

from __future__ import annotations

import configparser
import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from roomprobe.cli import COMMANDS
from roomprobe.core.registry import BUILTIN

REPO = Path(__file__).resolve().parent.parent

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]


def test_pyproject_entry_points_match_builtin():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert meta["project"]["entry-points"]["roomprobe.probes"] == BUILTIN


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")
    src = build / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".venv", ".git", "build", "dist",
                                                             "*.egg-info", "__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
                           "-q", "-w", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (whl,) = out.glob("roomprobe-*.whl")
    return zipfile.ZipFile(whl)


def test_wheel_has_probes_commands_schema_and_data(wheel):
    names = set(wheel.namelist())
    for p in (REPO / "probes").glob("*.py"):
        assert f"roomprobe/probes/{p.name}" in names, p.name
    for p in (REPO / "roomprobe").rglob("*.py"):
        assert str(p.relative_to(REPO)) in names, p
    assert "roomprobe/report/schema/report-v1.json" in names
    tomls = list((REPO / "roomprobe" / "diagnose" / "data").glob("*.toml"))
    assert tomls
    for p in tomls:
        assert f"roomprobe/diagnose/data/{p.name}" in names, p.name
    for _name, (ref, _help) in COMMANDS.items():
        module = ref.partition(":")[0]
        if importlib.util.find_spec(module) is not None:
            assert module.replace(".", "/") + ".py" in names, module


def test_wheel_metadata_entry_points(wheel):
    (ep_file,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    eps = configparser.ConfigParser()
    eps.read_string(wheel.read(ep_file).decode())
    assert dict(eps["roomprobe.probes"]) == BUILTIN
    assert eps["console_scripts"]["roomprobe"] == "roomprobe.cli:main"
    assert eps["gui_scripts"]["roomprobe-w"] == "roomprobe.cli:main_windowless"  # scheduled runs
    (meta,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    requires = wheel.read(meta).decode()
    assert "Requires-Dist: jsonschema" in requires  # 'roomprobe report' validates at run time


def _run_spec(tmp_path, windowed: str) -> tuple[dict, list[dict]]:
    """Execute the spec with PyInstaller's build functions stubbed; (Analysis kwargs, EXE kwargs)."""
    stage = tmp_path / "stage"
    shutil.copytree(REPO / "roomprobe", stage / "roomprobe",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.rmtree(stage / "roomprobe" / "probes", ignore_errors=True)
    shutil.copytree(REPO / "probes", stage / "roomprobe" / "probes",
                    ignore=shutil.ignore_patterns("__pycache__"))
    captured: dict = {}

    def analysis(scripts, **kw):
        captured.update(kw, scripts=scripts)
        return type("A", (), {"pure": [], "scripts": [], "binaries": [], "datas": []})()

    exes: list[dict] = []
    spec = REPO / "packaging" / "pyinstaller" / "roomprobe.spec"
    env = {"Analysis": analysis, "PYZ": lambda *a, **k: None, "EXE": lambda *a, **k: exes.append(k),
           "SPECPATH": str(spec.parent), "__file__": str(spec)}
    mp = pytest.MonkeyPatch()
    mp.setenv("ROOMPROBE_STAGE", str(stage))
    mp.setenv("ROOMPROBE_WINDOWED", windowed)
    try:
        exec(compile(spec.read_text(), str(spec), "exec"), env)
    finally:
        mp.undo()
    return captured, exes


def test_pyinstaller_spec_builds_a_windowless_twin_for_scheduled_runs(tmp_path):
    pytest.importorskip("PyInstaller")
    _, exes = _run_spec(tmp_path / "w", "1")
    assert [(e["name"], e["console"]) for e in exes] == [("roomprobe", True), ("roomprobe-w", False)]
    _, exes = _run_spec(tmp_path / "c", "0")
    assert [(e["name"], e["console"]) for e in exes] == [("roomprobe", True)]


def test_windowless_entry_writes_to_a_log_not_nowhere(tmp_path):
    """pythonw / console=False: sys.stdout is None; the output must land in roomprobe-w.log."""
    code = ("import sys; sys.stdout = None; sys.stderr = None\n"
            "from roomprobe.cli import main_windowless\nmain_windowless(sys.argv[1:])")
    env = {"HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state"), "PATH": "/usr/bin:/bin"}
    for args, rc in ((["--version"], 0), (["--no-such-flag"], 3)):
        out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                             timeout=60, env=env)
        assert out.returncode == rc and out.stdout == "" and out.stderr == "", out.stderr
    (log,) = tmp_path.rglob("roomprobe-w.log")
    text = log.read_text()
    assert "roomprobe, version" in text and "no such option: --no-such-flag" in text


def test_pyinstaller_spec_lists_every_module_and_data(tmp_path):
    pytest.importorskip("PyInstaller")
    captured, _ = _run_spec(tmp_path, "0")
    hidden = set(captured["hiddenimports"])
    for ref in BUILTIN.values():
        assert ref.partition(":")[0] in hidden, ref
    for ref, _help in COMMANDS.values():
        module = ref.partition(":")[0]
        if importlib.util.find_spec(module) is not None:
            assert module in hidden, module
    assert {"roomprobe.report.markdown", "roomprobe.report.html", "roomprobe.host.evidence"} <= hidden
    dests = {(Path(src).name, dest) for src, dest in captured["datas"]}
    assert ("report-v1.json", "roomprobe/report/schema") in dests
    for p in (REPO / "roomprobe" / "diagnose" / "data").glob("*.toml"):
        assert (p.name, "roomprobe/diagnose/data") in dests
    assert Path(captured["scripts"][0]).is_file()
