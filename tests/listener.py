"""A lab TCP listener with a chosen process name: stands in for Zoom Rooms, or for a squatter.

Usage: listener.py COMM BIND PORT [hold|reset]. Prints "listening" once the socket is bound, then
accepts and closes connections (FIN) until killed; with "hold" it keeps them open (like Zoom Rooms
holding its controller, or a media server); with "reset" it resets each one at once (SO_LINGER 0:
a service or an endpoint security agent that accepts and drops).
"""

import socket
import struct
import sys

comm, bind, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open("/proc/self/comm", "w") as f:  # what psutil's Process.name() reports on Linux
    f.write(comm[:15])
family = socket.AF_INET6 if ":" in bind else socket.AF_INET
srv = socket.socket(family, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((bind, port))
srv.listen(64)
mode = sys.argv[4] if len(sys.argv) > 4 else "close"
hold = mode == "hold"
held = []
print("listening", flush=True)
while True:
    conn, _ = srv.accept()
    if hold:
        held.append(conn)
    else:
        if mode == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
