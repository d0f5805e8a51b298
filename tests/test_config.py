"""Typed settings: defaults <- config file <- --set <- flags, each mistake one usage-error line."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass

import pytest

from roomprobe.core import settings as st
from roomprobe.core.errors import UsageError
from roomprobe.core.probe import Context, Probe, Result, Status


@dataclass(frozen=True)
class DnsOptions:
    names: tuple[str, ...] = ("zoom.us",)
    slow_ms: int = 300
    strict: bool = False
    ratio: float = 0.5


def _run(ctx: Context) -> Result:
    return Result(Status.PASS, "ok", "ok")


def _validate(o: DnsOptions) -> None:
    if o.slow_ms <= 0:
        raise UsageError(f"dns.slow_ms must be a positive number, got {o.slow_ms}")


PROBES = {
    "dns": Probe(id="dns", title="t", run=_run, timeout_s=2.0, options=DnsOptions, validate=_validate),
    "legacy": Probe(id="legacy", title="t", run=_run, defaults={"hosts": ["a"], "n": 1},
                    default_enabled=False),
    "bandwidth": Probe(id="bandwidth", title="t", run=_run),
    "quality": Probe(id="quality", title="t", run=_run, default_enabled=False),
}


def write(tmp_path, text):
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def build(tmp_path=None, text="", flags=None, sets=(), checks=()):
    cfg = st.load(write(tmp_path, text)) if tmp_path is not None else st.ConfigFile()
    return st.build(cfg, flags or {}, sets, PROBES, checks)


def test_defaults_are_typed_and_frozen():
    s = build()
    opts = s.probes["dns"].options
    assert isinstance(opts, DnsOptions) and opts.names == ("zoom.us",) and s.probes["dns"].timeout == 2.0
    assert s.check == st.CheckSettings()
    with pytest.raises(FrozenInstanceError):
        opts.slow_ms = 1  # type: ignore[misc]
    # A plugin's plain defaults mapping becomes an Options dataclass too.
    legacy = s.probes["legacy"].options
    assert legacy.hosts == ("a",) and legacy.n == 1


def test_file_sets_check_keys_and_probe_options(tmp_path):
    s = build(tmp_path, '[check]\ncontroller = "10.0.0.5"\ntimeout = 3\nonly = ["dns"]\n'
                        '[probes.dns]\nnames = ["a.example"]\nslow_ms = 50\ntimeout = 1.5\n')
    assert s.check.controller == "10.0.0.5" and s.check.timeout == 3.0 and s.check.only == ("dns",)
    assert s.probes["dns"].options == DnsOptions(names=("a.example",), slow_ms=50)
    assert s.probes["dns"].timeout == 1.5


def test_precedence_defaults_file_set_flags(tmp_path):
    s = build(tmp_path, '[check]\ntimeout = 3\nskip = ["legacy"]\n[probes.dns]\nslow_ms = 50\nratio = 1\n',
              flags={"timeout": 7.0, "only": ("dns",)},
              sets=("dns.slow_ms=75", "dns.names=a.example, b.example", "dns.timeout=1.5",
                    "dns.strict=yes"))
    assert s.probes["dns"].options == DnsOptions(names=("a.example", "b.example"), slow_ms=75,
                                                 strict=True, ratio=1)
    assert s.probes["dns"].timeout == 1.5
    assert s.check.timeout == 7.0
    assert s.check.only == ("dns",) and s.check.skip == ()  # --only runs exactly what it names


def test_flag_switches(tmp_path):
    s = build(flags={"color": False, "verbose": True, "json": "-", "code": 2002})
    assert not s.check.color and s.check.verbose and s.check.format == "json" and s.check.json is None
    assert s.check.code == "2002"
    s = build(tmp_path, '[check]\nskip = ["legacy"]\n', flags={"peer": "10.0.0.20", "bandwidth": None})
    assert s.check.peer == "10.0.0.20" and s.check.enable == ("bandwidth", "quality")
    assert st.selected(s, PROBES) == ["dns", "bandwidth", "quality"]
    s = build(flags={"bandwidth": False})
    assert "bandwidth" in s.check.skip
    # --peer asks for the peer probes, but a --skip on the same command line wins ...
    s = build(flags={"peer": "10.0.0.20", "skip": ("bandwidth",)})
    assert "bandwidth" not in s.check.enable and "bandwidth" in s.check.skip
    assert st.selected(s, PROBES) == ["dns", "quality"]
    s = build(flags={"peer": "10.0.0.20", "bandwidth": False})
    assert s.check.enable == ("quality",) and "bandwidth" in s.check.skip
    # ... a config file's skip does not stop bandwidth (asked for), but does stop quality,
    s = build(tmp_path, '[check]\nskip = ["bandwidth", "quality"]\n', flags={"peer": "10.0.0.20"})
    assert s.check.enable == ("bandwidth",)
    # --only means only: --peer names the peer for the probes listed and adds none of its own.
    s = build(flags={"peer": "10.0.0.20", "only": ("dns",)})
    assert s.check.only == ("dns",) and st.selected(s, PROBES) == ["dns"]
    s = build(flags={"peer": "10.0.0.20", "only": ("quality",)})
    assert st.selected(s, PROBES) == ["quality"] and s.check.peer == "10.0.0.20"
    s = build(tmp_path, '[check]\nonly = ["quality"]\n', flags={"peer": "10.0.0.20"})
    assert st.selected(s, PROBES) == ["quality"]
    # --bandwidth names the probe itself: it still joins the list.
    s = build(flags={"peer": "10.0.0.20", "only": ("quality",), "bandwidth": True})
    assert st.selected(s, PROBES) == ["bandwidth", "quality"]


def test_selected_honours_enable_only_skip():
    assert st.selected(build(), PROBES) == ["dns", "bandwidth"]  # legacy is off by default
    assert st.selected(build(flags={"only": ("legacy",)}), PROBES) == ["legacy"]
    assert st.selected(build(flags={"skip": ("dns,bandwidth",)}), PROBES) == []
    assert st.selected(build(flags={"only": ("dns",), "bandwidth": True}), PROBES) == ["dns", "bandwidth"]


@pytest.mark.parametrize("text, words", [
    ("[check]\ncontrolr = '1.2.3.4'\n", "unknown key [check].controlr; known keys: controller, room"),
    ("[check]\nport = 'x'\n", "wrong type"),
    ("[check]\nverbose = 1\n", "wrong type"),
    ("[chek]\n", "unknown section"),
    ("not toml = = =", "not valid TOML"),
    ("[probes]\ndns = 3\n", "must hold tables"),
    ("check = 3\n", "[check] must be a table"),
])
def test_bad_files_are_usage_errors(tmp_path, text, words):
    with pytest.raises(UsageError, match=words.replace("[", r"\[").replace("]", r"\]")):
        st.load(write(tmp_path, text))


def test_bad_probe_options_are_usage_errors(tmp_path):
    known = r"\(options: names, slow_ms, strict, ratio, timeout\)"
    with pytest.raises(UsageError, match="has no option 'slow' " + known):
        build(tmp_path, "[probes.dns]\nslow = 1\n")
    with pytest.raises(UsageError, match="should be int"):
        build(tmp_path, "[probes.dns]\nslow_ms = 'fast'\n")
    with pytest.raises(UsageError, match="names no probe"):
        build(tmp_path, "[probes.nope]\nx = 1\n")
    with pytest.raises(UsageError, match="no probe named 'dsn'"):
        build(flags={"only": ("dsn",)})
    # The probe's own validate hook runs in the same place, before anything runs.
    with pytest.raises(UsageError, match="dns.slow_ms must be a positive number"):
        build(sets=("dns.slow_ms=-4",))
    with pytest.raises(UsageError, match="out of range"):
        build(flags={"timeout": 0.0})
    with pytest.raises(UsageError, match="is not text, json or nagios"):
        build(tmp_path, '[check]\nformat = "yaml"\n')

    def refuse(c: st.CheckSettings) -> None:
        raise UsageError(f"--code {c.code}: no such code")
    with pytest.raises(UsageError, match="--code 1: no such code"):
        build(flags={"code": "1"}, checks=(refuse,))


@pytest.mark.parametrize("item, words", [
    ("dns", "expected PROBE.KEY=VALUE"),
    ("nope.x=1", "no probe 'nope'"),
    ("dns.x=1", "has no option 'x'"),
    ("dns.slow_ms=fast", "not a valid int"),
    ("dns.strict=maybe", "not a valid bool"),
    ("dns.timeout=soon", "not a valid float"),
    ("dns.ratio=1e999999999", "not a valid float"),
    ("dns.ratio=nan", "not a valid float"),
])
def test_bad_set_items(item, words):
    with pytest.raises(UsageError, match=words):
        build(sets=(item,))


def test_missing_and_huge_files_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="cannot read config file"):
        st.load(tmp_path / "absent.toml")
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (st.MAX_CONFIG_BYTES + 10))
    with pytest.raises(UsageError, match="larger than"):
        st.load(big)


def test_every_builtin_probe_declares_typed_frozen_options():
    from roomprobe.core.registry import load_probes

    probes = load_probes()
    s = st.build(st.ConfigFile(), {}, (), probes)
    for pid, p in probes.items():
        opts = s.probes[pid].options
        assert isinstance(opts, p.options), pid
        assert p.__dataclass_params__.frozen and type(opts).__dataclass_params__.frozen, pid
        for name, value in p.option_defaults.items():
            assert getattr(opts, name) == value, (pid, name)
            assert not isinstance(value, list), (pid, name)  # tuples: nothing shared can be mutated


def test_each_check_flag_is_declared_once_as_its_settings_field():
    """One declaration per option: every click option of 'check' (but --help) is a
    CheckSettings field with a flag, named as the field, and every declared flag is an option;
    the [check] keys are the fields that name config types. So --peer's value is
    opts["peer"], then CheckSettings.peer: a reader follows it by one name."""
    from dataclasses import fields

    from roomprobe.commands.check import check

    declared = [f.name for f in fields(st.CheckSettings) if f.metadata.get("flag")]
    options = [p.name for p in check.params if p.name != "help"]
    assert options == declared
    assert st.CHECK_KEYS[:2] == ("controller", "room") and "webhook_secret" not in st.CHECK_KEYS
    assert set(st.CHECK_KEYS) <= {f.name for f in fields(st.CheckSettings)}
    assert st.flags_given({"controller": ("10.0.0.5",), "only": (), "port": None}) == \
        {"controller": "10.0.0.5", "only": None, "port": None}


def test_the_peer_reaches_the_probes_parsed_once():
    """--peer is split by the command, once: a port the user wrote is kept, a missing one is
    None so each probe's own peer_port option applies; TLS and the token ride along."""
    from dataclasses import fields

    from roomprobe.commands.check import _peer
    from roomprobe.core.probe import Context

    assert "settings" not in {f.name for f in fields(Context)}  # probes see no CheckSettings
    assert _peer(st.CheckSettings()) is None
    p = _peer(st.CheckSettings(peer="10.0.0.20", peer_token="tok"))
    assert (p.host, p.port, p.token, p.tls, p.port_or(9100)) == ("10.0.0.20", None, "tok", False, 9100)
    p = _peer(st.CheckSettings(peer="[fe80::1]:9095", peer_tls_unpinned=True))
    assert (p.host, p.port, p.tls, p.port_or(9100)) == ("fe80::1", 9095, True, 9095)
    assert _peer(st.CheckSettings(peer="10.0.0.20:9096")).port == 9096
