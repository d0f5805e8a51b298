"""A minimal STUN (RFC 5389) codec: one Binding request out, its response in.

Zoom's media path starts with UDP to 3478/3479/8801; a STUN binding request is the one packet a
media server answers without a session, so an answer proves the UDP path both ways. We only need
the request and the parts of a response that prove it is the answer to *our* request (class,
method, transaction id, cookie) plus what it tells us (mapped address, server software), so this
is a few dozen lines rather than a dependency.
"""

from __future__ import annotations

import ipaddress
import os
import struct
import zlib
from typing import Any

MAGIC_COOKIE = 0x2112A442
BINDING = 0x0001
# Message type = method bits interleaved with class bits C1 (0x100) and C0 (0x010).
CLASS_REQUEST, CLASS_INDICATION, CLASS_SUCCESS, CLASS_ERROR = 0x000, 0x010, 0x100, 0x110
ATTR_MAPPED_ADDRESS = 0x0001
ATTR_ERROR_CODE = 0x0009
ATTR_XOR_MAPPED_ADDRESS = 0x0020
ATTR_SOFTWARE = 0x8022
ATTR_FINGERPRINT = 0x8028
FINGERPRINT_XOR = 0x5354554E
HEADER = struct.Struct("!HHI12s")


class StunError(ValueError):
    """The datagram is not a STUN response to our request."""


def new_transaction_id() -> bytes:
    return os.urandom(12)


def binding_request(txid: bytes, *, fingerprint: bool = True) -> bytes:
    """A Binding request with ``txid``; with a FINGERPRINT so servers can tell it from media."""
    if len(txid) != 12:
        raise ValueError("a STUN transaction id is 12 bytes")
    if not fingerprint:
        return HEADER.pack(BINDING | CLASS_REQUEST, 0, MAGIC_COOKIE, txid)
    head = HEADER.pack(BINDING | CLASS_REQUEST, 8, MAGIC_COOKIE, txid)
    crc = (zlib.crc32(head) ^ FINGERPRINT_XOR) & 0xFFFFFFFF
    return head + struct.pack("!HHI", ATTR_FINGERPRINT, 4, crc)


def _address(value: bytes, xor: bool, txid: bytes) -> dict[str, Any]:
    if len(value) < 4:
        raise StunError("address attribute too short")
    family, port = value[1], struct.unpack("!H", value[2:4])[0]
    raw = value[4:]
    if xor:
        port ^= MAGIC_COOKIE >> 16
        key = struct.pack("!I", MAGIC_COOKIE) + txid
        raw = bytes(b ^ k for b, k in zip(raw, key, strict=False))
    if family == 0x01 and len(raw) == 4:
        addr = str(ipaddress.IPv4Address(raw))
    elif family == 0x02 and len(raw) == 16:
        addr = str(ipaddress.IPv6Address(raw))
    else:
        raise StunError(f"bad address family {family}")
    return {"address": addr, "port": port}


def parse_response(data: bytes, txid: bytes) -> dict[str, Any]:
    """Decode a Binding response to ``txid``; raises StunError for anything else.

    Returns ``{"class": "success"|"error", "mapped": {...}|None, "software": str|None,
    "error_code": int|None, "fingerprint_ok": bool|None}``.
    """
    if len(data) < HEADER.size:
        raise StunError("shorter than a STUN header")
    mtype, length, cookie, rtxid = HEADER.unpack_from(data)
    if mtype & 0xC000 or cookie != MAGIC_COOKIE:
        raise StunError("not a STUN message (bad leading bits or magic cookie)")
    if rtxid != txid:
        raise StunError("transaction id does not match our request")
    if length % 4 or HEADER.size + length > len(data):
        raise StunError("bad message length")
    method = mtype & ~0x0110
    klass = mtype & 0x0110
    if method != BINDING or klass not in (CLASS_SUCCESS, CLASS_ERROR):
        raise StunError(f"not a Binding response (type 0x{mtype:04x})")
    out: dict[str, Any] = {"class": "success" if klass == CLASS_SUCCESS else "error",
                           "mapped": None, "software": None, "error_code": None,
                           "fingerprint_ok": None}
    pos, end = HEADER.size, HEADER.size + length
    while pos + 4 <= end:
        atype, alen = struct.unpack_from("!HH", data, pos)
        value = data[pos + 4: pos + 4 + alen]
        if len(value) != alen:
            raise StunError("attribute runs past the message")
        if atype == ATTR_XOR_MAPPED_ADDRESS:
            out["mapped"] = _address(value, True, txid)
        elif atype == ATTR_MAPPED_ADDRESS and out["mapped"] is None:
            out["mapped"] = _address(value, False, txid)
        elif atype == ATTR_SOFTWARE:
            out["software"] = value.decode("utf-8", "replace").rstrip("\x00 ")
        elif atype == ATTR_ERROR_CODE and alen >= 4:
            out["error_code"] = value[2] * 100 + value[3]
        elif atype == ATTR_FINGERPRINT and alen == 4:
            expect = (zlib.crc32(data[:pos]) ^ FINGERPRINT_XOR) & 0xFFFFFFFF
            out["fingerprint_ok"] = struct.unpack("!I", value)[0] == expect
        pos += 4 + alen + (-alen % 4)
    return out
