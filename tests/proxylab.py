"""Lab servers for the proxy tests, run inside a namespace; each prints "listening" once bound.

    proxylab.py tls ADDR PORT CERT KEY      a TLS server (stands in for zoom.us or a TLS gateway)
    proxylab.py http ADDR PORT DIR          static files (a PAC file, wpad.dat)
    proxylab.py garbage ADDR PORT           answers every connection with non-HTTP bytes
    proxylab.py stall ADDR PORT             answers CONNECT with 200, then says nothing
    proxylab.py slowhttp ADDR PORT          an HTTP answer trickling one byte a second
"""

from __future__ import annotations

import email.utils
import functools
import http.server
import socket
import ssl
import sys
import threading
import time


def _serve(sock: socket.socket, handle) -> None:
    print("listening", flush=True)
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def _bind(addr: str, port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((addr, port))
    sock.listen(16)
    return sock


def main() -> None:
    mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "tls":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[4], sys.argv[5])

        def tls(conn: socket.socket) -> None:
            conn.settimeout(5)
            try:
                with ctx.wrap_socket(conn, server_side=True) as s:
                    head = b""
                    while b"\r\n\r\n" not in head and len(head) < 16384:
                        chunk = s.recv(4096)
                        if not chunk:
                            return
                        head += chunk
                    date = email.utils.formatdate(usegmt=True)
                    s.sendall(f"HTTP/1.1 200 OK\r\nDate: {date}\r\nContent-Length: 0\r\n"
                              "Connection: close\r\n\r\n".encode())
            except (OSError, ssl.SSLError):
                conn.close()
        _serve(_bind(addr, port), tls)
    elif mode == "garbage":
        def garbage(conn: socket.socket) -> None:
            with conn:
                conn.sendall(b"\x00\x17SSH-2.0-not-a-proxy\r\n\r\n")
        _serve(_bind(addr, port), garbage)
    elif mode == "stall":
        def stall(conn: socket.socket) -> None:
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                time.sleep(60)
        _serve(_bind(addr, port), stall)
    elif mode == "slowhttp":
        def slow(conn: socket.socket) -> None:
            with conn:
                conn.recv(4096)
                body = b"function FindProxyForURL(u, h) { return 'DIRECT'; }" + b" " * 100
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
                for i in range(len(body)):
                    conn.sendall(body[i:i + 1])
                    time.sleep(1)
        _serve(_bind(addr, port), slow)
    elif mode == "http":
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[4])
        server = http.server.ThreadingHTTPServer((addr, port), handler)
        print("listening", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
