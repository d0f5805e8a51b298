"""Typed settings: built once, from defaults <- config file <- ``--set`` <- flags, validated here.

Why one place: a value's way from the command line to the probe that uses it should be one
read, not a grep, and a typo in a key must fail before any probe runs with one clear line
(exit 3), whichever of the three ways it came in. So:

- :class:`CheckSettings` holds the check's own settings (``[check]`` in the file, the flags).
  Each field is declared once with :func:`setting`: default, flag, help, config-file types.
  ``roomprobe check``'s click options are generated from those fields and named after them,
  so ``--peer`` is ``opts["peer"]``, then ``CheckSettings.peer``: one name from flag to field;
- every probe declares a frozen ``Options`` dataclass (its defaults are Zoom's real endpoints and
  the published thresholds); :func:`build` fills one per probe and hands it to the probe as
  ``ctx.options``; the probe reads attributes, so a misspelt option is an AttributeError in the
  tests, not a silent default in the field;
- :class:`Settings` bundles both; commands receive it, probes see their own part.

Layering follows the types: a field's kind is its default's kind (bool, int, float, str, tuple of
str/number); a TOML list becomes a tuple, ``--set a=x,y`` a tuple of the element kind.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from roomprobe.core.errors import UsageError

MAX_CONFIG_BYTES = 1 << 20  # a config file is a few hundred bytes; refuse anything absurd


@dataclass(frozen=True)
class Flag:
    """How one setting appears on ``roomprobe check``'s command line: commands/check.py turns
    each into a click option (in field order), so the flag, its help and the field it fills
    are written once. ``kind`` is the value's type (str, int, float, bool for ``--x/--no-x``);
    ``choices``/``bounds`` narrow it; ``flag_value`` is what an ``is_flag`` switch sets
    (``--no-color``: False)."""

    decls: tuple[str, ...]
    help: str
    metavar: str | None = None
    kind: type = str
    choices: tuple[str, ...] = ()
    bounds: tuple[int, int] | None = None
    multiple: bool = False
    is_flag: bool = False
    flag_value: bool = True
    envvar: str | None = None
    file_path: bool = False  # a file that need not exist yet (click.Path(dir_okay=False))


def setting(default: Any, *decls: str, help: str = "", config: tuple[type, ...] = (),
            probe: str | None = None, **flag: Any) -> Any:
    """One CheckSettings field, declared once: its default, its flag (``decls``, ``help`` and
    the click details in ``flag``), the types a ``[check]`` config key may give (``config``;
    none: not a config key), and ``probe``: the ``PROBE.OPTION`` it sets instead, as ``--set``
    would (the bandwidth profile flags: a probe reads its own options, never these settings)."""
    meta: dict[str, Any] = {"config": config, "probe": probe}
    if decls:
        meta["flag"] = Flag(decls, help, **flag)
    return field(default=default, metadata=meta)


def _one_address(flag: str, values: Any) -> str | None:
    """--room/--controller name one address per check; several are refused, never half-used."""
    values = tuple(values or ())
    if len(values) > 1 and flag == "room":
        raise UsageError(f"--room given {len(values)} times: a check looks at one room; for "
                         f"several rooms at once run 'roomprobe sweep {' '.join(values[:3])}'")
    if len(values) > 1:
        raise UsageError(f"--{flag} given {len(values)} times: a check looks at one room; "
                         f"run one check per {flag} (e.g. for a in {' '.join(values[:3])}; do "
                         f"roomprobe check --{flag} $a; done)")
    return values[0] if values else None


@dataclass(frozen=True)
class CheckSettings:
    """Everything ``roomprobe check`` is told. Each field declares its flag (commands/check.py
    builds the click option from it, in this order: ``check --help`` lists them so) and, where
    ``config`` names types, the ``[check]`` key of the same name. Flags win over the file."""

    controller: str | None = setting(None, "--controller", metavar="ADDR", multiple=True, config=(str,),
                                     help="The controller's address (run this on the room).")
    room: str | None = setting(None, "--room", metavar="ADDR", multiple=True, config=(str,),
                               help="The room's address (run this next to the controller); one per check.")
    port: int = setting(9090, "--port", kind=int, config=(int,),
                        help="Controller-to-room TCP port [default: 9090].")
    timeout: float = setting(5.0, "--timeout", kind=float, metavar="S", config=(int, float),
                             help="Global deadline in seconds for all quick probes [default: 5].")
    config: str | None = setting(None, "--config", file_path=True,
                                 help="TOML config file [default: $ROOMPROBE_CONFIG or the user config dir].")
    only: tuple[str, ...] = setting((), "--only", multiple=True, metavar="IDS", config=(list,),
                                    help="Run only these probes (comma-separated).")
    skip: tuple[str, ...] = setting((), "--skip", multiple=True, metavar="IDS", config=(list,),
                                    help="Skip these probes (comma-separated).")
    set_options: tuple[str, ...] = setting(  # PROBE.KEY=VALUE, read by build() into each probe's Options
        (), "--set", multiple=True, metavar="PROBE.KEY=VALUE",
        help="Override a probe option (endpoints, thresholds); see 'roomprobe probes'.")
    code: str | None = setting(None, "--code", metavar="CODE", config=(str, int),
                               help="The error code the user saw (2002, zoom-rooms:2002): its causes come first.")
    room_name: str | None = setting(
        None, "--room-name", metavar="NAME", config=(str,),
        help="The room's name as the customer knows it (for the ticket) [config: room_name].")
    note: str | None = setting(None, "--note", metavar="TEXT", config=(str,),
                               help="Free text for the ticket (what the user saw).")
    format: str = setting("text", "--format", choices=("text", "json", "nagios"), config=(str,),
                          help="Output on stdout; nagios: one status line + perfdata [default: text].")
    json: str | None = setting(None, "--json", metavar="PATH|-", config=(str,),
                               help="Also write the JSON report to PATH (atomically); '-' means JSON on stdout.")
    color: bool = setting(True, "--no-color", is_flag=True, flag_value=False, config=(bool,),
                          help="No colours (also: NO_COLOR=1).")
    verbose: bool = setting(False, "-v", "--verbose", is_flag=True, config=(bool,),
                            help="Show each probe's evidence.")
    history: bool = setting(True, "--history/--no-history", kind=bool, config=(bool,),
                            help="Record this run in the history database [default: on].")
    history_db: str | None = setting(
        None, "--history-db", metavar="PATH", config=(str,),
        help="History database [default: $ROOMPROBE_HISTORY_DB or the user state dir].")
    history_keep_days: float = setting(30.0, config=(int, float))
    history_keep_runs: int = setting(5000, config=(int,))
    prometheus_textfile: str | None = setting(
        None, "--prometheus-textfile", metavar="PATH.prom", config=(str,),
        help="Write metrics for node_exporter/windows_exporter's textfile collector.")
    webhook: str | None = setting(None, "--webhook", metavar="URL", config=(str,),
                                  help="POST the report to URL when the status changed since the last run.")
    webhook_format: str = setting(
        "json", "--webhook-format", choices=("json", "slack", "teams"), config=(str,),
        help="Webhook body: roomprobe json, a Slack message, a Teams Adaptive Card [default: json].")
    webhook_headers: tuple[str, ...] = setting(
        (), "--webhook-header", multiple=True, metavar="'NAME: VALUE'", config=(list,),
        help="Extra header on each webhook POST (e.g. a ticket system's Authorization).")
    webhook_secret: str | None = setting(  # the HMAC key: flag or environment, never a config key
        None, "--webhook-secret", metavar="KEY", envvar="ROOMPROBE_WEBHOOK_SECRET",
        help="Sign webhook POSTs (X-Roomprobe-Signature: HMAC-SHA256; also: ROOMPROBE_WEBHOOK_SECRET).")
    peer: str | None = setting(None, "--peer", metavar="ADDR[:PORT]",
                               help="Measure bandwidth/latency to a 'roomprobe serve' peer (the LAN path).")
    peer_token: str | None = setting(
        None, "--peer-token", metavar="TOKEN", envvar="ROOMPROBE_PEER_TOKEN",
        help="The session token 'roomprobe serve' printed (also: ROOMPROBE_PEER_TOKEN).")
    peer_fingerprint: str | None = setting(  # serve --tls's certificate, 64 hex (peer/tls.py)
        None, "--peer-fingerprint", metavar="SHA256", envvar="ROOMPROBE_PEER_FINGERPRINT",
        help="Speak TLS to the peer and pin its certificate: the SHA-256 fingerprint "
             "'roomprobe serve --tls' printed (a different certificate: nothing is sent, exit 3).")
    peer_tls_unpinned: bool = setting(
        False, "--peer-tls-unpinned", is_flag=True,
        help="Speak TLS to the peer WITHOUT checking its certificate: hides the token from "
             "listeners, not from a machine in the middle (prefer --peer-fingerprint).")
    bandwidth: bool | None = setting(
        None, "--bandwidth/--no-bandwidth", kind=bool,
        help="Run (or skip, for a quick check) the bandwidth probe [default: run].")
    displays: int | None = setting(
        None, "--displays", kind=int, bounds=(1, 3), metavar="1-3", probe="bandwidth.displays",
        help="The room's display count for the bandwidth profile [default: detected "
             "from the OS on the room PC, else 1].")
    resolution: str | None = setting(
        None, "--resolution", choices=("720p", "1080p"), probe="bandwidth.resolution",
        help="The room's video resolution for the bandwidth profile [default: 720p].")
    share: bool | None = setting(None, "--share/--no-share", kind=bool, probe="bandwidth.share",
                                 help="Count screen sharing in the bandwidth profile [default: off].")
    # Derived, never given: the probes --bandwidth/--peer switched on by name (see _check_settings).
    enable: tuple[str, ...] = ()


# [check] keys the file may set, with the types each accepts (bool is never an int here).
CHECK_TYPES: dict[str, tuple[type, ...]] = {
    f.name: f.metadata["config"] for f in fields(CheckSettings) if f.metadata.get("config")}
CHECK_KEYS: tuple[str, ...] = tuple(CHECK_TYPES)


def flags_given(params: Mapping[str, Any]) -> dict[str, Any]:
    """click's parsed values (keyed by CheckSettings field: commands/check.py names each option
    so) -> the flags actually given. A repeatable flag given no times, or a flag left at
    click's ``None``, is "not given", so the config file's value stands."""
    out: dict[str, Any] = {}
    for f in fields(CheckSettings):
        flag = f.metadata.get("flag")
        if flag is None or f.name not in params:
            continue
        value = params[f.name]
        if f.name in ("controller", "room"):
            value = _one_address(f.name, value)
        elif flag.multiple:
            value = tuple(value or ()) or None
        out[f.name] = value
    return out


@dataclass(frozen=True)
class ProbeSettings:
    """One probe's typed options plus its timeout (``--set dns.timeout=3`` sets the latter)."""

    options: Any
    timeout: float


@dataclass(frozen=True)
class Settings:
    check: CheckSettings
    probes: Mapping[str, ProbeSettings]
    source: str | None = None  # the config file it came from


@dataclass
class ConfigFile:
    """A config file as read: ``[check]`` and the raw ``[probes.<id>]`` tables."""

    check: dict[str, Any] = field(default_factory=dict)
    probes: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str | None = None


def split_ids(values: Iterable[Any]) -> tuple[str, ...]:
    """``("a,b", "c")`` -> ``("a", "b", "c")``: --only/--skip and their config lists."""
    return tuple(p.strip() for v in values for p in str(v).split(",") if p.strip())


# ---------------------------------------------------------------- the config file


def default_config_path() -> Path | None:
    """``$ROOMPROBE_CONFIG``, else the platform's user config dir, if the file exists."""
    env = os.environ.get("ROOMPROBE_CONFIG")
    if env:
        return Path(env)
    from platformdirs import user_config_path

    path = user_config_path("roomprobe", appauthor=False) / "config.toml"
    return path if path.is_file() else None


def load(path: Path | None) -> ConfigFile:
    """Read and check a config file's shape; ``None`` gives an empty one."""
    cfg = ConfigFile()
    if path is None:
        return cfg
    from roomprobe.core.fsutil import loads_toml_bounded, read_bounded

    data = read_bounded(path, MAX_CONFIG_BYTES, "config file")
    raw: dict[str, Any] = loads_toml_bounded(data, f"config file {path}") if data.strip() else {}
    cfg.source = str(path)
    unknown = set(raw) - {"check", "probes"}
    if unknown:
        raise UsageError(f"config file {path}: unknown section(s) {', '.join(sorted(unknown))}; "
                         "use [check] and [probes.<id>]")
    check = raw.get("check", {})
    if not isinstance(check, dict):
        raise UsageError(f"config file {path}: [check] must be a table")
    for key, value in check.items():
        if key not in CHECK_TYPES:
            raise UsageError(f"config file {path}: unknown key [check].{key}; "
                             f"known keys: {', '.join(CHECK_KEYS)}")
        types = CHECK_TYPES[key]
        if not isinstance(value, types) or isinstance(value, bool) != (bool in types):
            raise UsageError(f"config file {path}: [check].{key} has the wrong type "
                             f"({type(value).__name__})")
        cfg.check[key] = value
    probes = raw.get("probes", {})
    if not isinstance(probes, dict) or not all(isinstance(v, dict) for v in probes.values()):
        raise UsageError(f"config file {path}: [probes] must hold tables like [probes.dns]")
    cfg.probes = {k: dict(v) for k, v in probes.items()}
    return cfg


# ---------------------------------------------------------------- probe options


def option_defaults(options_cls: type) -> dict[str, Any]:
    """A probe's options and their defaults, in declaration order (for ``roomprobe probes``)."""
    out: dict[str, Any] = {}
    for f in fields(options_cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def options_class(probe_id: str, defaults: Mapping[str, Any]) -> type:
    """A frozen Options dataclass from a plain defaults mapping (for third-party probes)."""
    specs = [(key, type(value), field(default=_freeze(value))) for key, value in defaults.items()]
    return dataclasses.make_dataclass(f"{probe_id.title().replace('-', '')}Options", specs, frozen=True)


def _freeze(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _same_kind(value: Any, like: Any) -> bool:
    if isinstance(like, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(like, bool)
    if isinstance(like, float):
        return isinstance(value, (int, float))
    if isinstance(like, (tuple, list)):
        return isinstance(value, (tuple, list))
    return isinstance(value, type(like))


def _coerce(text: str, like: Any, where: str) -> Any:
    """Parse a ``--set`` value as the kind of the option's default."""
    try:
        if isinstance(like, bool):
            low = text.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if isinstance(like, int):
            return int(text)
        if isinstance(like, float):
            number = float(text)
            if not math.isfinite(number):
                raise ValueError(text)
            return number
        if isinstance(like, (tuple, list)):
            parts = [part.strip() for part in text.split(",") if part.strip()]
            elem = like[0] if like else ""
            if isinstance(elem, (int, float)) and not isinstance(elem, bool):
                return tuple(type(elem)(p) for p in parts)
            return tuple(parts)
        if isinstance(like, dict):
            raise UsageError(f"{where} is a table; set it in the config file")
        return text
    except (ValueError, OverflowError):
        raise UsageError(f"{where}: {text!r} is not a valid {type(like).__name__}") from None


def _known(defaults: Mapping[str, Any]) -> str:
    return ", ".join(defaults) or "none"


def parse_set(items: Iterable[str], defaults: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``--set PROBE.KEY=VALUE`` (repeatable) into {probe: {key: value}}, each refused on its own line."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        name, sep, value = item.partition("=")
        probe_id, dot, key = name.partition(".")
        if not sep or not dot or not key:
            raise UsageError(f"--set {item!r}: expected PROBE.KEY=VALUE, e.g. --set controller-port.port=9090")
        if probe_id not in defaults:
            raise UsageError(f"--set {item!r}: no probe {probe_id!r}; see 'roomprobe probes'")
        if key not in defaults[probe_id]:
            raise UsageError(f"--set {item!r}: probe {probe_id} has no option {key!r} "
                             f"(options: {_known(defaults[probe_id])})")
        out.setdefault(probe_id, {})[key] = _coerce(value, defaults[probe_id][key], f"--set {name}")
    return out


def probe_values(probe_id: str, defaults: Mapping[str, Any], cfg: ConfigFile,
                 overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults < config file < --set for one probe, with unknown or mistyped keys refused."""
    values = dict(defaults)
    for key, value in cfg.probes.get(probe_id, {}).items():
        if key not in defaults:
            raise UsageError(f"config file {cfg.source}: probe {probe_id} has no option {key!r} "
                             f"(options: {_known(defaults)})")
        like = defaults[key]
        if like is not None and not _same_kind(value, like):
            raise UsageError(f"config file {cfg.source}: [probes.{probe_id}].{key} should be "
                             f"{type(like).__name__}, got {type(value).__name__}")
        values[key] = _freeze(value)
    values.update(overrides)
    return values


# ---------------------------------------------------------------- the whole build


def build(cfg: ConfigFile, flags: Mapping[str, Any], set_items: Iterable[str], probes: Mapping[str, Any],
          checks: Iterable[Callable[[CheckSettings], None]] = ()) -> Settings:
    """Layer defaults <- file <- ``--set`` <- flags into typed settings and validate everything.

    ``probes`` maps probe id -> Probe (its ``options`` class, ``timeout_s`` and ``validate``
    hook). ``flags`` holds only what the command line gave (``None`` means "not given").
    ``checks`` are the command's own validators for values whose meaning lives higher up (an
    error code in the catalog, a webhook URL): they run here so every refusal happens before
    any probe does, as one :class:`UsageError` line (exit 3).
    """
    for probe_id in cfg.probes:
        if probe_id not in probes:
            raise UsageError(f"config file {cfg.source}: [probes.{probe_id}] names no probe; "
                             "see 'roomprobe probes'")
    check = _check_settings(cfg, flags)
    unknown = [name for name in (*check.only, *check.skip) if name not in probes]
    if unknown:
        raise UsageError(f"no probe named {unknown[0]!r}; known: {', '.join(probes)}")

    defaults = {pid: {**option_defaults(p.options), "timeout": p.timeout_s} for pid, p in probes.items()}
    overrides = parse_set(set_items, defaults)
    for pid, key, value in _probe_flags(check):  # --displays 2: as --set bandwidth.displays=2, last
        if key in defaults.get(pid, {}):
            overrides.setdefault(pid, {})[key] = value
    built: dict[str, ProbeSettings] = {}
    for pid, p in probes.items():
        values = probe_values(pid, defaults[pid], cfg, overrides.get(pid, {}))
        timeout = values.pop("timeout")
        try:
            timeout = float(timeout)
        except (TypeError, ValueError):
            raise UsageError(f"{pid}.timeout: {timeout!r} is not a number of seconds") from None
        if not (0 < timeout <= 3600):
            raise UsageError(f"{pid}.timeout {timeout:g} is out of range; give seconds, e.g. 3")
        built[pid] = ProbeSettings(p.options(**values), timeout)
    settings = Settings(check=check, probes=built, source=cfg.source)
    for pid in selected(settings, probes):
        hook = probes[pid].validate
        if hook is not None:
            hook(built[pid].options)
    for extra in checks:
        extra(check)
    return settings


def _probe_flags(check: CheckSettings) -> list[tuple[str, str, Any]]:
    """(probe, option, value) for each flag given that sets a probe's option (``probe=`` in
    its declaration)."""
    out = []
    for f in fields(CheckSettings):
        target, value = f.metadata.get("probe"), getattr(check, f.name)
        if target and value is not None:
            pid, _, key = target.partition(".")
            out.append((pid, key, value))
    return out


def _check_settings(cfg: ConfigFile, flags: Mapping[str, Any]) -> CheckSettings:
    values: dict[str, Any] = {k: _freeze(v) for k, v in cfg.check.items()}
    if values.get("code") is not None:
        values["code"] = str(values["code"])
    values["only"] = split_ids(values.get("only", ()))
    values["skip"] = split_ids(values.get("skip", ()))
    given = {k: v for k, v in flags.items() if v is not None}
    only, skip = split_ids(given.pop("only", ())), split_ids(given.pop("skip", ()))
    if only:  # --only runs exactly what it names (less --skip on the same command line)
        values["only"], values["skip"] = only, ()
    if skip:
        values["skip"] = skip
    bandwidth = given.get("bandwidth")
    peer = given.pop("peer", None)
    token = given.pop("peer_token", None)
    if peer is not None:
        values["peer"], values["peer_token"] = peer, token
    # The peer probes: --bandwidth asks for the bandwidth test; --peer asks for both LAN
    # measurements (bandwidth and, unless skipped anywhere, call quality). Asked for on the
    # command line they beat a config file's skip list; a --skip or --no-bandwidth on the same
    # command line always wins. --only means only: with an --only list, --peer just names the
    # peer for the probes listed (--only quality --peer X runs quality, not the 10 s bandwidth
    # test); --bandwidth, which names the probe itself, still joins it.
    asked: list[str] = []
    if bandwidth is False:
        values["skip"] = (*values["skip"], "bandwidth")
    elif (bandwidth or peer is not None) and "bandwidth" not in skip:
        asked.append("bandwidth")
        values["skip"] = tuple(p for p in values["skip"] if p != "bandwidth")
    if peer is not None and "quality" not in values["skip"]:
        asked.append("quality")
    if asked:
        values["enable"] = tuple(asked)
        if values["only"] and bandwidth and "bandwidth" in asked and "bandwidth" not in values["only"]:
            values["only"] = (*values["only"], "bandwidth")
    if given.get("code") is not None:
        given["code"] = str(given["code"])
    values.update(given)
    check = CheckSettings(**values)
    try:
        timeout = float(check.timeout)
    except (TypeError, ValueError):
        timeout = float("nan")
    if not (0 < timeout <= 600):
        raise UsageError(f"--timeout {check.timeout} is out of range; give seconds, e.g. --timeout 5")
    if check.format not in ("text", "json", "nagios"):
        raise UsageError(f"format {check.format!r} is not text, json or nagios")
    check = replace(check, timeout=timeout)
    check_peer_token(check.peer_token)
    if check.json == "-":
        check = replace(check, format="json", json=None)
    return check


def check_file_option(name: str, value: object) -> None:
    """An option naming a file (``proxy.ca_file``): empty means "not set"; anything else must be
    an existing regular file, refused here in one line rather than as a FileNotFoundError in
    the middle of a probe."""
    path = str(value or "")
    if not path:
        return
    if not path.isprintable():
        raise UsageError(f"{name}={path!r}: the path contains control characters")
    try:
        st = os.stat(path)
    except OSError as exc:
        raise UsageError(f"{name}={path!r}: {exc.strerror or exc}; give the path of an existing "
                         "file, or leave it empty") from None
    except ValueError as exc:  # an embedded NUL
        raise UsageError(f"{name}={path!r}: {exc}") from None
    import stat

    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{name}={path!r} is not a regular file; give the path of a PEM file")


def check_peer_token(token: str | None) -> None:
    """--peer-token travels in an HTTP header (Latin-1 only) and a keyed UDP header: what
    'roomprobe serve' prints is printable ASCII. Anything else is a mistyped token, refused
    here (never echoed: it is a secret) instead of crashing http.client mid-probe."""
    if token is None:
        return
    if not token or not token.isascii() or not token.isprintable() or any(c.isspace() for c in token):
        raise UsageError("--peer-token must be the token 'roomprobe serve' printed (printable "
                         "ASCII, no spaces); check it was copied whole (also: ROOMPROBE_PEER_TOKEN)")


def selected(settings: Settings, probes: Mapping[str, Any]) -> list[str]:
    """The probes this check runs: --only, else the default set plus enabled ones, less --skip."""
    c = settings.check
    return [pid for pid, p in probes.items()
            if (pid in c.only if c.only else (p.default_enabled or pid in c.enable)) and pid not in c.skip]
