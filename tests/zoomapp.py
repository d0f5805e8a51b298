"""A stand-in for the Zoom Rooms app: a process named ZoomRooms holding real sockets.

Usage: zoomapp.py COMM SPEC...  where SPEC is udp:ADDR:PORT (a connected UDP socket that sends a
datagram a second, like media) or tcp:ADDR:PORT (an established TCP connection). Prints
"ready" once every socket is up, then keeps them until killed.
"""

import contextlib
import socket
import sys
import time

comm, specs = sys.argv[1], sys.argv[2:]
with open("/proc/self/comm", "w") as f:  # what psutil's Process.name() reports on Linux
    f.write(comm[:15])
socks = []
for spec in specs:
    proto, addr, port = spec.split(":")
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    s = socket.socket(socket.AF_INET, kind)
    s.connect((addr, int(port)))
    socks.append((proto, s))
print("ready", flush=True)
while True:
    for proto, s in socks:
        if proto == "udp":
            with contextlib.suppress(OSError):
                s.send(b"\x00" * 32)
    time.sleep(1)
