#!/usr/bin/env python3
"""``roomprobe exporter`` under abuse: 1000 scrapes, memory before and after (it must stay flat).

Builds the namespace lab (root needed): a monitoring host running the exporter (TLS and basic
auth, a web config like production's), a room with Zoom Rooms' port open, one whose firewall
drops 9090, and an address where nothing answers. A client inside the monitoring host's
namespace then sends, 16 at a time, a mix of:

    good       /probe module=room on the open room (200)
    slow       /probe on the dropping room and the absent address: each waits its connect timeout
    bad        unknown module, no target, a target that is not an address, a bad timeout header (400)
    wrong      a wrong password (401)
    abandoned  a slow probe whose connection is closed before the answer; a connection that sends
               half a request head, or nothing, and goes

After a warm-up (100 scrapes: imports, caches, thread stacks) the exporter's RSS, threads and
open file descriptors are read from /proc; then the 1000 scrapes; then, once no probe is in
flight, the same again. Leaks show as growth proportional to the scrapes; flat is a few MB at
most (allocator noise). Also printed: the answers by status code and the exporter's own counters.

    sudo .venv/bin/python bench/exporter.py [--quick] [--scrapes 1000]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

PASSWORD = "bench-exporter-password"
PORT = 9129
KINDS = ("good", "slow", "bad", "bad", "wrong", "abandoned", "slow", "good", "half", "silent")
BAD = ("/probe?module=nope&target={room}", "/probe?module=room", "/probe?module=room&target=x",
       "/probe?module=room&target={room}&timeout=1")


def proc_facts(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    facts = {k: int(v.split()[0]) for k, v in (ln.split(":", 1) for ln in status.splitlines())
             if k in ("VmRSS", "Threads")}
    facts["fds"] = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    return facts


# ------------------------------------------------------------------ the client (in the namespace)


def client(args: argparse.Namespace) -> None:
    ctx = ssl.create_default_context(cafile=args.ca)
    good = {"Authorization": "Basic " + base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode()}
    wrong = {"Authorization": "Basic " + base64.b64encode(b"prometheus:nope").decode()}
    codes: Counter[str] = Counter()
    lock = threading.Lock()
    todo = list(range(args.scrapes))

    def conn() -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(args.host, PORT, context=ctx, timeout=20)

    def one(i: int) -> str:
        kind = KINDS[i % len(KINDS)]
        slow_target = args.dropped if i % 2 else args.absent
        hdr = {**good, "X-Prometheus-Scrape-Timeout-Seconds": "2"}
        if kind in ("half", "silent"):
            raw = socket.create_connection((args.host, PORT), timeout=5)
            try:
                tls = ctx.wrap_socket(raw, server_hostname=args.host)
                if kind == "half":
                    tls.sendall(b"GET /probe?module=room&target=")
                tls.close()
            except OSError:
                raw.close()
            return kind
        c = conn()
        try:
            if kind == "abandoned":
                c.request("GET", f"/probe?module=room&target={slow_target}", headers=hdr)
                return kind  # closed below, before the answer
            if kind == "bad":
                path = BAD[i % len(BAD)].format(room=args.room)
                c.request("GET", path, headers={**hdr, **({"X-Prometheus-Scrape-Timeout-Seconds": "x"}
                                                          if "timeout=1" in path else {})})
            elif kind == "wrong":
                c.request("GET", f"/probe?module=room&target={args.room}", headers=wrong)
            else:
                target = args.room if kind == "good" else slow_target
                c.request("GET", f"/probe?module=room&target={target}", headers=hdr)
            r = c.getresponse()
            r.read()
            return str(r.status)
        except OSError as exc:
            return type(exc).__name__
        finally:
            c.close()

    def work() -> None:
        while True:
            with lock:
                if not todo:
                    return
                i = todo.pop()
            got = one(i)
            with lock:
                codes[got] += 1

    threads = [threading.Thread(target=work) for _ in range(16)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"codes": dict(codes), "seconds": round(time.monotonic() - t0, 1)}))


def metrics(host, ca: str) -> str:
    script = ("import base64,http.client,ssl,sys;c=http.client.HTTPSConnection(sys.argv[1],"
              f"{PORT},context=ssl.create_default_context(cafile=sys.argv[2]),timeout=10);"
              "c.request('GET','/metrics',headers={'Authorization':'Basic '+base64.b64encode("
              f"b'prometheus:{PASSWORD}').decode()}});print(c.getresponse().read().decode())")
    return host.run([sys.executable, "-c", script, host.addr, ca], timeout=30).stdout


def counters(text: str, prefix: str) -> dict[str, float]:
    return {ln.rsplit(" ", 1)[0]: float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines()
            if ln.startswith(prefix)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200 scrapes instead of 1000")
    ap.add_argument("--scrapes", type=int, default=1000)
    ap.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    for name in ("host", "ca", "room", "dropped", "absent"):
        ap.add_argument(f"--{name}", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        client(args)
        return 0
    import bcrypt
    from lab import Lab, lab_unavailable_reason
    from labca import LabCA
    from sweeplab import DROP_9090

    reason = lab_unavailable_reason()
    if reason:
        print(f"bench/exporter.py needs the lab: {reason}", file=sys.stderr)
        return 3
    scrapes = 200 if args.quick else args.scrapes
    with Lab() as lab:
        mon = lab.add_host("mon", "lan", 10)
        room = lab.add_host("room", "lan", 21)
        dropped = lab.add_host("drop", "lan", 22)
        room.listen(9090)
        dropped.listen(9090)
        dropped.nft(DROP_9090)
        absent = room.addr.rsplit(".", 1)[0] + ".29"
        tmp = lab.tmp
        ca = LabCA(tmp / "pki", name="roomprobe exporter bench CA")
        cert = ca.issue("exporter", [mon.addr])
        web = tmp / "web.yml"
        web.write_text(f"tls_server_config:\n  cert_file: {cert.cert}\n  key_file: {cert.key}\n"
                       "basic_auth_users:\n  prometheus: '"
                       + bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(10)).decode() + "'\n")
        cfg = tmp / "exporter.toml"
        cfg.write_text('[modules.room]\nkind = "room"\ntimeout = 5\nconnect_timeout = 1.0\n')
        exp = mon.popen([sys.executable, "-m", "roomprobe", "exporter", "--web.listen-address",
                         f"{mon.addr}:{PORT}", "--web.config.file", str(web), "--config", str(cfg)],
                        stdout=subprocess.PIPE, text=True)
        assert exp.stdout is not None
        print(exp.stdout.readline().strip())
        base = [sys.executable, str(Path(__file__).resolve()), "--client", "--host", mon.addr,
                "--ca", str(ca.cert_path), "--room", room.addr, "--dropped", dropped.addr,
                "--absent", absent]

        def drive(n: int) -> dict:
            out = mon.run([*base, "--scrapes", str(n)], timeout=600)
            return json.loads(out.stdout.strip().splitlines()[-1])

        def settle() -> None:
            end = time.monotonic() + 30
            while time.monotonic() < end:
                if counters(metrics(mon, str(ca.cert_path)), "roomprobe_exporter_probes_in_flight") \
                        .get("roomprobe_exporter_probes_in_flight") == 0:
                    return
                time.sleep(0.5)

        warm = drive(100)
        settle()
        before = proc_facts(exp.pid)
        run = drive(scrapes)
        settle()
        time.sleep(1)
        after = proc_facts(exp.pid)
        text = metrics(mon, str(ca.cert_path))
        print(f"warm-up: {warm}")
        print(f"{scrapes} scrapes in {run['seconds']} s: {run['codes']}")
        print(f"exporter before: RSS {before['VmRSS'] / 1024:.1f} MB, {before['Threads']} threads, "
              f"{before['fds']} fds")
        print(f"exporter after:  RSS {after['VmRSS'] / 1024:.1f} MB, {after['Threads']} threads, "
              f"{after['fds']} fds  (RSS {(after['VmRSS'] - before['VmRSS']) / 1024:+.1f} MB)")
        for prefix in ("roomprobe_exporter_probes_total", "roomprobe_exporter_probes_rejected_total",
                       "roomprobe_exporter_connections_refused_total",
                       "roomprobe_exporter_auth_failures_total", "roomprobe_exporter_errors_total"):
            for k, v in counters(text, prefix).items():
                if v:
                    print(f"  {k} {v:g}")
        exp.terminate()
        flat = after["VmRSS"] - before["VmRSS"] < 8 * 1024 and after["Threads"] <= before["Threads"] + 2 \
            and after["fds"] <= before["fds"] + 2
        print("memory, threads and descriptors: " + ("FLAT" if flat else "GROWING"))
        return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
