"""A history writer for the kill test: records runs in a loop, printing each id once committed.

Usage: history_writer.py DB WRITER_NAME PAYLOAD_BYTES
Each report carries a marker "WRITER:N" and a payload, so the test can check every acknowledged
run is present and whole after the writer was killed with SIGKILL at a random moment.
"""

from __future__ import annotations

import hashlib
import sys

from reportkit import as_report

from roomprobe.fleet import history


def main() -> None:
    db, name, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    conn = history.connect(db)
    n = 0
    while True:
        n += 1
        payload = (f"{name}:{n}:" * (size // 8 + 1))[:size]
        rep = {"started_at": "2026-11-22T00:00:00Z", "status": "pass", "complete": True, "duration_s": 0.1,
               "marker": f"{name}:{n}", "payload": payload,
               "sha": hashlib.sha256(payload.encode()).hexdigest(),
               "findings": [{"id": "f-" + name, "severity": "warn", "probe": "p"}]}
        run_id = history.record(conn, as_report(rep), 0, keep_days=0, keep_runs=0)
        print(f"{run_id} {name}:{n}", flush=True)


if __name__ == "__main__":
    main()
