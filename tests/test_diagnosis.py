"""Diagnosis: every rule on recorded findings, ranking, the user's code first, ruled-out causes."""

from __future__ import annotations

from typing import Any

import pytest

from roomprobe.core.errors import UsageError
from roomprobe.diagnose import catalog as kb
from roomprobe.diagnose import rules
from roomprobe.diagnose.mapping import diagnose

PROBE = {fid: probe for probe, ids in rules._raw()["probes"].items() for fid in ids}
ALL_PROBES = set(rules._raw()["probes"])


def finding(fid: str, severity: str = "fail", **evidence: Any) -> dict[str, Any]:
    """A finding dict as the runner records it (probe filled in, evidence attached)."""
    return {"id": fid, "severity": severity, "probe": PROBE[fid], "message": f"recorded {fid}",
            "evidence": evidence, "hint": "recorded hint"}


def codes(items: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(d["product"], d["code"]) for d in items]


def item(items: list[dict[str, Any]], product: str, code: int) -> dict[str, Any]:
    return next(d for d in items if (d["product"], d["code"]) == (product, code))


# Each recorded finding -> the (product, code) it must produce first, its likelihood and a word
# its first fix must contain. If a rule is deleted, retargeted or loses its specific fix, this fails.
CASES = [
    ("peer-other-subnet", "zoom-rooms", 2002, "medium", "same network/VLAN"),
    ("peer-no-arp-reply", "zoom-rooms", 2002, "high", "client-to-client"),
    ("port-filtered", "zoom-rooms", 2002, "high", "Allow TCP 9090"),
    ("port-refused", "zoom-rooms", 2002, "high", "Start (or restart) the Zoom Rooms"),
    ("port-unreachable", "zoom-rooms", 2002, "high", "room PC is on"),
    ("port-not-listening", "zoom-rooms", 2002, "high", "Start Zoom Rooms"),
    ("port-conflict", "zoom-rooms", 2002, "high", "holding TCP 9090"),
    ("port-loopback-only", "zoom-rooms", 2002, "high", "listens on the LAN address"),
    ("proxy-loopback-dead", "zoom-rooms", 2002, "high", "stale proxy"),
    ("proxy-loopback-agent", "zoom-rooms", 2002, "high", "Exclude Zoom's domains"),
    ("host-resolves-to-loopback", "zoom-rooms", 2002, "high", "host name resolve"),
    ("controller-via-proxy", "zoom-rooms", 2002, "high", "bypass list"),
    ("proxy-unreachable", "zoom-client", 5003, "high", "proxy address"),
    ("proxy-auth-required", "zoom-client", 5003, "high", "without authentication"),
    ("proxy-pac-error", "zoom-client", 5000, "medium", "PAC file"),
    ("tls-intercepted", "zoom-client", 5003, "high", "TLS inspection"),
    ("dns-no-resolver", "zoom-client", 10002, "high", "Configure DNS servers"),
    ("dns-timeout", "zoom-client", 10002, "high", "UDP/TCP 53"),
    ("dns-refused", "zoom-client", 10002, "high", "Allow this device's subnet"),
    ("dns-servfail", "zoom-client", 10002, "medium", "DNSSEC"),
    ("dns-nxdomain", "zoom-client", 10002, "high", "DNS filter"),
    ("dns-sinkhole", "zoom-client", 5003, "high", "DNS filter"),
    ("dns-hosts-override", "zoom-client", 5003, "medium", "hosts file"),
    ("dns-slow", "zoom-client", 10002, "low", "faster resolver"),
    ("dns-resolvers-disagree", "zoom-client", 10002, "low", "same answers"),
    ("cloud-https-blocked", "zoom-client", 5003, "high", "TCP 443"),
    ("cloud-tcp-media-blocked", "zoom-client", 104101, "low", "TCP 8801-8802"),
    ("cloud-udp-media-blocked", "zoom-client", 104101, "low", "UDP 3478-3479"),
    ("cloud-udp-unknown", "zoom-client", 104101, "low", "UDP 8801-8810"),
    ("cloud-tls-failed", "zoom-client", 5003, "high", "clock"),
    ("cloud-http-error", "zoom-client", 5000, "medium", "filter that answers"),
    ("bandwidth-down-low", "zoom-client", 10002, "low", "wired"),
    ("bandwidth-up-low", "zoom-client", 10002, "low", "wired"),
    ("latency-high", "zoom-client", 104101, "low", "wired"),
    ("jitter-high", "zoom-client", 104101, "low", "wired"),
    ("bufferbloat", "zoom-client", 104101, "low", "queue management"),
    ("bandwidth-endpoint-unreachable", "zoom-client", 5002, "low", "rerun the bandwidth probe"),
    ("no-network", "zoom-client", 5002, "high", "Connect the device"),
    ("no-default-gateway", "zoom-client", 5002, "high", "gateway"),
]


@pytest.mark.parametrize(("fid", "product", "code", "likelihood", "fix_word"), CASES)
def test_each_rule(fid: str, product: str, code: int, likelihood: str, fix_word: str) -> None:
    out = diagnose([finding(fid)])
    assert out, f"{fid} produced no diagnosis"
    first = out[0]
    assert (first["product"], first["code"]) == (product, code)
    assert first["likelihood"] == likelihood
    assert fid in first["because"]
    assert fix_word in first["fix"][0]
    assert first["cause"]
    assert first["fix"][-1] == f"Every cause and fix of this code: roomprobe explain {product}:{code}"


def test_required_finding_ids_are_all_mapped() -> None:
    mapped = {i for r in rules.ruleset().rules for i in r.indicators}
    assert {c[0] for c in CASES} <= mapped


def test_rules_file_valid() -> None:
    assert rules.validate_rules() == []


def test_rules_validation_catches_typos() -> None:
    raw = rules._raw()
    bad = {**raw, "rule": [{"id": "x", "when": ["port-filtred"], "cause": "c", "fix": ["f"],
                            "targets": [{"code": "zoom-rooms:2003", "likelihood": "certain"}]}]}
    text = " | ".join(rules.validate_rules(bad))
    assert "unknown finding id 'port-filtred'" in text
    assert "not in codes.toml" in text and "likelihood 'certain'" in text


def test_port_findings_feed_3002_low_with_explanation() -> None:
    for fid in ["port-filtered", "port-refused", "peer-no-arp-reply", "port-unreachable"]:
        d = item(diagnose([finding(fid)]), "zoom-rooms", 3002)
        assert d["likelihood"] == "low" and d["because"] == [fid]
        assert "never reach the room" in d["cause"]


def test_2001_where_it_fits() -> None:
    out = diagnose([finding("port-conflict")])
    assert item(out, "zoom-rooms", 2001)["likelihood"] == "high"
    assert item(diagnose([finding("port-refused")]), "zoom-rooms", 2001)["likelihood"] == "medium"


def test_combination_beats_single_rule() -> None:
    out = diagnose([finding("peer-other-subnet", "warn"), finding("port-filtered")])
    d = item(out, "zoom-rooms", 2002)
    assert d["likelihood"] == "high"
    assert d["because"] == ["peer-other-subnet", "port-filtered"]
    assert "inter-VLAN firewall" in d["fix"][0]  # the combined cause, not either alone
    assert "between the controller's and the room's subnets" in d["cause"]


def test_client_isolation_combination() -> None:
    d = diagnose([finding("peer-no-arp-reply"), finding("port-unreachable")])[0]
    assert codes([d]) == [("zoom-rooms", 2002)] and "client isolation" in d["fix"][0]


def test_both_media_paths_blocked_raises_likelihood() -> None:
    d = item(diagnose([finding("cloud-udp-media-blocked"), finding("cloud-tcp-media-blocked")]),
             "zoom-client", 104101)
    assert d["likelihood"] == "medium" and d["group"] == "104101-104118"
    assert "(104101-104118)" in d["title"]


def test_quality_findings_are_marked_quality() -> None:
    for fid in ["bufferbloat", "latency-high", "bandwidth-down-low", "cloud-udp-media-blocked"]:
        assert all(d["kind"] == "quality" for d in diagnose([finding(fid, "warn")]))
    assert diagnose([finding("port-filtered")])[0]["kind"] == "network"


def test_ranking_high_before_low_and_fail_before_warn() -> None:
    out = diagnose([finding("dns-slow", "warn"), finding("latency-high", "warn"), finding("port-filtered")])
    order = [d["likelihood"] for d in out]
    assert order == sorted(order, key=lambda x: {"high": 0, "medium": 1, "low": 2}[x])
    assert codes(out)[0] == ("zoom-rooms", 2002)
    # same likelihood: the fail finding ranks above the warn one
    out = diagnose([finding("dns-sinkhole", "warn"), finding("port-filtered", "fail")])
    assert codes(out)[0] == ("zoom-rooms", 2002)


def test_one_item_per_code() -> None:
    out = diagnose([finding(f) for f in PROBE])
    assert len(codes(out)) == len(set(codes(out)))


def test_no_findings_no_code_means_empty() -> None:
    assert diagnose([]) == []
    assert diagnose([finding("arp-skipped-unprivileged", "info")]) == []


def test_output_shape_matches_report_schema() -> None:
    out = diagnose([finding("port-filtered"), finding("dns-timeout")], "2002", probes_run=ALL_PROBES)
    for d in out:
        assert {"product", "code", "title", "likelihood", "because", "fix"} <= set(d)
        assert isinstance(d["code"], int) and d["product"] in kb.PRODUCTS
        assert all(isinstance(s, str) for s in d["fix"] + d["because"])
        assert not any(k.startswith("_") for k in d)


def test_user_code_goes_first_even_if_less_likely() -> None:
    fs = [finding("cloud-https-blocked"), finding("peer-other-subnet", "warn")]
    assert codes(diagnose(fs))[0] == ("zoom-client", 5003)
    out = diagnose(fs, "zoom-rooms:2002")
    assert codes(out)[0] == ("zoom-rooms", 2002) and out[0]["user_code"] is True
    assert out[0]["likelihood"] == "medium"
    assert not any(d.get("user_code") for d in out[1:])


def test_user_code_ruled_out_uses_probes_run() -> None:
    out = diagnose([finding("port-filtered")], "2002", probes_run={"subnet", "controller-port"})
    d = out[0]
    assert (d["product"], d["code"]) == ("zoom-rooms", 2002)
    how = {r["cause"]: r["how"] for r in d["ruled_out"]}
    isolation = next(c for c in how if "client isolation" in c)
    assert how[isolation] == "the subnet probe ran and raised none of: peer-no-arp-reply"
    assert not any("security software drops it" in c for c in how)  # it was found, not ruled out
    assert not any("proxy" in h for h in how.values())  # the proxy probe did not run


def test_ruled_out_inferred_from_findings_without_probes_run() -> None:
    d = diagnose([finding("port-filtered")], "2002")[0]
    assert {r["how"].split(" probe")[0] for r in d["ruled_out"]} == {"the controller-port"}


def test_unknowable_is_not_ruled_out() -> None:
    fs = [finding("arp-skipped-unprivileged", "info")]
    d = diagnose(fs, "2002", probes_run={"subnet", "controller-port"})[0]
    causes = " ".join(r["cause"] for r in d["ruled_out"])
    assert "client isolation" not in causes  # ARP was never tested
    assert "different subnets" in causes


def test_no_network_cause_for_2002() -> None:
    out = diagnose([], "2002", probes_run=ALL_PROBES)
    assert len(out) == 1
    d = out[0]
    assert d["kind"] == "no-network-cause" and d["likelihood"] == "low" and d["because"] == []
    assert d["cause"] == ("no network cause found for 2002; check pairing / activation code (valid 10 days)"
                          " / version drift")
    assert len(d["ruled_out"]) >= 10


def test_no_network_cause_while_other_codes_found() -> None:
    out = diagnose([finding("dns-timeout")], "zoom-rooms:2002", probes_run=ALL_PROBES)
    assert codes(out)[0] == ("zoom-rooms", 2002) and out[0]["kind"] == "no-network-cause"
    assert ("zoom-client", 10002) in codes(out)


def test_not_checked_when_relevant_probes_did_not_run() -> None:
    d = diagnose([], "2002", probes_run={"bandwidth"})[0]
    assert d["kind"] == "not-checked" and "did not check" in d["cause"] and d["ruled_out"] == []


def test_non_network_code_says_so() -> None:
    d = diagnose([finding("port-filtered")], "VIDEO_CAMERA_TAKEN", probes_run=ALL_PROBES)[0]
    assert (d["product"], d["code"], d["kind"]) == ("video-sdk", 6103, "not-network")
    assert "Close every other program" in d["fix"][0]


def test_ambiguous_user_code_covers_both_products() -> None:
    out = diagnose([finding("cloud-https-blocked")], "5003", probes_run=ALL_PROBES)
    firsts = codes(out)[:2]
    assert set(firsts) == {("zoom-client", 5003), ("video-sdk", 5003)}
    assert item(out, "zoom-client", 5003)["because"] == ["cloud-https-blocked"]


def test_user_code_in_group_speaks_its_number() -> None:
    out = diagnose([finding("tls-intercepted")], "104110")
    assert codes(out)[0] == ("zoom-client", 104110) and out[0]["group"] == "104101-104118"


@pytest.mark.parametrize("bad", ["99999", "zoom-phone:2002", "NOT_A_CODE"])
def test_unknown_user_code(bad: str) -> None:
    with pytest.raises(UsageError, match="roomprobe codes|zoom-rooms, zoom-client, video-sdk"):
        diagnose([], bad)


def test_renamed_probe_still_counts_as_run() -> None:
    f = {**finding("dns-slow", "warn"), "probe": "dns-resolve"}
    d = diagnose([f], "10002", probes_run={"dns-resolve"})[0]
    assert any("raised none of: dns-timeout" in r["how"] for r in d["ruled_out"])


def test_accepts_finding_objects() -> None:
    from roomprobe.core.probe import Finding, Severity

    f = Finding("port-filtered", Severity.FAIL, "no answer on 9090", probe="controller-port")
    assert codes(diagnose([f]))[0] == ("zoom-rooms", 2002)
