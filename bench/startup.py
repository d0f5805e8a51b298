#!/usr/bin/env python3
"""How fast does the CLI start? Whole-process medians, as ratios to ``python -c pass``.

Measures ``roomprobe --help``, ``roomprobe --version`` and ``roomprobe probes`` (imports every
probe module, but no scapy), each N times, against the bare interpreter measured in the same run.

    python bench/startup.py [-n 15] [--quick]

``--quick`` (two runs per case) proves the bench still works; two runs make a rough median.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import _args

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
    args = _args.parse(__doc__, lambda ap: ap.add_argument("-n", type=int, default=15, help="runs per case"),
                       QUICK, "two runs per case")
    results = {name: median_seconds(cmd, args.n) for name, cmd in CASES.items()}
    base = results["python -c pass"]
    print(f"{'case':<22} {'median ms':>10} {'x python':>9}")
    for name, sec in results.items():
        print(f"{name:<22} {sec * 1000:>10.1f} {sec / base:>9.2f}")


if __name__ == "__main__":
    main()
