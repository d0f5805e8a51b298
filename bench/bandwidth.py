#!/usr/bin/env python3
"""roomprobe's bandwidth probe against iperf3, on the same shaped lab link, in the same run.

Builds the namespace lab (root needed): a room running ``roomprobe serve`` and ``iperf3 -s``, a
controller running ``roomprobe check --peer`` and ``iperf3 -c``. For each rate the room's and the
controller's eth0 egress are shaped with ``tc tbf`` (so both directions are limited), then each
direction is measured by both tools. Prints roomprobe/iperf3 per rate and direction, and
roomprobe's wall time against its budget. Goal: within 10% at every shaped rate, >= 90% unshaped.

    sudo .venv/bin/python bench/bandwidth.py [--rates 2,10,50,0] [--duration 10] [--quick]

``--quick`` (one shaped rate, short runs: about 20 s) proves the bench still works; its figures
are not the comparison.

Rate 0 means unshaped (veth at memory speed: bound by this machine's CPU, so noisy when other
work runs on it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import _args  # noqa: E402
from lab import Host, Lab, lab_unavailable_reason  # noqa: E402

TOKEN = "bench-token-0123"
QUICK = {"rates": "10", "duration": 3.0, "iperf_s": 2}


def shape(host: Host, mbit: int) -> None:
    host.run(["tc", "qdisc", "del", "dev", "eth0", "root"], check=False)
    if mbit:
        burst = f"{max(32, mbit * 4)}kbit"
        host.run(["tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", f"{mbit}mbit",
                  "burst", burst, "latency", "400ms"])


def iperf(ctrl: Host, server: str, reverse: bool, seconds: int = 5) -> float:
    """iperf3's receiver-side Mbps, ``seconds`` s, first second omitted (its own warm-up handling)."""
    cmd = ["iperf3", "-c", server, "-J", "-t", str(seconds), "-O", "1"] + (["-R"] if reverse else [])
    out = json.loads(ctrl.run(cmd, timeout=30).stdout)
    return out["end"]["sum_received"]["bits_per_second"] / 1e6


def roomprobe(ctrl: Host, peer: str, duration: float) -> dict:
    run = ctrl.roomprobe("check", "--peer", peer, "--peer-token", TOKEN, "--only", "bandwidth",
                         "--format", "json", "--set", f"bandwidth.duration={duration}", timeout=90)
    ev = run.probe("bandwidth")["evidence"]
    ev["wall_s"] = run.seconds
    return ev


def main() -> None:
    def add(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("--rates", default="2,10,50,0", help="Mbit/s, comma-separated; 0 = unshaped")
        ap.add_argument("--duration", type=float, default=10.0, help="roomprobe's bandwidth budget")
        ap.add_argument("--iperf-s", type=int, default=5, help="iperf3's duration per direction")
    args = _args.parse(__doc__, add, QUICK, "one rate, short runs")
    _args.need_lab("bandwidth.py", lab_unavailable_reason())
    rates = [int(r) for r in args.rates.split(",")]
    rows = []
    with Lab() as lab:
        room = lab.add_host("room", "lan", 20)
        ctrl = lab.add_host("ctrl", "lan", 30)
        room.popen([sys.executable, "-m", "roomprobe", "serve", "--bind", room.addr, "--token", TOKEN,
                    "--duration", "3600", "--max-mb", "10000000"])  # unshaped runs move ~15 GB
        room.popen(["iperf3", "-s", "-B", room.addr])
        time.sleep(1.0)
        for mbit in rates:
            shape(room, mbit)
            shape(ctrl, mbit)
            down_i = iperf(ctrl, room.addr, True, args.iperf_s)
            up_i = iperf(ctrl, room.addr, False, args.iperf_s)
            ev = roomprobe(ctrl, room.addr, args.duration)
            rows.append((mbit, ev["download"]["mbps"], down_i, ev["upload"]["mbps"], up_i, ev))
    print(f"{'rate':>9} | {'down rp':>8} {'iperf3':>8} {'ratio':>6} | {'up rp':>8} {'iperf3':>8} "
          f"{'ratio':>6} | {'rp wall s':>9} {'MB':>7} {'idle ms':>7} {'+load ms':>8}")
    for mbit, d, di, u, ui, ev in rows:
        name = f"{mbit} Mbit" if mbit else "unshaped"
        added = max((ev[k]["loaded"]["median_ms"] or 0) for k in ("download", "upload"))
        print(f"{name:>9} | {d:>8.2f} {di:>8.2f} {d / di:>6.2f} | {u:>8.2f} {ui:>8.2f} {u / ui:>6.2f} | "
              f"{ev['wall_s']:>9.1f} {ev['bytes'] / 1e6:>7.1f} {ev['idle']['median_ms']:>7} "
              f"{added - (ev['idle']['median_ms'] or 0):>8.1f}")
    print(f"roomprobe budget: {args.duration:g} s for idle latency and both directions "
          "(wall includes Python start-up and the other quick probes' set-up)")


if __name__ == "__main__":
    main()
