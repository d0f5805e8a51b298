#!/usr/bin/env python3
"""``roomprobe sweep`` against ``nmap -n -Pn -p 9090 -T4`` on 1000 addresses of one lab subnet.

Builds the namespace lab (root needed; tests/sweeplab.py): a /22 with rooms that listen on
9090, refuse it, drop it (nftables) or do not exist, then runs both tools from the same scanner
namespace on the same list in the same run and prints their wall times, the ratio (goal: the
sweep within 2x of nmap) and how many port states agree.

    sudo python bench/sweep.py [--open 400 --refused 300 --dropped 250 --absent 50] [--timeout 2.5] [--quick]

``--quick`` (24 addresses) proves the bench still works; the ratio needs the full list.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from lab import Lab, lab_unavailable_reason  # noqa: E402
from sweeplab import agreement, build, states_of  # noqa: E402

QUICK = {"open": 10, "refused": 6, "dropped": 6, "absent": 2, "timeout": 1.5}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for kind, n in (("open", 400), ("refused", 300), ("dropped", 250), ("absent", 50)):
        ap.add_argument(f"--{kind}", type=int, default=n)
    ap.add_argument("--timeout", type=float, default=2.5, help="roomprobe sweep --timeout")
    ap.add_argument("--quick", action="store_true",
                    help="a short run proving the bench works (tests/test_benches.py): 24 addresses")
    args = ap.parse_args()
    if args.quick:  # its own defaults; flags given explicitly still win
        ap.set_defaults(**QUICK)
        args = ap.parse_args()
    if (why := lab_unavailable_reason()) is not None:
        sys.exit(f"bench/sweep.py: {why}")
    counts = {k: getattr(args, k) for k in ("open", "refused", "dropped", "absent")}
    with Lab() as lab:
        sl = build(lab, counts)
        addrs = sl.addresses()
        listfile = lab.tmp / "rooms.txt"
        listfile.write_text("\n".join(addrs))
        nmap_states, nmap_s = sl.nmap(addrs)
        run = sl.scanner.roomprobe("sweep", *addrs, "--format", "json", "--timeout", str(args.timeout),
                                   timeout=300)
        if run.rc not in (0, 1, 2):
            sys.exit(f"sweep failed (exit {run.rc}): {run.stderr[-500:]}")
        data = json.loads(run.stdout)
        ours = states_of(data)
        why = {r["targets"]["room"]: r["probes"][0]["summary"] for r in data["rooms"]}
        # the second nmap run shows how much nmap itself varies between runs
        _again, nmap2_s = sl.nmap(addrs)
    same, diff = agreement(ours, nmap_states)
    by_kind: dict[str, dict[str, int]] = {}
    for a, kind in sl.expected.items():
        by_kind.setdefault(kind, {}).setdefault(ours.get(a, "?"), 0)
        by_kind[kind][ours.get(a, "?")] += 1
    print(f"addresses: {len(addrs)} on one /22 ({counts})")
    print(f"nmap -n -Pn -p 9090 -T4   {nmap_s:7.2f} s  (second run {nmap2_s:.2f} s)")
    print(f"roomprobe sweep           {run.seconds:7.2f} s  (timeout {args.timeout} s, incl. start-up)")
    print(f"ratio sweep / nmap        {run.seconds / nmap_s:7.2f}  (goal <= 2)")
    print(f"port states agreeing      {same}/{len(addrs)}")
    for a, o, n in diff[:10]:
        print(f"  differ: {a} roomprobe={o} nmap={n} (lab: {sl.expected[a]}): {why.get(a)}")
    print("roomprobe's state per lab kind: " + json.dumps(by_kind, sort_keys=True))


if __name__ == "__main__":
    main()
