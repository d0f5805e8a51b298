"""DNS pieces that need no network: the macOS resolver parser, sinkhole classification."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from roomprobe.probes.dns import is_sinkhole

from roomprobe.dnsconf import parse_scutil_dns


def test_scutil_dns_main_resolvers_only():
    text = (Path(__file__).parent / "data" / "os" / "scutil_dns.txt").read_text()
    assert parse_scutil_dns(text) == ["10.20.0.53", "10.20.0.54"]


@pytest.mark.parametrize("addr, sunk", [
    ("0.0.0.0", True), ("127.0.0.1", True), ("10.1.2.3", True), ("192.168.0.1", True),
    ("::", True), ("::1", True), ("170.114.52.2", False), ("2600:1f18::1", False),
])
def test_sinkhole_classification(addr, sunk):
    assert is_sinkhole(addr, []) is sunk


def test_allowed_networks_are_not_a_sinkhole():
    assert is_sinkhole("10.1.2.3", [ipaddress.ip_network("10.0.0.0/8")]) is False
