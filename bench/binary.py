#!/usr/bin/env python3
"""Build the binaries with PyInstaller, measure them and run ``check`` with them.

Both layouts the releases ship: the one-file binary (a technician's USB stick; it unpacks itself
into a temp dir on every start) and the one-folder build (the installers' payload). For each:
size on disk, median start time of ``--version`` over N runs as a ratio to ``python -I -m
roomprobe --version`` measured in the same run, a ``check`` whose JSON must validate, ``report``
in markdown and html (package data inside the binary), a bad report file refused with exit 3 and
one line, and with the network lab (root, ip netns) a controller-side check of a lab room over
ARP (scapy inside the binary) that must pass.

    python bench/binary.py [--quick] [--keep DIR] [--no-lab] [-n 5]

``--quick`` (what .ci/run runs) builds only the one-folder layout and skips the lab run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess:
    env = {**os.environ, "ROOMPROBE_CONFIG": os.devnull, "NO_COLOR": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, **kw)  # type: ignore[arg-type]


def validate(text: str) -> dict:
    import jsonschema

    from roomprobe.report.build import load_schema

    data = json.loads(text)
    jsonschema.validate(data, load_schema())
    return data


def lab_check(binary: Path) -> dict:
    """The binary inside a lab namespace: controller-side check of a healthy room."""
    from lab import Lab, lab_unavailable_reason

    reason = lab_unavailable_reason()
    if reason:
        return {"skipped": reason}
    with Lab() as lab:
        room = lab.add_host("room", "lan", 20)
        ctrl = lab.add_host("ctrl", "lan", 30)
        room.listen(9090, comm="ZoomRooms")
        t0 = time.monotonic()
        out = ctrl.run([str(binary), "check", "--room", room.addr, "--format", "json"], check=False,
                       env={**os.environ, "ROOMPROBE_CONFIG": str(lab.config_path)})
        seconds = time.monotonic() - t0
    rep = validate(out.stdout)
    probes = {p["id"]: p for p in rep["probes"]}
    assert out.returncode == 0, (out.returncode, out.stderr)
    assert probes["controller-port"]["evidence"]["state"] == "open", probes["controller-port"]
    arp = probes["subnet"]["evidence"]["arp"]
    assert arp["status"] == "done" and arp["answered"], arp
    return {"rc": out.returncode, "seconds": round(seconds, 2), "arp_rtt_ms": arp.get("rtt_ms")}


def median_start(cmd: list[str], n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        run(cmd)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def exercise(binary: Path, out_dir: Path) -> dict[str, object]:
    """check, report and a refused bad input with one binary; assertions are the bench's pass/fail."""
    results: dict[str, object] = {}
    t0 = time.monotonic()
    out = run([str(binary), "check", "--room", "127.0.0.1", "--only", "interfaces,controller-port",
               "--format", "json", "--no-history"])
    results["check_s"] = round(time.monotonic() - t0, 2)
    rep = validate(out.stdout)
    assert out.returncode in (0, 1, 2), (out.returncode, out.stderr)
    assert [p["id"] for p in rep["probes"]] == ["interfaces", "controller-port"], rep["probes"]
    assert all(p["status"] != "error" for p in rep["probes"]), rep["probes"]
    saved = out_dir / f"report-{binary.parent.name}.json"
    saved.write_text(out.stdout)
    for fmt in ("markdown", "html"):
        rendered = run([str(binary), "report", str(saved), "--format", fmt])
        assert rendered.returncode == 0 and "controller-port" in rendered.stdout, rendered.stderr
    bad = run([str(binary), "report", "/etc/hostname"])
    assert bad.returncode == 3 and len(bad.stderr.strip().splitlines()) == 1, bad
    assert "Traceback" not in bad.stderr and "/etc/hostname" in bad.stderr, bad
    return results


def tree_mb(path: Path) -> float:
    if path.is_file():
        return round(path.stat().st_size / 1e6, 1)
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6, 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one-folder build only, no lab (CI)")
    ap.add_argument("--keep", type=Path, help="build into DIR and keep the binaries")
    ap.add_argument("--no-lab", action="store_true", help="skip the lab run")
    ap.add_argument("-n", type=int, default=5, help="start-time runs per binary [default: 5]")
    args = ap.parse_args()
    out_dir = args.keep or Path(tempfile.mkdtemp(prefix="roomprobe-bin."))
    layout = "onedir" if args.quick else "both"
    try:
        t0 = time.monotonic()
        build = subprocess.run(["bash", str(REPO / "packaging" / "build-binary.sh"), str(out_dir)],
                               capture_output=True, text=True, timeout=1800,
                               env={**os.environ, "PYTHON": sys.executable, "ROOMPROBE_LAYOUT": layout})
        if build.returncode != 0:
            print(build.stdout[-3000:], build.stderr[-3000:], sep="\n")
            return 1
        results: dict[str, object] = {"layout": layout, "build_s": round(time.monotonic() - t0, 1)}
        reference = median_start([sys.executable, "-I", "-m", "roomprobe", "--version"], args.n)
        results["python -I -m roomprobe --version s"] = round(reference, 3)
        binaries = {"onedir": out_dir / "onedir" / "roomprobe" / "roomprobe"}
        if not args.quick:
            binaries = {"onefile": out_dir / "roomprobe", **binaries}
        for name, binary in binaries.items():
            start = median_start([str(binary), "--version"], args.n)
            results[name] = {"size_mb": tree_mb(binary if name == "onefile" else binary.parent),
                             "version_s": round(start, 3), "version_ratio_to_python": round(start / reference, 2),
                             **exercise(binary, out_dir)}
            if not (args.no_lab or args.quick):
                results[name]["lab"] = lab_check(binary)  # type: ignore[index]
        print(json.dumps(results, indent=2))
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(out_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
