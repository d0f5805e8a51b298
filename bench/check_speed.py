#!/usr/bin/env python3
"""Wall time of ``roomprobe check`` in the lab: healthy, and with the peer black-holed.

Builds the namespace lab (root needed), runs the check N times per case from the controller
side, and prints medians next to the global deadline and to ``python -c pass`` measured in the
same namespace in the same run. The black-holed case shows the probes run concurrently: its wall
time is one timeout, not the sum of every probe's timeout.

    sudo python bench/check_speed.py [-n 7] [--quick]

``--quick`` (one run per case, 3 s deadline) proves the bench still works; one run is no median.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import _args  # noqa: E402
from lab import Lab, lab_unavailable_reason  # noqa: E402

BLACKHOLE = """
table inet blackhole {
  chain bh_forward { type filter hook forward priority 0; policy drop;
  }
}
"""


QUICK = {"n": 1, "timeout": 3.0}


def med(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    def add(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("-n", type=int, default=7)
        ap.add_argument("--timeout", type=float, default=5.0, help="global deadline for the check")
    args = _args.parse(__doc__, add, QUICK, "one run per case")
    _args.need_lab("check_speed.py", lab_unavailable_reason())
    with Lab() as lab:
        room = lab.add_host("room", "lan", 20)
        ctrl = lab.add_host("ctrl", "lan", 30)
        far = lab.add_host("far", "vl2", 150)
        room.listen(9090)
        base = med(lambda: ctrl.run([sys.executable, "-c", "pass"]), args.n)
        t = str(args.timeout)
        healthy = med(lambda: ctrl.roomprobe("check", "--room", room.addr, "--timeout", t), args.n)
        lab.router_exec(["nft", "-f", "-"], input=BLACKHOLE)
        holed_n = max(1 if args.quick else 3, args.n // 2)
        holed = med(lambda: far.roomprobe("check", "--room", room.addr, "--timeout", t), holed_n)
    print(f"{'case':<34} {'median s':>9} {'x python':>9}")
    print(f"{'python -c pass (in the lab)':<34} {base:>9.3f} {1:>9.2f}")
    print(f"{'check, healthy room':<34} {healthy:>9.3f} {healthy / base:>9.2f}")
    print(f"{'check, peer black-holed':<34} {holed:>9.3f} {holed / base:>9.2f}")
    print(f"global deadline {args.timeout:.1f} s; black-holed / deadline = {holed / args.timeout:.2f}")


if __name__ == "__main__":
    main()
