"""Slow-header churn: COUNT connections that never finish their request head, each re-opened the
moment the server closes it (the header deadline, a cap), for SECONDS.

    python tests/slowheaders.py HOST PORT COUNT SECONDS [SOURCE ...]

SOURCE addresses are used in turn (one attacker host with several addresses); it prints
"opened N" when done. Importable: ``churn(...)`` runs the same in threads of the caller.
"""

from __future__ import annotations

import socket
import sys
import threading
import time

HEAD = b"GET /__down?bytes=10 HTTP/1.1\r\nHost: x\r\n"  # never the blank line that ends it


def _one(host: str, port: int, source: str | None, stop: threading.Event, opened: list[int]) -> None:
    while not stop.is_set():
        try:
            s = socket.create_connection((host, port), timeout=2,
                                         source_address=(source, 0) if source else None)
        except OSError:
            stop.wait(0.05)
            continue
        opened[0] += 1
        with s:
            try:
                s.sendall(HEAD[:5])
                s.settimeout(0.2)
                while not stop.is_set():  # hold it until the server closes it, then at once again
                    try:
                        if not s.recv(4096):
                            break
                    except TimeoutError:
                        continue
            except OSError:
                pass


def churn(host: str, port: int, count: int, sources: list[str] | None = None,
          ) -> tuple[threading.Event, list[threading.Thread], list[int]]:
    """Start the churn; set the returned event to stop it. ``opened[0]`` counts connections."""
    stop, opened = threading.Event(), [0]
    srcs: list[str | None] = list(sources) if sources else [None]
    threads = [threading.Thread(target=_one, args=(host, port, srcs[i % len(srcs)], stop, opened),
                                daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    return stop, threads, opened


if __name__ == "__main__":
    h, p, n, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    ev, ths, count = churn(h, p, n, sys.argv[5:] or None)
    time.sleep(secs)
    ev.set()
    for t in ths:
        t.join(3)
    print(f"opened {count[0]}", flush=True)
