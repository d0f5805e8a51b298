"""The exporter's modules: what ``/probe?module=NAME`` runs, from a TOML file (``--config``).

Why modules and not query parameters: as in blackbox_exporter, whoever can reach ``/probe``
chooses a target and a module name, nothing else. Ports, timeouts, probe lists, the check's
config file and the agents' token are the operator's, in this file; a scrape cannot turn the
exporter into a port scanner with arbitrary options or make it send the token to an address
of its choosing (``room-agent`` asks only the agent the inventory names for that room).

Kinds::

    [modules.room]            # one sweep row: TCP 9090 + reachability from this host
    kind = "room"
    timeout = 5               # the most a probe of this module takes (the scrape's caps it)
    connect_timeout = 2.5     # the longest silence is waited for (sweep --timeout)
    port = 9090               # for targets given without a port

    [modules.room-agent]      # the sweep row + the room's own check via its 'serve --agent'
    kind = "room-agent"
    timeout = 30
    only = ["interfaces", "subnet", "controller-port"]   # the room's check (agent's default: all)
    check_timeout = 10
    token_file = "/etc/roomprobe/peer-token"   # else the environment's ROOMPROBE_PEER_TOKEN

    [modules.cloud]           # this host's own check: its path to Zoom
    kind = "check"
    target = "label"          # the target only names the series (room="<target>")
    only = ["dns", "cloud"]
    timeout = 30
    check_timeout = 10
    config = "/etc/roomprobe/roomprobe.toml"   # optional: the check's config file

    [modules.quality]         # call quality and bandwidth to a peer ('roomprobe serve')
    kind = "check"
    target = "peer"           # target = the peer, ADDR[:PORT]
    only = ["quality", "bandwidth"]
    timeout = 55

Without ``--config`` the built-in modules are ``room`` and ``cloud``, plus ``room-agent`` and
``quality`` when a peer token is set (ROOMPROBE_PEER_TOKEN). Every mistake is one line, exit 3.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from typing import Any

from roomprobe.core.errors import UsageError
from roomprobe.peer.port import PEER_PORT

MAX_CONFIG_BYTES = 1024 * 1024
MAX_MODULES = 64
MAX_TIMEOUT = 300.0
KINDS = ("room", "room-agent", "check")
CHECK_TARGETS = ("label", "peer", "room")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
COMMON_KEYS = ("kind", "timeout")
KEYS = {
    "room": (*COMMON_KEYS, "connect_timeout", "port"),
    "room-agent": (*COMMON_KEYS, "connect_timeout", "port", "only", "check_timeout", "token_file"),
    "check": (*COMMON_KEYS, "target", "only", "check_timeout", "config", "token_file", "port"),
}
TOKEN_ENV = "ROOMPROBE_PEER_TOKEN"


@dataclass(frozen=True)
class Module:
    """One module, validated; ``token`` is read from ``token_file`` or the environment."""

    name: str
    kind: str
    timeout: float = 5.0
    connect_timeout: float = 2.5
    port: int = 9090
    only: tuple[str, ...] = ()
    check_timeout: float = 10.0
    target: str = "room"
    config: str | None = None
    token: str | None = field(default=None, repr=False)

    @property
    def needs_token(self) -> bool:
        return self.kind == "room-agent" or (self.kind == "check" and self.target == "peer")


def builtin(token: str | None) -> dict[str, Module]:
    """The modules without a config file (those needing a token only when one is set)."""
    mods = [Module("room", "room", timeout=5.0),
            Module("cloud", "check", timeout=30.0, target="label", only=("dns", "cloud")),
            Module("path", "check", timeout=30.0, target="label", only=("path",))]
    if token:
        mods += [Module("room-agent", "room-agent", timeout=30.0, token=token),
                 Module("quality", "check", timeout=55.0, target="peer",
                        only=("quality", "bandwidth"), port=PEER_PORT, token=token)]
    return {m.name: m for m in mods}


def _number(raw: dict[str, Any], key: str, where: str, default: float, lo: float, hi: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise UsageError(f"{where}: {key} must be a number of seconds from {lo:g} to {hi:g}")
    return float(value)


def _module(name: str, raw: Any, where: str, base_dir: str, env_token: str | None,
            probe_ids: frozenset[str]) -> Module:
    from roomprobe.core.fsutil import read_text_bounded

    if not NAME_RE.match(name):
        raise UsageError(f"{where}: module name {name!r}: use letters, digits, '-', '_' or '.'")
    if not isinstance(raw, dict):
        raise UsageError(f"{where}: [modules.{name}] must be a table")
    kind = raw.get("kind", name if name in KINDS else None)
    if kind not in KINDS:
        raise UsageError(f"{where}: kind must be one of {', '.join(KINDS)}")
    unknown = sorted(str(k) for k in raw if k not in KEYS[kind])
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(unknown[:5])} for kind {kind}; "
                         f"known: {', '.join(KEYS[kind])}")
    m = Module(name, kind)
    timeout = _number(raw, "timeout", where, 5.0 if kind == "room" else 30.0, 0.5, MAX_TIMEOUT)
    connect = _number(raw, "connect_timeout", where, 2.5, 0.1, 60)
    check_timeout = _number(raw, "check_timeout", where, 10.0, 1, 30)
    port = raw.get("port", PEER_PORT if kind == "check" else 9090)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise UsageError(f"{where}: port must be 1-65535")
    only = raw.get("only", [] if kind != "check" else None)
    if only is None:
        raise UsageError(f"{where}: a check module needs only = [probe ids], e.g. [\"dns\", \"cloud\"]")
    if not isinstance(only, list) or not all(isinstance(p, str) for p in only):
        raise UsageError(f"{where}: only must be a list of probe ids")
    bad = sorted(p for p in only if p not in probe_ids)
    if bad:
        raise UsageError(f"{where}: unknown probe id(s) {', '.join(bad[:5])}; known: "
                         f"{', '.join(sorted(probe_ids))}")
    if kind == "room-agent":
        from roomprobe.peer.agent import DENIED

        denied = sorted(set(only) & DENIED)
        if denied:
            raise UsageError(f"{where}: an agent never runs {', '.join(denied)} for a caller; use "
                             "a check module with target = \"peer\" for them")
    target = raw.get("target", "room")
    if kind == "check" and target not in CHECK_TARGETS:
        raise UsageError(f"{where}: target must be one of {', '.join(CHECK_TARGETS)}")
    config = raw.get("config")
    if config is not None:
        if not isinstance(config, str) or not config.strip():
            raise UsageError(f"{where}: config must be the path of a roomprobe config file")
        config = config if os.path.isabs(config) else os.path.join(base_dir, config)
        if not os.path.isfile(config):
            raise UsageError(f"{where}: config {config} does not exist")
    token = env_token
    tf = raw.get("token_file")
    if tf is not None:
        if not isinstance(tf, str) or not tf.strip():
            raise UsageError(f"{where}: token_file must be a path")
        tf = tf if os.path.isabs(tf) else os.path.join(base_dir, tf)
        token = (read_text_bounded(tf, 4096, "token file").strip().splitlines() or [""])[0].strip()
        if not token:
            raise UsageError(f"{where}: token file {tf} is empty")
    m = replace(m, timeout=timeout, connect_timeout=connect, check_timeout=check_timeout,
                port=port, only=tuple(dict.fromkeys(only)), target=str(target), config=config,
                token=token)
    if m.needs_token and not m.token:
        raise UsageError(f"{where}: this module sends the agents' token: set token_file or "
                         f"{TOKEN_ENV}")
    return m


def load(path: str | None, probe_ids: frozenset[str] | None = None,
         env_token: str | None = None) -> dict[str, Module]:
    """The modules of ``path`` (None: the built-in ones)."""
    from roomprobe.core.fsutil import loads_toml_bounded, read_bounded

    if probe_ids is None:
        from roomprobe.core.registry import load_probes

        probe_ids = frozenset(load_probes())
    if path is None:
        return builtin(env_token)
    raw = loads_toml_bounded(read_bounded(path, MAX_CONFIG_BYTES, "exporter config"),
                             f"exporter config {path}", max_depth=4)
    extra = sorted(k for k in raw if k != "modules")
    if extra:
        raise UsageError(f"exporter config {path}: unknown table(s) {', '.join(extra[:5])}; write "
                         "[modules.NAME] tables")
    mods = raw.get("modules")
    if not isinstance(mods, dict) or not mods:
        raise UsageError(f"exporter config {path}: no [modules.NAME] tables; see docs/exporter.md")
    if len(mods) > MAX_MODULES:
        raise UsageError(f"exporter config {path}: more than {MAX_MODULES} modules")
    base = os.path.dirname(os.path.abspath(path))
    return {name: _module(name, body, f"exporter config {path} [modules.{name}]", base, env_token,
                          probe_ids)
            for name, body in mods.items()}
