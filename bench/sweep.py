#!/usr/bin/env python3
"""``roomprobe sweep`` against ``nmap -n -Pn -p 9090 -T4`` on the same lab lists, same run.

Builds the namespace lab (root needed; tests/sweeplab.py) and, from one scanner namespace, runs
both tools on the same list, alternating, ``--runs`` times each:

  plain   1000 addresses of one /22: 400 listening on 9090, 300 refused, 250 dropped
          (nftables), 50 absent
  mixed   1000 addresses: on the link, open/refused/dropped/absent, ICMP admin-prohibited
          rejects (rate-limited by the kernel) and a rate-limited link (tbf 256 kbit/s);
          behind a router over a 1 Mbit/s link (tbf), open/refused/dropped/absent
          (sch_netem, for a plain delay, is not on this kernel)
  big     10,000 addresses in one run behind a router that answers for all of them (AnyIP:
          open, refused by a reset, dropped), for the sweep's wall time and peak memory (the
          goal: within 150 MB); nmap is not run on it

It prints per list the wall times, the ratio sweep / nmap (goal: <= 1.0), and how many port
states agree with nmap's (roomprobe's ``unreachable`` is nmap's ``filtered``: nmap cannot tell a
dead host from a drop). The load average is printed too: the machine may be shared.

    sudo python bench/sweep.py [--quick] [--runs 3] [--timeout 2.5] [--lists plain,mixed,big]
                               [--open 400 --refused 300 --dropped 250 --absent 50] [--big 10000]

``--quick`` proves the bench works (tests/test_benches.py): one run of a 24-address plain list, a
50-address mixed list and 1,000 big; explicit flags still win. The ratio needs the full lists.

Linux keeps one neighbour table for every namespace (gc_thresh3 = 1024 by default): a list of
1000 on-link addresses overflows it when other labs run, and both tools then lose answers. The
bench raises gc_thresh2/3 (never lowers them) and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import _args  # noqa: E402
from lab import Lab, lab_unavailable_reason, sh  # noqa: E402
from sweeplab import MIXED, agreement, build, states_of  # noqa: E402

PLAIN = {"open": 400, "refused": 300, "dropped": 250, "absent": 50}
QUICK_PLAIN = {"open": 10, "refused": 6, "dropped": 6, "absent": 2}
BIG_NET = "198.19.0"  # 198.19.0.0/18 on the router's loopback (AnyIP)
BIG_FW = """
table ip bigfw {
  chain input { type filter hook input priority 0; policy accept;
    ip daddr 198.19.0.0/18 tcp dport 9090 ip daddr & 0.0.0.3 == 0.0.0.1 reject with tcp reset
    ip daddr 198.19.0.0/18 tcp dport 9090 ip daddr & 0.0.0.3 == 0.0.0.2 drop
  }
}
"""
LISTENER = (
    "import socket\n"
    "s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
    "s.bind(('0.0.0.0',9090));s.listen(4096);print('listening',flush=True)\n"
    "while True:\n c,_=s.accept();c.close()\n"
)


def raise_neighbour_limits(need: int) -> str:
    """gc_thresh2/3 at least ``need`` (global: every namespace shares the table); what was done."""
    done = []
    for key, want in (("gc_thresh2", need), ("gc_thresh3", 2 * need)):
        path = Path(f"/proc/sys/net/ipv4/neigh/default/{key}")
        have = int(path.read_text())
        if have < want:
            path.write_text(str(want))
            done.append(f"{key} {have} -> {want}")
    return ", ".join(done) or "neighbour limits already high enough"


def scaled(counts: dict[str, int], factor: float) -> dict[str, int]:
    return {k: max(1, round(n * factor)) for k, n in counts.items()}


def sweep_run(lab: Lab, scanner, targets: list[str], timeout: float) -> tuple[dict, float, int]:  # type: ignore[no-untyped-def]
    """One sweep from the scanner: (its JSON, wall seconds, peak RSS in kB via wait4)."""
    inv = lab.tmp / "rooms.csv"
    inv.write_text("address\n" + "\n".join(targets) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update({"ROOMPROBE_CONFIG": str(lab.config_path), "NO_COLOR": "1",
                "ROOMPROBE_HISTORY_DB": str(lab.tmp / "history.sqlite3")})
    out = lab.tmp / "sweep.json"
    t0 = time.monotonic()
    with out.open("wb") as fh:
        proc = subprocess.Popen(scanner.exec_prefix() + [sys.executable, "-m", "roomprobe", "sweep",
                                                         str(inv), "--format", "json", "--timeout",
                                                         str(timeout)],
                                stdout=fh, stderr=subprocess.PIPE, env=env)
        _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - t0
    rc = os.waitstatus_to_exitcode(status)
    proc.returncode = rc
    if rc not in (0, 1, 2):
        sys.exit(f"sweep failed (exit {rc}): {proc.stderr.read().decode()[-500:] if proc.stderr else ''}")
    return json.loads(out.read_text()), seconds, int(usage.ru_maxrss)


def compare(name: str, counts: dict[str, int], runs: int, timeout: float) -> list[float]:
    """Build one list, run nmap and the sweep alternately; print and return the ratios."""
    ratios = []
    with Lab() as lab:
        sl = build(lab, counts)
        addrs = sl.addresses()
        print(f"\n== {name}: {len(addrs)} addresses {json.dumps(counts)}")
        for k in range(runs):
            nmap_states, nmap_s = sl.nmap(addrs)
            data, sweep_s, rss = sweep_run(lab, sl.scanner, addrs, timeout)
            ours = states_of(data)
            same, diff = agreement(ours, nmap_states)
            ratios.append(sweep_s / nmap_s)
            print(f"-- run {k + 1} (load average {os.getloadavg()[0]:.1f})")
            print(f"nmap -n -Pn -p 9090 -T4   {nmap_s:7.2f} s")
            print(f"roomprobe sweep           {sweep_s:7.2f} s  (peak {rss / 1024:.0f} MB, incl. start-up)")
            print(f"ratio sweep / nmap        {sweep_s / nmap_s:7.2f}  (goal <= 1.0)")
            print(f"port states agreeing      {same}/{len(addrs)}")
            why = {r["targets"]["room"]: r["probes"][0]["summary"] for r in data["rooms"]}
            for a, o, n in diff[:8]:
                print(f"  differ: {a} roomprobe={o} nmap={n} (lab: {sl.expected[a]}): {why.get(a)}")
        by_kind: dict[str, dict[str, int]] = {}
        for a, kind in sl.expected.items():
            by_kind.setdefault(kind, {}).setdefault(ours.get(a, "?"), 0)
            by_kind[kind][ours.get(a, "?")] += 1
        print("roomprobe's state per lab kind (last run): " + json.dumps(by_kind, sort_keys=True))
    return ratios


def big(n: int, timeout: float) -> None:
    """``n`` routed addresses in one sweep: wall time and peak memory."""
    with Lab() as lab:
        sl = build(lab, {"r-open": 1})  # the scanner and the router (one routed host)
        rtr = lab.prefix + "srtr"
        sh(["ip", "-n", rtr, "route", "add", "local", f"{BIG_NET}.0/18", "dev", "lo"])
        sh(["ip", "netns", "exec", rtr, "nft", "-f", "-"], input=BIG_FW)
        sh(["ip", "-n", sl.scanner.ns, "route", "add", f"{BIG_NET}.0/18", "via", "198.18.3.254"])
        proc = subprocess.Popen(["ip", "netns", "exec", rtr, sys.executable, "-c", LISTENER],
                                stdout=subprocess.PIPE, text=True)
        lab.procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "listening"
        targets = [f"198.19.{(i + 1) // 256}.{(i + 1) % 256}" for i in range(n)]
        data, seconds, rss = sweep_run(lab, sl.scanner, targets, timeout)
        by_state = data["summary"]["by_state"]
        print(f"\n== big: {n} routed addresses in one run: {seconds:.2f} s, peak {rss / 1024:.0f} MB "
              f"(goal: within 150 MB), states {by_state}, load {os.getloadavg()[0]:.1f}")


def main() -> None:
    def add(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("--runs", type=int, default=3, help="runs per list (nmap and sweep alternate)")
        ap.add_argument("--timeout", type=float, default=2.5, help="roomprobe sweep --timeout")
        ap.add_argument("--lists", default="plain,mixed,big", help="which lists: plain,mixed,big")
        ap.add_argument("--big", type=int, default=10000, help="addresses in the big list")
        for kind, n in PLAIN.items():
            ap.add_argument(f"--{kind}", type=int, default=n, help=f"plain list: {kind} rooms")
    args = _args.parse(__doc__, add, {"runs": 1, "big": 1000, **QUICK_PLAIN},
                       "one run of each list, small lists")
    _args.need_lab("sweep.py", lab_unavailable_reason())
    lists = set(args.lists.split(","))
    print(f"load average {os.getloadavg()}; {os.cpu_count()} cores; {raise_neighbour_limits(4096)}")
    summary = {}
    if "plain" in lists:
        summary["plain"] = compare("plain", {k: getattr(args, k) for k in PLAIN}, args.runs,
                                   args.timeout)
    if "mixed" in lists:
        summary["mixed"] = compare("mixed", scaled(MIXED, 0.05 if args.quick else 1.0), args.runs,
                                   args.timeout)
    if "big" in lists:
        big(args.big, args.timeout)
    for name, ratios in summary.items():
        print(f"ratio sweep / nmap, {name}: " + ", ".join(f"{r:.2f}" for r in ratios)
              + f" (worst {max(ratios):.2f}; goal <= 1.0)")


if __name__ == "__main__":
    main()
