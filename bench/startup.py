#!/usr/bin/env python3
"""How fast does the CLI start? Whole-process medians, as ratios to ``python -c pass``.

Measures ``roomprobe --help``, ``roomprobe --version`` and ``roomprobe probes`` (imports every
probe module, but no scapy), each N times, against the bare interpreter measured in the same run.

    python bench/startup.py [-n 15] [--quick]

``--quick`` (two runs per case) proves the bench still works; two runs make a rough median.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

QUICK = {"n": 2}
CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "roomprobe --version": [sys.executable, "-m", "roomprobe", "--version"],
    "roomprobe --help": [sys.executable, "-m", "roomprobe", "--help"],
    "roomprobe probes": [sys.executable, "-m", "roomprobe", "probes"],
}


def median_seconds(cmd: list[str], n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=15, help="runs per case")
    ap.add_argument("--quick", action="store_true",
                    help="a short run proving the bench works (tests/test_benches.py): two runs per case")
    args = ap.parse_args()
    if args.quick:  # its own defaults; flags given explicitly still win
        ap.set_defaults(**QUICK)
        args = ap.parse_args()
    results = {name: median_seconds(cmd, args.n) for name, cmd in CASES.items()}
    base = results["python -c pass"]
    print(f"{'case':<22} {'median ms':>10} {'x python':>9}")
    for name, sec in results.items():
        print(f"{name:<22} {sec * 1000:>10.1f} {sec / base:>9.2f}")


if __name__ == "__main__":
    main()
