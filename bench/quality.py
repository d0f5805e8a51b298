#!/usr/bin/env python3
"""roomprobe's quality probe against irtt (Debian package ``irtt``) on the same faulted lab link.

Builds the namespace lab (root needed): a room running ``roomprobe serve`` and one ``irtt server``
for the whole bench, a controller running ``roomprobe check --only quality --peer`` and
``irtt client``. In each scenario both tools run AT THE SAME TIME, side by side, through the same
fault, each with the same audio-like flow (200-byte UDP payloads every 20 ms, DSCP 56) for the
same duration. Prints, per figure, irtt's value, roomprobe's and the difference. Targets: loss
within 0.5 percentage points and jitter (mean IPDV) within 2 ms of irtt.

    sudo .venv/bin/python bench/quality.py [--duration 20] [--scenarios clean,loss0.5,...] [--quick]

``--quick`` (the ``loss5`` scenario for 4 s) proves the bench still works, not the targets.

sch_netem is not on this kernel, so the faults are built from nftables and tc's htb/tbf:

- ``lossN``: deterministic loss, every k-th packet dropped (nft ``numgen inc mod k``), with a
  counter of its own per tool and direction. Both tools then face exactly the same loss rate, so
  a difference is a measurement difference, not two random draws (random drops of 2% over 1000
  packets differ by +-0.45 pp between two flows by chance alone).
- ``loss2r``: random drops (nft ``numgen random``), both tools at once, three times as long
  (``LONGER``): the difference here includes that sampling noise; the line prints its
  standard deviation.
- ``jitter``: real queueing delay. Each host's link is a tbf at 4 Mbit/s, and a competing flow
  sends a 30 KB burst (25 x 1200 B) each way every 50-150 ms at random, like video frames: a
  burst takes ~60 ms to drain, so an audio packet waits 0-60 ms depending on where it lands.
  (Random gaps, so that both tools' packets sample the queue alike; see BURSTER.)
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import _args  # noqa: E402
from lab import Host, Lab, lab_unavailable_reason  # noqa: E402

TOKEN = "bench-token-quality"
RP_PORT = 9095
IRTT_PORT = 2112
BURST_PORT = 5001
SCENARIOS: dict[str, dict[str, int]] = {
    "clean": {},
    "loss0.5": {"every": 200},
    "loss2": {"every": 50},
    "loss5": {"every": 20},
    "loss2r": {"random_x10": 20},
    "jitter": {"bursts": 1},
}
# Random drops: each tool draws its own sample, so the difference carries chance (one standard
# deviation is sqrt(2p(1-p)/n)). Three times the packets brings it from 0.63 to 0.36 pp at 2%.
LONGER = {"loss2r": 3.0}
QUICK = {"duration": 4.0, "scenarios": "loss5"}
# A burst sender: 25 x 1200 bytes to the other host's BURST_PORT (dropped there), one burst every
# 50-150 ms at random (100 ms on average). A fixed 100 ms period is 5 audio intervals exactly: each
# flow then meets the bursts at its own fixed phase, so two flows through the same queue saw
# different delays (medians 27 vs 64 ms, IPDV 2.9 ms apart) for reasons of timing, not measurement.
BURSTER = """
import random, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((sys.argv[1], int(sys.argv[2])))
payload = bytes(1200)
t = time.monotonic()
while True:
    for _ in range(25):
        try:
            s.send(payload)
        except OSError:
            pass
    t = max(t + random.uniform(0.05, 0.15), time.monotonic())
    time.sleep(max(0.0, t - time.monotonic()))
"""


def reset(hosts: tuple[Host, ...]) -> None:
    for h in hosts:
        h.run(["nft", "flush", "ruleset"], check=False)
        h.run(["tc", "qdisc", "del", "dev", "eth0", "root"], check=False)


def fault(ctrl: Host, room: Host, every: int = 0, random_x10: int = 0, bursts: int = 0) -> list:
    """Apply one scenario's fault; returns the processes it started (stopped by the caller)."""
    reset((ctrl, room))
    procs = []
    # Drops happen on the receiving host's input hook: a drop in the sender's output hook makes
    # send() fail with EPERM, which ends irtt's test early instead of counting as loss.
    if every:  # upstream drops at the room, downstream at the controller; one counter per rule
        for h, key in ((room, "dport"), (ctrl, "sport")):
            h.nft(f"""table inet lossy {{ chain inp {{ type filter hook input priority 0;
                udp {key} {RP_PORT} numgen inc mod {every} == {every - 1} drop
                udp {key} {IRTT_PORT} numgen inc mod {every} == {every - 1} drop
            }}
            }}""")
    if random_x10:
        for h, key in ((room, "dport"), (ctrl, "sport")):
            h.nft(f"""table inet lossy {{ chain inp {{ type filter hook input priority 0;
                udp {key} {{ {RP_PORT}, {IRTT_PORT} }} numgen random mod 1000 < {random_x10} drop
            }}
            }}""")
    if bursts:
        for h, other in ((ctrl, room), (room, ctrl)):
            h.run(["tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", "4mbit",
                   "burst", "3000", "latency", "400ms"])
            h.nft(f"""table inet sink {{ chain sinkin {{ type filter hook input priority 0;
                udp dport {BURST_PORT} drop
            }}
            }}""")
            procs.append(h.popen([sys.executable, "-c", BURSTER, other.addr, str(BURST_PORT)]))
        time.sleep(0.5)
    return procs


def irtt_cmd(room: Host, duration: float) -> list[str]:
    return ["irtt", "client", "-i", "20ms", "-d", f"{duration:g}s", "-l", "200", "--dscp=0xe0",
            "--wait=1s", "-Q", "-o", "-", f"{room.addr}:{IRTT_PORT}"]


def irtt_figures(stdout: str) -> dict[str, float]:
    st = json.loads(stdout)["stats"]

    def ms(block: str, key: str) -> float:
        return st.get(block, {}).get(key, 0) / 1e6

    return {"up_loss_pct": st["upstream_loss_percent"], "down_loss_pct": st["downstream_loss_percent"],
            "up_jitter_ms": ms("ipdv_send", "mean"), "down_jitter_ms": ms("ipdv_receive", "mean"),
            "rtt_p50_ms": ms("rtt", "median"), "rtt_max_ms": ms("rtt", "max"),
            "packets": st.get("packets_sent", 0)}


def roomprobe(ctrl: Host, room: Host, duration: float) -> dict[str, float]:
    out = ctrl.roomprobe("check", "--format", "json", "--only", "quality", "--peer", room.addr,
                         "--peer-token", TOKEN, "--set", f"quality.duration={duration:g}",
                         "--set", "quality.video_kbps=0", "--set", "quality.mtu=false",
                         "--set", "quality.timeout=90", "--timeout", str(int(duration + 60)),
                         timeout=duration + 90)
    a = out.probe("quality")["evidence"]["flows"]["audio"]
    return {"up_loss_pct": a["up"]["loss_pct"], "down_loss_pct": a["down"]["loss_pct"],
            "up_jitter_ms": a["up"]["ipdv_mean_ms"], "down_jitter_ms": a["down"]["ipdv_mean_ms"],
            "rtt_p50_ms": a["rtt_ms"]["p50"], "rtt_max_ms": a["rtt_ms"]["max"],
            "packets": a["sent"],
            "rfc3550_up_ms": a["up"]["jitter_ms"], "rfc3550_down_ms": a["down"]["jitter_ms"]}


def side_by_side(ctrl: Host, room: Host, duration: float) -> tuple[dict[str, float], dict[str, float]]:
    """irtt and roomprobe at the same time through the same fault."""
    client = ctrl.popen(irtt_cmd(room, duration), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        text=True)
    b = roomprobe(ctrl, room, duration)
    out, err = client.communicate(timeout=duration + 30)
    if client.returncode != 0:
        raise RuntimeError(f"irtt client failed: {err.strip()[:200]}")
    return irtt_figures(out), b


def one_after_the_other(ctrl: Host, room: Host, duration: float) -> tuple[dict[str, float], dict[str, float]]:
    """irtt alone, then roomprobe alone, through the same (random) fault.

    Side by side on this 2-core machine the two clients compete for the CPU with the bursters:
    in some runs irtt's round trips then read about twice roomprobe's (median 71 vs 37 ms), while
    each tool alone read the same (33.7 vs 31.6, 32.6 vs 32.6 ms). So the queueing scenario's
    RTT and jitter are also measured one tool at a time."""
    out = ctrl.run(irtt_cmd(room, duration), timeout=duration + 30, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"irtt client failed: {out.stderr.strip()[:200]}")
    return irtt_figures(out.stdout), roomprobe(ctrl, room, duration)


def main() -> int:
    def add(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("--duration", type=float, default=20.0)
        ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    args = _args.parse(__doc__, add, QUICK, "loss5 for 4 s")
    why = lab_unavailable_reason() or (None if shutil.which("irtt") else "irtt is not installed "
                                       "(apt-get install irtt)")
    if why:
        print(f"bench/quality.py: {why}", file=sys.stderr)
        return 2
    with Lab() as lab:
        room = lab.add_host("room", "lan", 20)
        ctrl = lab.add_host("ctrl", "lan", 30)
        room.serve(TOKEN, duration=3600)
        # One irtt server for the whole bench. Its log goes to a file: a pipe nobody reads fills
        # up and stalls it. No idle timeout, no test-length cap.
        log = open(Path(lab.config_path).with_name("irtt-server.log"), "w")  # noqa: SIM115
        server = room.popen(["irtt", "server", "-b", f"{room.addr}:{IRTT_PORT}", "--timeout=0",
                             "-d", "0"], stdout=log, stderr=subprocess.STDOUT)
        time.sleep(0.5)
        print(f"{'scenario':9} {'figure':15} {'irtt':>9} {'roomprobe':>10} {'diff':>8}")
        worst = {"loss": 0.0, "jitter": 0.0}
        for name in args.scenarios.split(","):
            procs = fault(ctrl, room, **SCENARIOS[name])
            try:
                if server.poll() is not None:
                    print(f"{name:9} irtt server exited ({server.returncode}); see its log")
                    break
                try:
                    a, b = side_by_side(ctrl, room, args.duration * LONGER.get(name, 1.0))
                except (RuntimeError, subprocess.SubprocessError) as exc:
                    print(f"{name:9} {exc}")
                    continue
            finally:
                if SCENARIOS[name].get("bursts"):  # show that the queues really filled
                    for h in (ctrl, room):
                        q = h.run(["tc", "-s", "qdisc", "show", "dev", "eth0"], check=False).stdout
                        print(f"{name:9} {h.name} qdisc: {' '.join(q.split())[:160]}")
                for p in procs:
                    p.terminate()
                    p.wait(timeout=5)
            for key in a:
                if key == "packets":
                    continue
                diff = b[key] - a[key]
                print(f"{name:9} {key:15} {a[key]:9.2f} {b[key]:10.2f} {diff:+8.2f}")
                kind = "loss" if "loss" in key else "jitter" if "jitter" in key else None
                if kind and name != "loss2r":  # random drops: the difference is mostly chance
                    worst[kind] = max(worst[kind], abs(diff))
            if SCENARIOS[name].get("bursts"):
                procs = fault(ctrl, room, **SCENARIOS[name])
                try:
                    a2, b2 = one_after_the_other(ctrl, room, args.duration)
                    for key in ("rtt_p50_ms", "rtt_max_ms", "up_jitter_ms", "down_jitter_ms"):
                        print(f"{name:9} {key + ' (alone)':22} {a2[key]:9.2f} {b2[key]:10.2f} "
                              f"{b2[key] - a2[key]:+8.2f}")
                except (RuntimeError, subprocess.SubprocessError) as exc:
                    print(f"{name:9} one after the other: {exc}")
                finally:
                    for p in procs:
                        p.terminate()
                        p.wait(timeout=5)
            rfc = f"{b['rfc3550_up_ms']:.2f}/{b['rfc3550_down_ms']:.2f}"
            print(f"{name:9} {'rfc3550 up/down':15} {'':>9} {rfc:>10}")
            print(f"{name:9} {'packets sent':15} {a['packets']:9.0f} {b['packets']:10.0f}")
            if SCENARIOS[name].get("random_x10"):
                p, n = SCENARIOS[name]["random_x10"] / 1000, max(1.0, min(a["packets"], b["packets"]))
                print(f"{name:9} chance alone: sd of the difference {100 * math.sqrt(2 * p * (1 - p) / n):.2f} pp")
        alive = "alive" if server.poll() is None else f"exited {server.returncode}"
        print(f"irtt server {alive} at the end")
        print(f"worst |difference| (deterministic faults): loss {worst['loss']:.2f} pp (target 0.5), "
              f"jitter {worst['jitter']:.2f} ms (target 2)")
        reset((ctrl, room))
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
