"""A tiny lab DNS server for what dnsmasq cannot do on demand: SERVFAIL, and a slow resolver.

Usage: fakedns.py BIND MODE [ADDRESS]
  MODE servfail      answer SERVFAIL to everything
  MODE slow:MS       answer A/AAAA with ADDRESS (AAAA: none) after MS milliseconds
Prints "ready" once bound.
"""

import socket
import sys
import threading
import time

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

bind, mode = sys.argv[1], sys.argv[2]
address = sys.argv[3] if len(sys.argv) > 3 else "203.0.113.10"
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((bind, 53))
print("ready", flush=True)


def answer(data: bytes, peer: tuple) -> None:
    q = dns.message.from_wire(data)
    resp = dns.message.make_response(q)
    if mode == "servfail":
        resp.set_rcode(dns.rcode.SERVFAIL)
    else:
        time.sleep(int(mode.split(":")[1]) / 1000)
        question = q.question[0]
        if question.rdtype == dns.rdatatype.A:
            resp.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", address))
    sock.sendto(resp.to_wire(), peer)


while True:
    data, peer = sock.recvfrom(4096)
    threading.Thread(target=answer, args=(data, peer), daemon=True).start()
