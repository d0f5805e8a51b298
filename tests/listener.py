"""A lab TCP listener with a chosen process name: stands in for Zoom Rooms, or for a squatter.

Usage: listener.py COMM BIND PORT [hold]. Prints "listening" once the socket is bound, then accepts
and closes connections until killed (with "hold": keeps them open, like a media server).
"""

import socket
import sys

comm, bind, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open("/proc/self/comm", "w") as f:  # what psutil's Process.name() reports on Linux
    f.write(comm[:15])
family = socket.AF_INET6 if ":" in bind else socket.AF_INET
srv = socket.socket(family, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((bind, port))
srv.listen(64)
hold = sys.argv[4:5] == ["hold"]
held = []
print("listening", flush=True)
while True:
    conn, _ = srv.accept()
    if hold:
        held.append(conn)
    else:
        conn.close()
