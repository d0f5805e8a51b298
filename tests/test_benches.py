"""Every bench in bench/ runs in its quick mode and prints its figures: a bench nothing runs rots
(bench/binary.py failed for a release on an error wording that had changed).

Each bench takes ``--quick`` (small sizes, short runs; explicit flags still win). The figures of
a quick run prove the bench works end to end, not the goals it measures, so only their presence
and form are checked here, never their values (no timed assertions). Lab benches build their
own namespaces (root), hence the ``lab`` mark. Together they take about a minute and a half.

To add a bench: one entry in BENCHES. binary.py's quick mode builds the one-folder binary with
PyInstaller (about a minute on an idle machine), so it gets a longer limit.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from lab import lab_unavailable_reason, require_tool

BENCH = Path(__file__).resolve().parent.parent / "bench"
NUM = r"[0-9]+(?:\.[0-9]+)?"

# name -> (needs the lab, extra tools, regexes its output must match: its figures)
BENCHES: dict[str, tuple[bool, tuple[str, ...], tuple[str, ...]]] = {
    "startup.py": (False, (), (rf"roomprobe --version\s+{NUM}\s+{NUM}", rf"roomprobe probes\s+{NUM}\s+{NUM}")),
    "check_speed.py": (True, (), (rf"check, healthy room\s+{NUM}\s+{NUM}",
                                  rf"check, peer black-holed\s+{NUM}\s+{NUM}")),
    "bandwidth.py": (True, ("iperf3",), (rf"10 Mbit \|\s+{NUM}\s+{NUM}\s+{NUM} \|\s+{NUM}\s+{NUM}\s+{NUM} \|",)),
    "quality.py": (True, ("irtt",), (rf"loss5\s+up_loss_pct\s+{NUM}\s+{NUM}\s+[-+]{NUM}",
                                      rf"loss5\s+down_jitter_ms\s+{NUM}\s+{NUM}",
                                      r"irtt server alive at the end")),
    "sweep.py": (True, ("nmap",), (rf"roomprobe sweep\s+{NUM} s", rf"nmap -n -Pn -p 9090 -T4\s+{NUM} s",
                                   r"port states agreeing\s+\d+/24")),
    "exporter.py": (True, (), (rf"\d+ scrapes in {NUM} s", rf"exporter after:\s+RSS {NUM} MB",
                               r"memory, threads and descriptors: (FLAT|GROWING)")),
    "path.py": (True, ("mtr",), (rf"clean\S*\s+\d+\s+{NUM}\s+{NUM}\s+{NUM}",)),
    "binary.py": (False, (), (rf'"size_mb": {NUM}', rf'"version_ratio_to_python": {NUM}', rf'"check_s": {NUM}')),
}
TIMEOUT_S = {"binary.py": 1200}


def test_every_bench_is_run_here():
    """A new bench without a quick run here fails this (``_*.py`` are the benches' shared
    helpers, run through every bench that imports them)."""
    on_disk = {p.name for p in BENCH.glob("*.py") if not p.name.startswith("_")}
    assert on_disk <= set(BENCHES), on_disk - set(BENCHES)


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.lab] if BENCHES[n][0] else [])
                                  for n in BENCHES])
def test_bench_quick_mode_prints_its_figures(name):
    lab, tools, figures = BENCHES[name]
    if lab and (why := lab_unavailable_reason()):
        pytest.skip(why)
    for tool in tools:
        require_tool(tool, tool)
    run = subprocess.run([sys.executable, str(BENCH / name), "--quick"], capture_output=True,
                         text=True, timeout=TIMEOUT_S.get(name, 240))
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "Traceback" not in run.stderr, run.stderr[-2000:]
    for fig in figures:
        assert re.search(fig, run.stdout), f"{name}: no line matching {fig!r} in:\n{run.stdout[-2000:]}"
