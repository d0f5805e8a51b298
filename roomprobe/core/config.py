"""Configuration: defaults, then the TOML file, then flags, in that order of precedence.

Everything a flag can set, the file can set too (``[check]``), and every probe option (endpoints,
thresholds, timeouts) lives under ``[probes.<id>]`` with the default declared by the probe itself.
A typo in a key is a usage error, not a silently ignored setting.

Example::

    [check]
    controller = "10.0.0.5"
    timeout = 5
    skip = ["bandwidth"]

    [probes.controller-port]
    zoom_rooms_processes = ["ZoomRooms.exe"]
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roomprobe.core.errors import UsageError

# [check] keys, their default and type. Flags of the same name (dashes for underscores) win.
CHECK_DEFAULTS: dict[str, Any] = {
    "controller": None,
    "room": None,
    "port": 9090,
    "timeout": 5.0,
    "only": [],
    "skip": [],
    "format": "text",
    "json": None,
    "color": True,
    "verbose": False,
    "code": None,
    "room_name": None,
    "note": None,
    "history": True,
    "history_db": None,
    "history_keep_days": 30.0,
    "history_keep_runs": 5000,
    "prometheus_textfile": None,
    "webhook": None,
}
CHECK_TYPES: dict[str, tuple[type, ...]] = {
    "controller": (str,),
    "room": (str,),
    "port": (int,),
    "timeout": (int, float),
    "only": (list,),
    "skip": (list,),
    "format": (str,),
    "json": (str,),
    "color": (bool,),
    "verbose": (bool,),
    "code": (str, int),
    "room_name": (str,),
    "note": (str,),
    "history": (bool,),
    "history_db": (str,),
    "history_keep_days": (int, float),
    "history_keep_runs": (int,),
    "prometheus_textfile": (str,),
    "webhook": (str,),
}


@dataclass
class Config:
    check: dict[str, Any] = field(default_factory=lambda: dict(CHECK_DEFAULTS))
    probes: dict[str, dict[str, Any]] = field(default_factory=dict)  # raw [probes.X] tables
    source: str | None = None  # the file it came from, for error messages and the report


def default_config_path() -> Path | None:
    """``$ROOMPROBE_CONFIG``, else the platform's user config dir, if the file exists."""
    env = os.environ.get("ROOMPROBE_CONFIG")
    if env:
        return Path(env)
    from platformdirs import user_config_path

    path = user_config_path("roomprobe", appauthor=False) / "config.toml"
    return path if path.is_file() else None


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror or exc}; "
                         "check the path given to --config") from None
    if not data.strip():
        return {}
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"config file {path} is not valid TOML: {exc}") from None


def load(path: Path | None) -> Config:
    """Read and check a config file; ``None`` gives the defaults."""
    cfg = Config()
    if path is None:
        return cfg
    raw = _load_toml(path)
    cfg.source = str(path)
    unknown = set(raw) - {"check", "probes"}
    if unknown:
        raise UsageError(f"config file {path}: unknown section(s) {', '.join(sorted(unknown))}; "
                         "use [check] and [probes.<id>]")
    for key, value in raw.get("check", {}).items():
        if key not in CHECK_DEFAULTS:
            raise UsageError(f"config file {path}: unknown key [check].{key}; "
                             f"known keys: {', '.join(CHECK_DEFAULTS)}")
        if not isinstance(value, CHECK_TYPES[key]) or isinstance(value, bool) != (bool in CHECK_TYPES[key]):
            raise UsageError(f"config file {path}: [check].{key} has the wrong type "
                             f"({type(value).__name__})")
        cfg.check[key] = value
    probes = raw.get("probes", {})
    if not isinstance(probes, dict) or not all(isinstance(v, dict) for v in probes.values()):
        raise UsageError(f"config file {path}: [probes] must hold tables like [probes.dns]")
    cfg.probes = {k: dict(v) for k, v in probes.items()}
    return cfg


def _coerce(text: str, like: Any, where: str) -> Any:
    """Parse a ``--set`` value as the type of the option's default."""
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
            return float(text)
        if isinstance(like, list):
            return [part.strip() for part in text.split(",") if part.strip()]
        if isinstance(like, dict):
            raise UsageError(f"{where} is a table; set it in the config file")
        return text
    except ValueError:
        raise UsageError(f"{where}: {text!r} is not a valid {type(like).__name__}") from None


def parse_set(items: tuple[str, ...], defaults: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``--set PROBE.KEY=VALUE`` (repeatable) into {probe: {key: value}}."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        name, sep, value = item.partition("=")
        probe_id, dot, key = name.partition(".")
        if not sep or not dot or not key:
            raise UsageError(f"--set {item!r}: expected PROBE.KEY=VALUE, e.g. --set controller-port.port=9090")
        if probe_id not in defaults:
            raise UsageError(f"--set {item!r}: no probe {probe_id!r}; see 'roomprobe probes'")
        if key not in defaults[probe_id]:
            known = ", ".join(defaults[probe_id]) or "none"
            raise UsageError(f"--set {item!r}: probe {probe_id} has no option {key!r} (options: {known})")
        out.setdefault(probe_id, {})[key] = _coerce(value, defaults[probe_id][key], f"--set {name}")
    return out


def probe_options(probe_id: str, defaults: Mapping[str, Any], cfg: Config,
                  overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults < config file < --set, with unknown or mistyped keys refused."""
    opts = dict(defaults)
    for key, value in cfg.probes.get(probe_id, {}).items():
        if key not in defaults:
            known = ", ".join(defaults) or "none"
            raise UsageError(f"config file {cfg.source}: probe {probe_id} has no option {key!r} "
                             f"(options: {known})")
        like = defaults[key]
        if like is not None and not _same_kind(value, like):
            raise UsageError(f"config file {cfg.source}: [probes.{probe_id}].{key} should be "
                             f"{type(like).__name__}, got {type(value).__name__}")
        opts[key] = value
    opts.update(overrides)
    return opts


def _same_kind(value: Any, like: Any) -> bool:
    if isinstance(like, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(like, bool)
    if isinstance(like, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(like))


def check_unknown_probe_tables(cfg: Config, known: set[str]) -> None:
    for probe_id in cfg.probes:
        if probe_id not in known:
            raise UsageError(f"config file {cfg.source}: [probes.{probe_id}] names no probe; "
                             "see 'roomprobe probes'")
