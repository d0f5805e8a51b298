"""The STUN codec on recorded real answers: RFC 5769's sample response and a coturn answer."""

from __future__ import annotations

import struct
import zlib

import pytest

from roomprobe.net import stun

# RFC 5769 section 2.2, "Sample IPv4 Response" (SOFTWARE, XOR-MAPPED-ADDRESS 192.0.2.1:32853,
# MESSAGE-INTEGRITY, FINGERPRINT).
RFC5769_V4 = bytes.fromhex(
    "0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220"
    "002000080001a147e112a643000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7"
    "80280004c07d4c96")
# Debian's coturn 4.6.1 (the lab STUN server) answering our request with txid 0102..0c from
# 198.51.100.20: XOR-MAPPED-ADDRESS, MAPPED-ADDRESS, RESPONSE-ORIGIN, OTHER-ADDRESS, SOFTWARE,
# FINGERPRINT.
COTURN_TXID = bytes.fromhex("0102030405060708090a0b0c")
COTURN = bytes.fromhex(
    "010100502112a4420102030405060708090a0b0c002000080001beb2e721c0560001000800019fa0c6336414"
    "802b000800010d96cb00710c802c000800010d97cb00710d80220014436f7475726e2d342e362e312027476f"
    "72737427802800042fdb8180")


def test_rfc5769_sample_response():
    out = stun.parse_response(RFC5769_V4, RFC5769_V4[8:20])
    assert out == {"class": "success", "mapped": {"address": "192.0.2.1", "port": 32853},
                   "software": "test vector", "error_code": None, "fingerprint_ok": True}


def test_coturn_answer():
    out = stun.parse_response(COTURN, COTURN_TXID)
    assert out["class"] == "success" and out["fingerprint_ok"] is True
    assert out["mapped"] == {"address": "198.51.100.20", "port": 40864}  # XOR one, not MAPPED
    assert out["software"] == "Coturn-4.6.1 'Gorst'"


def test_request_layout_and_fingerprint():
    txid = bytes(range(12))
    req = stun.binding_request(txid)
    mtype, length, cookie, rtx = struct.unpack("!HHI12s", req[:20])
    assert (mtype, length, cookie, rtx) == (0x0001, 8, 0x2112A442, txid)
    atype, alen, crc = struct.unpack("!HHI", req[20:])
    assert (atype, alen) == (0x8028, 4)
    assert crc == zlib.crc32(req[:20]) ^ 0x5354554E
    assert stun.binding_request(txid, fingerprint=False) == struct.pack("!HHI12s", 1, 0, 0x2112A442, txid)
    with pytest.raises(ValueError):
        stun.binding_request(b"short")


def test_rejects_what_is_not_our_answer():
    with pytest.raises(stun.StunError, match="transaction id"):
        stun.parse_response(COTURN, bytes(12))
    with pytest.raises(stun.StunError, match="magic cookie"):
        stun.parse_response(COTURN[:4] + b"\0\0\0\0" + COTURN[8:], COTURN_TXID)
    with pytest.raises(stun.StunError, match="header"):
        stun.parse_response(COTURN[:10], COTURN_TXID)
    with pytest.raises(stun.StunError, match="length"):
        stun.parse_response(COTURN[:40], COTURN_TXID)
    request = stun.binding_request(COTURN_TXID)
    with pytest.raises(stun.StunError, match="not a Binding response"):
        stun.parse_response(request, COTURN_TXID)  # our own request echoed back


def test_error_response_and_corrupt_fingerprint():
    txid = bytes(12)
    err = struct.pack("!HHI12s", 0x0111, 8, 0x2112A442, txid) + struct.pack("!HH4s", 0x0009, 4, b"\0\0\x04\x00")
    out = stun.parse_response(err, txid)
    assert out["class"] == "error" and out["error_code"] == 400 and out["mapped"] is None
    bad = bytearray(COTURN)
    bad[-1] ^= 0xFF
    assert stun.parse_response(bytes(bad), COTURN_TXID)["fingerprint_ok"] is False


# -- issue 21 section 3: a port-unreachable in the name of a host known to listen --------------

def _refused() -> OSError:
    import errno
    return OSError(errno.ECONNREFUSED, "Connection refused")


def test_port_unreachable_from_a_host_known_to_listen_is_a_forged_reject():
    """iptables REJECT / nftables reject answer with the TARGET's address: from a STUN server
    or a Zoom media port that listens there, the ICMP cannot be the host's own."""
    icmp = {"icmp": "port-unreachable", "icmp_type": 3, "icmp_code": 3, "from": "203.0.113.12"}
    assert stun.judge_error(_refused(), "203.0.113.12", icmp, listens=True) == (
        "blocked", "icmp-port-unreachable-known-listener")
    # Without the ICMP detail (Windows, macOS: plain ECONNREFUSED) the same holds.
    assert stun.judge_error(_refused(), "203.0.113.12", None, listens=True) == (
        "blocked", "icmp-port-unreachable-known-listener")


def test_port_unreachable_from_a_host_not_known_to_listen_stays_an_open_path():
    icmp = {"icmp": "port-unreachable", "icmp_type": 3, "icmp_code": 3, "from": "203.0.113.14"}
    assert stun.judge_error(_refused(), "203.0.113.14", icmp) == (
        "open-no-stun", "icmp-port-unreachable-from-host")
    assert stun.judge_error(_refused(), "203.0.113.14", None) == ("open-no-stun", "icmp-port-unreachable")
    # A port-unreachable sent by someone else is a router's reject, known listener or not.
    icmp["from"] = "198.51.100.1"
    for listens in (False, True):
        assert stun.judge_error(_refused(), "203.0.113.14", icmp, listens) == ("blocked", "icmp-router")
