"""A tiny DNS server for lab faults dnsmasq cannot produce on demand (REFUSED, SERVFAIL, slow).

Usage: fakedns.py ADDR PORT MODE DELAY_S [ANSWER_IPV4]
MODE: refused | servfail | empty (NOERROR, no records) | answer (A records only).
Every request is served in its own thread after DELAY_S, so a slow server
stays slow but never serialises concurrent queries. Prints "listening" when bound.
"""

from __future__ import annotations

import socket
import sys
import threading
import time

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


def respond(sock: socket.socket, data: bytes, peer: tuple, mode: str, delay: float, answer: str) -> None:
    time.sleep(delay)
    try:
        query = dns.message.from_wire(data)
    except Exception:
        return
    resp = dns.message.make_response(query)
    if mode == "refused":
        resp.set_rcode(dns.rcode.REFUSED)
    elif mode == "servfail":
        resp.set_rcode(dns.rcode.SERVFAIL)
    elif mode == "answer":
        q = query.question[0]
        if q.rdtype == dns.rdatatype.A:
            resp.answer.append(dns.rrset.from_text(q.name, 60, dns.rdataclass.IN, dns.rdatatype.A, answer))
    sock.sendto(resp.to_wire(), peer)


def main() -> None:
    addr, port, mode, delay = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    answer = sys.argv[5] if len(sys.argv) > 5 else "203.0.113.10"
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((addr, port))
    print("listening", flush=True)
    while True:
        data, peer = sock.recvfrom(4096)
        threading.Thread(target=respond, args=(sock, data, peer, mode, delay, answer), daemon=True).start()


if __name__ == "__main__":
    main()
