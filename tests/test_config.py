"""Config file and --set: precedence, and every mistake is a one-line usage error."""

from __future__ import annotations

import pytest

from roomprobe.core import config
from roomprobe.core.errors import UsageError

DEFAULTS = {"dns": {"names": ["zoom.us"], "slow_ms": 300, "timeout": 2.0, "strict": False}}


def write(tmp_path, text):
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_file_sets_check_keys_and_probe_options(tmp_path):
    cfg = config.load(write(tmp_path, '[check]\ncontroller = "10.0.0.5"\ntimeout = 3\n'
                                      '[probes.dns]\nnames = ["a.example"]\nslow_ms = 50\n'))
    assert cfg.check["controller"] == "10.0.0.5" and cfg.check["timeout"] == 3
    opts = config.probe_options("dns", DEFAULTS["dns"], cfg, {})
    assert opts == {"names": ["a.example"], "slow_ms": 50, "timeout": 2.0, "strict": False}


def test_set_overrides_the_file_and_is_typed(tmp_path):
    cfg = config.load(write(tmp_path, "[probes.dns]\nslow_ms = 50\n"))
    over = config.parse_set(("dns.slow_ms=75", "dns.names=a.example, b.example", "dns.timeout=1.5",
                             "dns.strict=yes"), DEFAULTS)
    opts = config.probe_options("dns", DEFAULTS["dns"], cfg, over["dns"])
    assert opts == {"names": ["a.example", "b.example"], "slow_ms": 75, "timeout": 1.5, "strict": True}


@pytest.mark.parametrize("text, words", [
    ("[check]\ncontrolr = '1.2.3.4'\n", "unknown key [check].controlr"),
    ("[check]\nport = 'x'\n", "wrong type"),
    ("[chek]\n", "unknown section"),
    ("not toml = = =", "not valid TOML"),
    ("[probes]\ndns = 3\n", "must hold tables"),
])
def test_bad_files_are_usage_errors(tmp_path, text, words):
    with pytest.raises(UsageError, match=words.replace("[", r"\[").replace("]", r"\]")):
        config.load(write(tmp_path, text))


def test_bad_probe_options_are_usage_errors(tmp_path):
    cfg = config.load(write(tmp_path, "[probes.dns]\nslow = 1\n"))
    with pytest.raises(UsageError, match="has no option 'slow'"):
        config.probe_options("dns", DEFAULTS["dns"], cfg, {})
    cfg = config.load(write(tmp_path, "[probes.dns]\nslow_ms = 'fast'\n"))
    with pytest.raises(UsageError, match="should be int"):
        config.probe_options("dns", DEFAULTS["dns"], cfg, {})
    cfg = config.load(write(tmp_path, "[probes.nope]\nx = 1\n"))
    with pytest.raises(UsageError, match="names no probe"):
        config.check_unknown_probe_tables(cfg, {"dns"})


@pytest.mark.parametrize("item, words", [
    ("dns", "expected PROBE.KEY=VALUE"),
    ("nope.x=1", "no probe 'nope'"),
    ("dns.x=1", "has no option 'x'"),
    ("dns.slow_ms=fast", "not a valid int"),
    ("dns.strict=maybe", "not a valid bool"),
])
def test_bad_set_items(item, words):
    with pytest.raises(UsageError, match=words):
        config.parse_set((item,), DEFAULTS)


def test_missing_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="cannot read config file"):
        config.load(tmp_path / "absent.toml")
