"""Windows: ICMP echo with a TTL through IcmpSendEcho2 (iphlpapi), as WinMTR does; no admin.

Why IcmpSendEcho2: raw sockets need administrator rights on Windows and UDP sockets cannot read
the ICMP errors, but the ICMP helper API sends an echo request with any TTL as a normal user
and returns the answer, whoever sent it: the echo reply (IP_SUCCESS), or the router's time
exceeded (IP_TTL_EXPIRED_TRANSIT) with its address. Each call blocks until its answer or its
timeout, so a round runs one call per TTL in its own thread (all in flight together, as WinMTR).

The reply is an ``ICMP_ECHO_REPLY`` structure (32-bit and 64-bit layouts differ in pointer size;
ctypes lays it out for the running interpreter). :func:`parse_reply` reads it from bytes, which
is how the tests check it against both layouts; :class:`IcmpSendEcho` takes the API as an
argument so the tests drive the same code with a fake of the three OS functions.
"""

from __future__ import annotations

import ctypes
import ipaddress
import socket
import struct
import sys
from collections.abc import Sequence
from typing import Any

from roomprobe.core.threads import start_guarded
from roomprobe.net.traceroute import FRAG_NEEDED, REACHED, TIME_EXCEEDED, UNREACHABLE, MethodUnavailable, Reply

# IP_STATUS values (ipexport.h)
IP_SUCCESS = 0
IP_DEST_NET_UNREACHABLE = 11002
IP_DEST_HOST_UNREACHABLE = 11003
IP_DEST_PROT_UNREACHABLE = 11004
IP_DEST_PORT_UNREACHABLE = 11005
IP_PACKET_TOO_BIG = 11009
IP_REQ_TIMED_OUT = 11010
IP_TTL_EXPIRED_TRANSIT = 11013
IP_TTL_EXPIRED_REASSEM = 11014
INVALID_HANDLE_VALUE = -1


class IP_OPTION_INFORMATION(ctypes.Structure):  # noqa: N801 (the Windows SDK's name)
    _fields_ = [("Ttl", ctypes.c_ubyte), ("Tos", ctypes.c_ubyte), ("Flags", ctypes.c_ubyte),
                ("OptionsSize", ctypes.c_ubyte), ("OptionsData", ctypes.c_void_p)]


class ICMP_ECHO_REPLY(ctypes.Structure):  # noqa: N801
    _fields_ = [("Address", ctypes.c_uint32), ("Status", ctypes.c_uint32),
                ("RoundTripTime", ctypes.c_uint32), ("DataSize", ctypes.c_uint16),
                ("Reserved", ctypes.c_uint16), ("Data", ctypes.c_void_p),
                ("Options", IP_OPTION_INFORMATION)]


IP_FLAG_DF = 0x02


def parse_reply(buf: bytes, status_override: int | None = None) -> tuple[int, str | None, int]:
    """(status, address, rtt ms) from an ICMP_ECHO_REPLY at the start of ``buf``.

    ``Address`` is an IPAddr: the four address bytes in network order, read as a native ULONG,
    so the bytes in memory are the address as written.
    """
    if len(buf) < ctypes.sizeof(ICMP_ECHO_REPLY):
        raise ValueError("ICMP_ECHO_REPLY truncated")
    rep = ICMP_ECHO_REPLY.from_buffer_copy(buf[:ctypes.sizeof(ICMP_ECHO_REPLY)])
    addr_bytes = struct.pack("=I", rep.Address)
    address = str(ipaddress.IPv4Address(addr_bytes)) if rep.Address else None
    status = rep.Status if status_override is None else status_override
    return status, address, int(rep.RoundTripTime)


def classify(status: int, address: str | None, dest: str) -> str:
    if status == IP_SUCCESS:
        return REACHED
    if status in (IP_TTL_EXPIRED_TRANSIT, IP_TTL_EXPIRED_REASSEM):
        return TIME_EXCEEDED
    if status == IP_PACKET_TOO_BIG:
        return FRAG_NEEDED
    if status in (IP_DEST_NET_UNREACHABLE, IP_DEST_HOST_UNREACHABLE, IP_DEST_PROT_UNREACHABLE,
                  IP_DEST_PORT_UNREACHABLE):
        return REACHED if address == dest else UNREACHABLE
    return ""  # IP_REQ_TIMED_OUT and anything else: no answer


class Api:
    """The three iphlpapi functions (a fake replaces this in the tests)."""

    IcmpCreateFile: Any
    IcmpCloseHandle: Any
    IcmpSendEcho2: Any

    def __init__(self) -> None:
        if sys.platform != "win32":
            raise MethodUnavailable("IcmpSendEcho2 exists on Windows only")
        lib = ctypes.WinDLL("iphlpapi", use_last_error=True)
        self.IcmpCreateFile = lib.IcmpCreateFile
        self.IcmpCreateFile.restype = ctypes.c_void_p
        self.IcmpCloseHandle = lib.IcmpCloseHandle
        self.IcmpCloseHandle.argtypes = [ctypes.c_void_p]
        self.IcmpSendEcho2 = lib.IcmpSendEcho2
        self.IcmpSendEcho2.restype = ctypes.c_uint32
        self.IcmpSendEcho2.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                       ctypes.c_uint32, ctypes.c_void_p, ctypes.c_uint16,
                                       ctypes.POINTER(IP_OPTION_INFORMATION), ctypes.c_void_p,
                                       ctypes.c_uint32, ctypes.c_uint32]


class IcmpSendEcho:
    """One IcmpSendEcho2 call per TTL, each in its own thread, all in flight together."""

    name = "icmp"

    def __init__(self, api: Any = None) -> None:
        self.api = api if api is not None else Api()

    def _one(self, dest_ipaddr: int, dest: str, ttl: int, size: int, wait_ms: int, df: bool,
             out: dict[int, Reply]) -> None:
        handle = self.api.IcmpCreateFile()
        if handle in (None, 0, INVALID_HANDLE_VALUE):
            return
        try:
            payload = ctypes.create_string_buffer(max(0, size - 28))
            opts = IP_OPTION_INFORMATION(ttl, 0, IP_FLAG_DF if df else 0, 0, None)
            reply_size = ctypes.sizeof(ICMP_ECHO_REPLY) + len(payload.raw) + 8 + 64
            buf = ctypes.create_string_buffer(reply_size)
            n = self.api.IcmpSendEcho2(handle, None, None, None, dest_ipaddr, payload,
                                       len(payload.raw), ctypes.byref(opts), buf, reply_size, wait_ms)
            if not n:
                return  # timed out (GetLastError IP_REQ_TIMED_OUT) or failed: no answer
            status, address, rtt = parse_reply(buf.raw)
            kind = classify(status, address, dest)
            if kind:
                out[ttl] = Reply(ttl, address, float(rtt), kind)
        finally:
            self.api.IcmpCloseHandle(handle)

    def round(self, dest: str, ttls: Sequence[int], wait: float, size: int) -> list[Reply]:
        # IPAddr: the address bytes in network order, as a native ULONG.
        ipaddr = struct.unpack("=I", socket.inet_aton(dest))[0]
        out: dict[int, Reply] = {}
        df = size > 100  # the MTU rounds: don't fragment
        threads = [start_guarded(self._one, f"icmp-ttl{ttl}", ipaddr, dest, ttl, size, int(wait * 1000), df, out)
                   for ttl in ttls]
        for t in threads:
            t.join(wait + 1.0)
        return list(out.values())

    def close(self) -> None:
        pass
