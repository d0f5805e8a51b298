#!/usr/bin/env python3
"""roomprobe's quality probe against irtt (Debian package ``irtt``) on the same faulted lab link.

Builds the namespace lab (root needed): a room running ``roomprobe serve`` and ``irtt server``,
a controller running ``roomprobe check --only quality --peer`` and ``irtt client``. For each
scenario the same faults are applied to both tools' ports, then each tool sends the same
audio-like flow (200-byte packets every 20 ms, DSCP 56) for the same time, one after the other.
Prints, per figure, irtt's value, roomprobe's, and the difference. Targets: loss within 0.5
percentage points and jitter (mean IPDV) within 2 ms of irtt.

    sudo .venv/bin/python bench/quality.py [--duration 15] [--scenarios clean,loss0.5,...]

sch_netem is not on this kernel, so faults are nftables random drops (loss, per direction) and an
htb class that a random share of packets is steered into (delay variation and reordering).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from lab import Host, Lab, lab_unavailable_reason  # noqa: E402

TOKEN = "bench-token-quality"
IRTT_PORT = 2112
PORTS = "{ 9095, 2112 }"
SCENARIOS = {
    "clean": {},
    "loss0.5": {"loss_x10": 5},
    "loss2": {"loss_x10": 20},
    "loss5": {"loss_x10": 50},
    "jitter": {"slow_pct": 15},
}


def fault(ctrl: Host, room: Host, loss_x10: int = 0, slow_pct: int = 0) -> None:
    for h in (ctrl, room):
        h.run(["nft", "flush", "ruleset"], check=False)
        h.run(["tc", "qdisc", "del", "dev", "eth0", "root"], check=False)
    if loss_x10:
        for h in (ctrl, room):
            h.nft(f"""table inet lossy {{ chain out {{ type filter hook output priority 0;
                udp dport {PORTS} numgen random mod 1000 < {loss_x10} drop
                udp sport {PORTS} numgen random mod 1000 < {loss_x10} drop
            }}
            }}""")
    if slow_pct:  # upstream only: a share of the controller's packets waits behind a slow class
        for cmd in (["qdisc", "add", "dev", "eth0", "root", "handle", "1:", "htb", "default", "10"],
                    ["class", "add", "dev", "eth0", "parent", "1:", "classid", "1:10", "htb", "rate",
                     "1gbit"],
                    ["class", "add", "dev", "eth0", "parent", "1:", "classid", "1:20", "htb", "rate",
                     "40kbit", "ceil", "40kbit", "burst", "1600", "cburst", "1600"]):
            ctrl.run(["tc", *cmd])
        ctrl.nft(f"""table inet slow {{ chain out {{ type filter hook output priority 0;
            udp dport {PORTS} numgen random mod 100 < {slow_pct} meta priority set 1:20
            }}
            }}""")


def irtt(ctrl: Host, room: Host, duration: float) -> dict[str, float]:
    out = ctrl.run(["irtt", "client", "-i", "20ms", "-d", f"{duration:g}s", "-l", "200", "--dscp=0xe0",
                    "--wait=1s", "-Q", "-o", "-", f"{room.addr}:{IRTT_PORT}"], timeout=duration + 30)
    st = json.loads(out.stdout)["stats"]

    def ms(block: str, key: str) -> float:
        return st.get(block, {}).get(key, 0) / 1e6

    return {"up_loss_pct": st["upstream_loss_percent"], "down_loss_pct": st["downstream_loss_percent"],
            "up_jitter_ms": ms("ipdv_send", "mean"), "down_jitter_ms": ms("ipdv_receive", "mean"),
            "rtt_p50_ms": ms("rtt", "median"), "rtt_max_ms": ms("rtt", "max")}


def roomprobe(ctrl: Host, room: Host, duration: float) -> dict[str, float]:
    out = ctrl.roomprobe("check", "--format", "json", "--only", "quality", "--peer", room.addr,
                         "--peer-token", TOKEN, "--set", f"quality.duration={duration:g}",
                         "--set", "quality.video_kbps=0", "--set", "quality.mtu=false",
                         "--set", "quality.timeout=60", timeout=duration + 60)
    a = out.probe("quality")["evidence"]["flows"]["audio"]
    return {"up_loss_pct": a["up"]["loss_pct"], "down_loss_pct": a["down"]["loss_pct"],
            "up_jitter_ms": a["up"]["ipdv_mean_ms"], "down_jitter_ms": a["down"]["ipdv_mean_ms"],
            "rtt_p50_ms": a["rtt_ms"]["p50"], "rtt_max_ms": a["rtt_ms"]["max"],
            "rfc3550_up_ms": a["up"]["jitter_ms"], "rfc3550_down_ms": a["down"]["jitter_ms"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    args = ap.parse_args()
    why = lab_unavailable_reason() or (None if shutil.which("irtt") else "irtt is not installed "
                                       "(apt-get install irtt)")
    if why:
        print(f"bench/quality.py: {why}", file=sys.stderr)
        return 2
    with Lab() as lab:
        room = lab.add_host("room", "lan", 20)
        ctrl = lab.add_host("ctrl", "lan", 30)
        serve = room.popen([sys.executable, "-m", "roomprobe", "serve", "--bind", room.addr, "--token",
                            TOKEN, "--duration", "3600"], stdout=subprocess.PIPE, text=True)
        assert serve.stdout is not None and TOKEN in serve.stdout.readline()
        server = None
        print(f"{'scenario':9} {'figure':15} {'irtt':>9} {'roomprobe':>10} {'diff':>8}")
        worst = {"loss": 0.0, "jitter": 0.0}
        for name in args.scenarios.split(","):
            fault(ctrl, room, **SCENARIOS[name])
            if server is None or server.poll() is not None:  # it has been seen to exit mid-bench
                server = room.popen(["irtt", "server", "-b", f"{room.addr}:{IRTT_PORT}"],
                                    stderr=subprocess.PIPE, text=True)
                time.sleep(0.5)
            try:
                a = irtt(ctrl, room, args.duration)
            except subprocess.CalledProcessError as exc:  # e.g. its handshake lost: say so, go on
                print(f"{name:9} irtt failed: {(exc.stderr or '').strip()[:200]}")
                continue
            b = roomprobe(ctrl, room, args.duration)
            for key in a:
                diff = b[key] - a[key]
                print(f"{name:9} {key:15} {a[key]:9.2f} {b[key]:10.2f} {diff:+8.2f}")
                kind = "loss" if "loss" in key else "jitter" if "jitter" in key else None
                if kind:
                    worst[kind] = max(worst[kind], abs(diff))
            rfc = f"{b['rfc3550_up_ms']:.2f}/{b['rfc3550_down_ms']:.2f}"
            print(f"{name:9} {'rfc3550 up/down':15} {'':>9} {rfc:>10}")
        print(f"worst |difference|: loss {worst['loss']:.2f} pp (target 0.5), "
              f"jitter {worst['jitter']:.2f} ms (target 2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
