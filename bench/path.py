#!/usr/bin/env python3
"""roomprobe path against mtr: time to a 10-round result on the same five-router lab path.

Builds tests/pathlab.py (root needed): room -> five routers -> "Zoom". For each case both tools
send the same number of rounds at the same interval to the same destination: ``roomprobe path``
as user ``nobody`` (no capabilities: what a technician runs), ``mtr --report -n -c N -G 1`` as
root (mtr-tiny needs its raw sockets). Prints each tool's wall time and the ratio, and, for the
lossy case, both tools' loss at the destination. Goal: roomprobe no slower than mtr (ratio <= 1.2)
for the same rounds; each run includes the interpreter's start-up (about 0.3 s for roomprobe).

    sudo .venv/bin/python bench/path.py [--rounds 10] [--interval 1.0] [--quick]

--quick: 5 rounds at 0.2 s on the clean path only (a smoke run, a few seconds).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from lab import lab_unavailable_reason  # noqa: E402
from pathlab import ZOOM, PathLab, parse_mtr  # noqa: E402


def _loss(path: dict) -> float:
    dest = path.get("destination") or {}
    return 100.0 if dest.get("loss_pct") is None else float(dest["loss_pct"])


def one(pl: PathLab, rounds: int, interval: float) -> dict[str, float]:
    t0 = time.monotonic()
    r = pl.roomprobe("path", ZOOM, "-c", str(rounds), "-i", str(interval), "--no-mtu", "--format", "json")
    ours = time.monotonic() - t0
    path = json.loads(r.stdout)["probes"][0]["evidence"]["paths"][0]
    t0 = time.monotonic()
    out = pl.run("room", ["mtr", "--report", "-n", "-c", str(rounds), "-G", "1", "-i", str(interval), ZOOM],
                 timeout=60 + 3 * rounds).stdout
    theirs = time.monotonic() - t0
    mtr = parse_mtr(out)
    return {"roomprobe_s": ours, "mtr_s": theirs, "ratio": ours / theirs,
            "roomprobe_loss": _loss(path),
            "mtr_loss": mtr[-1]["loss"] if mtr else 100.0, "hops": len(path["hops"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--quick", action="store_true", help="5 rounds at 0.2 s, clean path only")
    args = ap.parse_args()
    if (why := lab_unavailable_reason()) is not None:
        sys.exit(f"bench/path.py: {why}")
    rounds, interval = (5, 0.2) if args.quick else (args.rounds, args.interval)
    cases = ["clean"] if args.quick else ["clean", "loss-1-in-5-from-hop-4", "silent-hop-2"]
    print(f"{'case':<24} {'rounds':>6} {'roomprobe s':>12} {'mtr s':>8} {'ratio':>6} {'loss rp/mtr':>12}")
    for case in cases:
        with PathLab() as pl:
            if case.startswith("loss"):
                pl.drop_share_in("r4", 5)  # per-TTL counters: 10 rounds lose exactly 2 for each tool
            elif case.startswith("silent"):
                pl.no_icmp("r2")
            res = one(pl, rounds, interval)
        print(f"{case:<24} {rounds:>6} {res['roomprobe_s']:>12.2f} {res['mtr_s']:>8.2f} {res['ratio']:>6.2f} "
              f"{res['roomprobe_loss']:>5.1f}/{res['mtr_loss']:<5.1f}")


if __name__ == "__main__":
    main()
