"""tcpconnect.judge and icmperr: the verdict on one TCP connect, from the bytes the kernel hands us.

The ICMP error queue exists on Linux only; the layouts below are <linux/errqueue.h>'s struct
sock_extended_err followed by the offender's sockaddr_in / sockaddr_in6, as recvmsg returns them.
On Windows and macOS the same code path must stay quiet (no setsockopt, no recvmsg) and judge
from the errno. Real sockets only on loopback.
"""

from __future__ import annotations

import errno
import socket
import struct
import threading

import pytest

from roomprobe.net import icmperr
from roomprobe.net.tcpconnect import connect_state, judge

SOL_IP, IP_RECVERR, SOL_IPV6, IPV6_RECVERR = 0, 11, 41, 25


def _ee(ee_errno: int, origin: int, itype: int, code: int) -> bytes:
    return struct.pack("=IBBBBII", ee_errno, origin, itype, code, 0, 0, 0)


def _sin(addr: str) -> bytes:
    return struct.pack("=HH4s8x", socket.AF_INET, 0, socket.inet_aton(addr))


def _sin6(addr: str) -> bytes:
    return struct.pack("=HHI16sI", socket.AF_INET6, 0, 0, socket.inet_pton(socket.AF_INET6, addr), 0)


@pytest.mark.parametrize("code, name", [(13, "admin-prohibited"), (10, "host-prohibited"),
                                        (9, "net-prohibited"), (3, "port-unreachable"),
                                        (1, "host-unreachable")])
def test_parse_ipv4_icmp_and_its_sender(code, name):
    got = icmperr.parse([(SOL_IP, IP_RECVERR, _ee(errno.EHOSTUNREACH, 2, 3, code) + _sin("192.0.2.7"))])
    assert got == {"icmp": name, "icmp_type": 3, "icmp_code": code, "from": "192.0.2.7", "v6": False}


def test_parse_ipv6_admin_prohibited():
    got = icmperr.parse([(SOL_IPV6, IPV6_RECVERR, _ee(errno.EACCES, 3, 1, 1) + _sin6("2001:db8::7"))])
    assert got is not None and got["icmp"] == "admin-prohibited" and got["from"] == "2001:db8::7"
    assert icmperr.describe(got) == "ICMPv6 admin-prohibited from 2001:db8::7"


def test_parse_ignores_local_errors_short_and_foreign_messages():
    assert icmperr.parse([(SOL_IP, IP_RECVERR, _ee(errno.EMSGSIZE, 1, 0, 0) + _sin("192.0.2.7"))]) is None
    assert icmperr.parse([(SOL_IP, IP_RECVERR, b"\x00" * 6)]) is None
    assert icmperr.parse([(SOL_IP, 8, _ee(113, 2, 3, 13))]) is None  # IP_PKTINFO, not an error
    got = icmperr.parse([(SOL_IP, IP_RECVERR, _ee(113, 2, 3, 13) + b"\x02")])  # offender cut off
    assert got is not None and got["from"] is None and "unknown sender" in icmperr.describe(got)


def _icmp(name: str, sender: str, target: str = "192.0.2.20") -> dict:
    return {"icmp": name, "icmp_type": 3, "icmp_code": 0, "from": sender, "v6": False, "target": target}


def test_judge_names_a_firewalls_reject_never_arp():
    for name, code in (("admin-prohibited", errno.EHOSTUNREACH), ("host-prohibited", errno.EHOSTUNREACH),
                       ("port-unreachable", errno.ECONNREFUSED)):
        v = judge(code, _icmp(name, "192.0.2.20"), "192.0.2.30")
        assert v["state"] == "filtered" and v["rejected"] == name, v
        assert f"ICMP {name} from 192.0.2.20, sent in the target's own name" in v["detail"]
        assert "ARP" not in v["detail"]
    v = judge(errno.EHOSTUNREACH, _icmp("admin-prohibited", "192.0.2.1"), "192.0.2.30")
    assert "from 192.0.2.1" in v["detail"] and "target's name" not in v["detail"]


def test_judge_tells_no_arp_answer_from_a_routers_unreachable():
    v = judge(errno.EHOSTUNREACH, _icmp("host-unreachable", "192.0.2.30"), "192.0.2.30")
    assert v["state"] == "unreachable" and v["no_neighbour"] is True and "no ARP answer" in v["detail"]
    v = judge(errno.EHOSTUNREACH, _icmp("host-unreachable", "192.0.2.1"), "192.0.2.30")
    assert v["state"] == "unreachable" and "no_neighbour" not in v and "router" in v["detail"]


def test_judge_without_icmp_keeps_the_errno_verdicts():
    assert judge(0, None, None)["state"] == "open"
    assert judge(errno.ECONNREFUSED, None, None)["state"] == "refused"
    assert judge(errno.EHOSTUNREACH, None, None) == {"state": "unreachable", "error": "EHOSTUNREACH"}
    assert judge(errno.EPERM, None, None) == {"state": "error", "error": "EPERM"}
    # a reset can only follow a completed handshake (a reset to a SYN is ECONNREFUSED)
    v = judge(errno.ECONNRESET, None, None)
    assert v["state"] == "open" and v["after"] == "reset"


@pytest.mark.parametrize("platform", ["win32", "darwin"])
def test_no_error_queue_off_linux(monkeypatch, platform):
    """Windows/macOS: neither IP_RECVERR nor MSG_ERRQUEUE is touched; the errno decides."""
    monkeypatch.setattr(icmperr.sys, "platform", platform)

    class NoCalls(socket.socket):
        def setsockopt(self, *a):  # type: ignore[override]
            raise AssertionError("setsockopt called off Linux")

        def recvmsg(self, *a):  # type: ignore[override]
            raise AssertionError("recvmsg called off Linux")

    with NoCalls(socket.AF_INET, socket.SOCK_STREAM) as s:
        assert icmperr.enable(s) is False and icmperr.read(s) is None
    assert icmperr.available() is False
    # nothing listens on this loopback port: a reset, judged from the errno alone
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    v = connect_state(socket.AF_INET, ("127.0.0.1", port), 2.0)
    assert v["state"] == "refused" and "icmp" not in v


HELD: list[socket.socket] = []  # kept open for the whole watch (a held connection)


def _server(mode: str) -> tuple[socket.socket, int, threading.Thread]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)

    def run() -> None:
        conn, _ = srv.accept()
        if mode == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
        elif mode == "closed":
            conn.close()
        else:
            HELD.append(conn)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return srv, srv.getsockname()[1], t


@pytest.mark.parametrize("mode, after", [("reset", "reset"), ("closed", "closed"), ("hold", None)])
def test_open_then_reset_or_closed_on_loopback(mode, after):
    srv, port, t = _server(mode)
    try:
        v = connect_state(socket.AF_INET, ("127.0.0.1", port), 2.0, watch=2.0)
    finally:
        t.join(timeout=5)
        srv.close()
        while HELD:
            HELD.pop().close()
    assert v["state"] == "open" and v["error"] is None
    assert v["after"] == after, v
