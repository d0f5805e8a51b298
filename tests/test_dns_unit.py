"""The dns probe's pure parts: the resolver-config parsers and the judgement over measurements.

The judgement is tested on measurement records shaped exactly like the probe's evidence, so the
lab tests (tests/test_lab_dns.py) and these agree on what a fault looks like.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from roomprobe.probes import dns as dnsprobe

from roomprobe.core.errors import UsageError
from roomprobe.host import dnsconf

DATA = Path(__file__).parent / "data" / "os"
OPTS = dnsprobe.Options(allow_networks=("203.0.113.0/24",))
NAMES = ["zoom.us", "www.zoom.us"]
R1 = {"address": "192.0.2.1", "port": 53, "source": "test"}
R2 = {"address": "192.0.2.2", "port": 53, "source": "test"}


def q(resolver: str, name: str, outcome: str, answers=(), rtype: str = "A", ms: float = 5.0) -> dict:
    return {"resolver": resolver, "name": name, "type": rtype, "outcome": outcome,
            "rcode": {"ok": "NOERROR", "empty": "NOERROR"}.get(outcome, outcome.upper()),
            "answers": list(answers), "ms": ms}


def ids(findings) -> dict[str, str]:
    return {f.id: f.severity.value for f in findings}


def judge(queries, os_results=(), hosts=None, resolvers=(R1,), **opts):
    return dnsprobe.analyse(list(resolvers), list(queries), list(os_results), hosts or {}, NAMES,
                            replace(OPTS, **opts), hosts_file="/etc/hosts")


def test_scutil_parser_on_recorded_layout():
    blocks = dnsconf.parse_scutil_dns((DATA / "scutil_dns_macos.txt").read_text())
    assert [(b["section"], b["number"]) for b in blocks] == [
        ("default", 1), ("default", 2), ("default", 3), ("default", 4), ("default", 5), ("scoped", 1)]
    first = blocks[0]
    assert first["nameservers"] == ["192.0.2.53", "2001:db8::53"] and first["search"] == ["corp.example"]
    assert first["interface"] == "en0" and first["if_index"] == 6
    assert blocks[1]["flags"][0] == "Supplemental" and blocks[1]["domain"] == "vpn.example"
    assert blocks[2]["options"] == "mdns" and blocks[4]["port"] == 5300
    # General resolvers only (no Supplemental VPN split DNS, mDNS, reverse zone or scoped copy),
    # in 'order' (a block without order sorts last), duplicates by (address, port) dropped.
    general = dnsconf.general_nameservers(blocks)
    assert [(r["address"], r["port"]) for r in general] == [
        ("192.0.2.54", 5300), ("192.0.2.53", 5300), ("192.0.2.53", 53), ("2001:db8::53", 53)]
    assert general[2]["source"] == "scutil --dns resolver #1 (en0)"


def test_scutil_parser_tolerates_empty_and_junk():
    assert dnsconf.parse_scutil_dns("") == []
    assert dnsconf.general_nameservers(dnsconf.parse_scutil_dns("No DNS configuration available\n")) == []


def test_hosts_parser():
    text = "127.0.0.1 localhost\n# 1.2.3.4 zoom.us\n203.0.113.66  Zoom.US www.zoom.us. # pinned\nbogus zoom.us\n"
    hosts = dnsconf.parse_hosts(text)
    assert hosts["zoom.us"] == [{"address": "203.0.113.66", "line": 3}]
    assert hosts["www.zoom.us"] == [{"address": "203.0.113.66", "line": 3}]
    assert set(hosts) == {"localhost", "zoom.us", "www.zoom.us"}


@pytest.mark.parametrize("spec, want", [("192.0.2.1", ("192.0.2.1", 53)), ("192.0.2.1#5353", ("192.0.2.1", 5353)),
                                        ("2001:db8::1#53", ("2001:db8::1", 53))])
def test_resolver_spec(spec, want):
    r = dnsconf.parse_resolver_spec(spec)
    assert (r["address"], r["port"]) == want


@pytest.mark.parametrize("spec", ["dns.example", "192.0.2.1:53", "192.0.2.1#0", "192.0.2.1#x"])
def test_resolver_spec_rejects(spec):
    with pytest.raises(ValueError):
        dnsconf.parse_resolver_spec(spec)


@pytest.mark.parametrize("addr, suspicious", [
    ("0.0.0.0", True), ("127.0.0.1", True), ("10.0.0.1", True), ("192.168.1.1", True), ("100.64.0.1", True),
    ("::", True), ("::1", True), ("fd00::1", True), ("::ffff:127.0.0.1", True), ("198.51.100.7", True),
    ("203.0.113.9", False),  # allowed in OPTS
    ("8.8.8.8", False), ("2600::1", False),
])
def test_sinkhole_addresses(addr, suspicious):
    allowed = [ipaddress.ip_network("203.0.113.0/24")]
    assert dnsprobe.is_suspicious(addr, allowed) is suspicious


def test_healthy_has_no_findings():
    qs = [q("192.0.2.1", n, "ok", ["203.0.113.10"]) for n in NAMES]
    qs += [q("192.0.2.1", n, "empty", rtype="AAAA") for n in NAMES]  # no IPv6: normal
    assert judge(qs) == []


def test_nxdomain_is_failure_even_when_fast():
    qs = [q("192.0.2.1", n, "nxdomain", ms=0.3) for n in NAMES]
    found = judge(qs)
    assert ids(found) == {"dns-nxdomain": "fail"}
    assert found[0].evidence["names_unresolvable"] == ["www.zoom.us", "zoom.us"]


def test_a_fault_is_a_warning_while_another_resolver_answers():
    qs = [q("192.0.2.1", n, "timeout", ms=2000) for n in NAMES] + [q("192.0.2.2", n, "ok", ["203.0.113.10"])
                                                                   for n in NAMES]
    assert ids(judge(qs, resolvers=(R1, R2))) == {"dns-timeout": "warn"}


def test_empty_for_every_type_is_a_finding():
    qs = [q("192.0.2.1", "zoom.us", "empty"), q("192.0.2.1", "zoom.us", "empty", rtype="AAAA"),
          q("192.0.2.1", "www.zoom.us", "ok", ["203.0.113.10"])]
    found = judge(qs)
    assert ids(found) == {"dns-empty": "fail"}
    assert found[0].evidence["queries"][0]["name"] == "zoom.us"


def test_sinkhole_only_on_one_resolver_is_warn_and_disagreement():
    qs = [q("192.0.2.1", n, "ok", ["203.0.113.10"]) for n in NAMES] + [q("192.0.2.2", n, "ok", ["0.0.0.0"])
                                                                       for n in NAMES]
    assert ids(judge(qs, resolvers=(R1, R2))) == {"dns-sinkhole": "warn", "dns-resolvers-disagree": "warn"}


def test_overlapping_answers_are_not_disagreement():
    qs = [q("192.0.2.1", "zoom.us", "ok", ["203.0.113.10", "203.0.113.11"]),
          q("192.0.2.2", "zoom.us", "ok", ["203.0.113.11"])]
    assert judge(qs, resolvers=(R1, R2)) == []


def test_os_answer_dns_never_gave_is_an_override():
    qs = [q("192.0.2.1", "zoom.us", "ok", ["203.0.113.10"])]
    os_results = [{"name": "zoom.us", "type": "A", "outcome": "ok", "answers": ["203.0.113.99"]}]
    found = judge(qs, os_results)
    assert ids(found) == {"dns-hosts-override": "warn"}
    assert found[0].evidence["overrides"][0]["source"] == "OS resolver"


def test_hosts_entry_to_loopback_is_a_failure():
    hosts = {"www.zoom.us": [{"address": "127.0.0.1", "line": 7}]}
    found = judge([q("192.0.2.1", "www.zoom.us", "ok", ["203.0.113.10"])], hosts=hosts)
    assert ids(found) == {"dns-hosts-override": "fail"}
    assert "line 7" in found[0].evidence["overrides"][0]["source"]


def test_slow_threshold():
    qs = [q("192.0.2.1", n, "ok", ["203.0.113.10"], ms=450) for n in NAMES]
    found = judge(qs, slow_ms=300)
    assert ids(found) == {"dns-slow": "warn"}
    assert found[0].evidence["resolvers"][0]["max_ms"] == 450
    assert judge(qs, slow_ms=500) == []


def test_no_resolver():
    found = dnsprobe.analyse([], [], [], {}, NAMES, OPTS, "/etc/resolv.conf: no nameservers")
    assert ids(found) == {"dns-no-resolver": "fail"}
    assert "no nameservers" in found[0].message and found[0].hint


@pytest.mark.parametrize("key, value, words", [
    ("names", [], "non-empty list"), ("names", ["bad name"], "not a valid host name"),
    ("types", ["MX"], "A, AAAA"), ("resolvers", ["dns.example"], "not an IP address"),
    ("allow_networks", ["10.0.0.0/33"], "not a CIDR"), ("slow_ms", 0, "positive"),
])
def test_check_options_rejects(key, value, words):
    with pytest.raises(UsageError, match=words):
        dnsprobe.check_options(replace(dnsprobe.Options(), **{key: value}))


def test_bad_option_is_one_line_exit_3_before_any_query():
    env = {**os.environ, "ROOMPROBE_CONFIG": os.devnull, "NO_COLOR": "1"}
    out = subprocess.run([sys.executable, "-m", "roomprobe", "check", "--only", "dns",
                          "--set", "dns.allow_networks=not-a-net"], capture_output=True, text=True,
                         timeout=30, env=env)
    assert out.returncode == 3 and out.stdout == ""
    assert out.stderr.strip() == "roomprobe: dns.allow_networks: 'not-a-net' is not a CIDR like 10.0.0.0/8"
