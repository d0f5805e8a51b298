"""Lab reports in every format, normalised for timings: compare a tree before and after a change.

A refactor that must not change behaviour (the #22 move of net/ into host/, proxy/ and peer/, the
typed report) is checked by running this with each tree and diffing the two folders:

    sudo OLD/.venv/bin/python tests/labreports.py /tmp/before OLD/tests
    sudo .venv/bin/python tests/labreports.py /tmp/after
    diff -r /tmp/before /tmp/after

It builds one lab (tests/lab.py from TESTS_DIR, default this folder: the lab of the tree under
test) with a healthy room, a room whose firewall drops TCP 9090 and a room on another VLAN, runs
check from the controller and from each room (json, text, -v, nagios), renders each saved
report (text, markdown, html), sweeps the three rooms and an empty address (json, text, csv) and
prints explain and probes. What varies from run to run is normalised: numbers with a unit,
decimals, timestamps, MAC and link-local addresses, the lab's name prefix, and which of a
name's A or AAAA answers the dns probe took as proof (whichever came first). Two runs of one
tree compare equal; tests/test_report_golden.py keeps the renderings byte for byte in CI.
"""

import json
import re
import sys
from pathlib import Path

if len(sys.argv) not in (2, 3):
    sys.exit("usage: tests/labreports.py OUTDIR [TESTS_DIR]")
out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
sys.path.insert(0, sys.argv[2] if len(sys.argv) == 3 else str(Path(__file__).resolve().parent))
from lab import Lab  # noqa: E402

FW_DROP = """
table inet roomfw {
  chain input { type filter hook input priority 0; policy accept;
    iifname "eth0" tcp dport 9090 drop
  }
}
"""
TIMEY = re.compile(r"(duration|_ms$|^ms$|_s$|_at$|rtt|time|window|started|ended|waited|age|elapsed|"
                   r"^t$|latency|jitter|^when$|deadline|took|pid|version$)", re.I)
NUM = re.compile("|".join((
    r"fe80::[0-9a-f:]+",                              # link-local addresses (random per veth)
    r"([0-9a-f]{2}:){5}[0-9a-f]{2}",                  # MAC addresses (random per veth)
    r"rpl\d+x[0-9a-f]{4}-",                           # the lab's per-run name prefix
    r"\d+(\.\d+)?\s?(ms|s|µs)\b",                      # durations
    r"\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)?",       # timestamps
    r"\d+\.\d+",                                      # any other decimal (and dotted addresses)
)))


def norm_text(s):
    s = re.sub(r"\bAAAA\b", "A", s)
    s = re.sub(r"2001:db8::[0-9a-f]+", "203.0.113.10", s)
    return NUM.sub("N", s)


def norm_json(v, key=""):
    if isinstance(v, dict):
        return {k: norm_json(x, k) for k, x in v.items()}
    if isinstance(v, list):
        items = [norm_json(x, key) for x in v]
        # answers that race (concurrent queries) are compared as sets
        if key in ("queries", "os", "answers") and all(isinstance(x, dict) for x in items):
            return sorted(items, key=lambda x: json.dumps(x, sort_keys=True))
        return items
    if isinstance(v, (int, float)) and not isinstance(v, bool) and TIMEY.search(key):
        return "N"
    if isinstance(v, float):
        return "F"
    if isinstance(v, str):
        return norm_text(v)
    return v


def save(name, text):
    (out / name).write_text(norm_text(text))


def run(host, tag, *args, json_out=True):
    r = host.roomprobe(*args)
    save(f"{tag}.rc", f"{r.rc}\n")
    save(f"{tag}.err", r.stderr)
    if json_out and "--format" in args and args[args.index("--format") + 1] == "json":
        try:
            (out / f"{tag}.json").write_text(json.dumps(norm_json(json.loads(r.stdout)), indent=1))
        except ValueError:
            save(f"{tag}.out", r.stdout)
    else:
        save(f"{tag}.out", r.stdout)
    save(f"{tag}.err", r.stderr)
    return r


lab = Lab()
try:
    room = lab.add_host("room", "lan", 20)
    bad = lab.add_host("bad", "lan", 21)
    far = lab.add_host("far", "vl2", 140)
    ctrl = lab.add_host("ctrl", "lan", 30)
    for h in (room, bad, far):
        h.listen(9090, comm="ZoomRooms")
    bad.nft(FW_DROP)
    for tag, target in (("good", room), ("drop", bad), ("vlan", far)):
        saved = lab.tmp / f"{tag}.json"
        run(ctrl, f"{tag}-json", "check", "--room", target.addr, "--code", "2002", "--room-name", f"Room {tag}",
            "--json", str(saved), "--format", "json")
        run(ctrl, f"{tag}-text", "check", "--room", target.addr)
        run(ctrl, f"{tag}-textv", "check", "--room", target.addr, "-v")
        run(ctrl, f"{tag}-nagios", "check", "--room", target.addr, "--format", "nagios")
        for fmt in ("text", "markdown", "html"):
            run(ctrl, f"{tag}-report-{fmt}", "report", str(saved), "--format", fmt)
        run(target, f"{tag}-roomside", "check", "--controller", ctrl.addr, "--format", "json")
    addrs = [h.addr for h in (room, bad, far)] + ["198.51.100.99"]
    for fmt in ("json", "text", "csv"):
        run(ctrl, f"sweep-{fmt}", "sweep", *addrs, "--format", fmt)
    run(ctrl, "explain", "explain", "2002")
    run(ctrl, "probes", "probes")
finally:
    lab.close()
print("captured", len(list(out.iterdir())), "files in", out)
