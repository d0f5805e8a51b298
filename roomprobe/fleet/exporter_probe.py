"""One ``/probe``: a module run against one target within a budget, and its metrics.

Why the work is split this way: the exporter reuses what the other commands measure, it does
not measure anew. ``room`` is one row of ``sweep`` (fleet/sweep.py's per-room logic, the same
report); ``room-agent`` is that row plus the room's own check asked of its ``serve --agent``
(peer/agent.py's client, merged the way ``sweep --deep`` merges it); ``check`` modules run
``roomprobe check`` itself in a child process (isolated, killed at the budget): the runner,
the probes and the report are the check's own. The metrics are then the ones
``check --prometheus-textfile`` and ``sweep`` write (fleet/metrics.py), so the shipped rules
and dashboard read the three alike, plus blackbox_exporter's ``probe_success``,
``probe_duration_seconds`` and ``probe_timeout_seconds``, always emitted, even when the module
could not produce a report.

Why a child process for checks and not threads: the exporter runs for months. A probe thread
that hangs cannot be killed and would pile up scrape after scrape; a child is killed at its
deadline and takes its sockets with it.

``probe_success`` is 1 when the module's report says PASS or WARN (the room works, perhaps
degraded) and 0 for FAIL, UNKNOWN or no report; ``roomprobe_exit_code`` tells them apart.
"""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from roomprobe.fleet.exporter_modules import Module

if TYPE_CHECKING:
    from roomprobe.report.model import Report

LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")
MIN_CONNECT_S = 0.1
ROOM_MARGIN_S = 0.3  # after the connects: the neighbour lookup and the report


class BadTarget(ValueError):
    """A target the module cannot take; the message is the one line of the 400."""


@dataclass
class Outcome:
    """What one probe produced: reports (with exit codes) when measured, else why not."""

    success: bool = False
    reports: list[tuple[Report, int]] = field(default_factory=list)
    error: str | None = None  # "deadline", "no-report", ...
    detail: str = ""
    duration_s: float = 0.0
    timeout_s: float = 0.0


@dataclass(frozen=True)
class Target:
    """A parsed target: the address (and port) or, for a label module, the name."""

    text: str
    address: str | None = None
    port: int = 0
    room: Any = None  # the inventory's sweep.Room for this address, if any


def _ip(text: str) -> str:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise BadTarget(f"target {_shown(text)} is not an IP address (ADDR or ADDR:PORT)") from None
    if ip.is_unspecified or ip.is_multicast:
        raise BadTarget(f"target {ip} cannot be a room's address")
    return str(ip)


def _shown(text: str) -> str:
    text = "".join(c if c.isprintable() else "?" for c in text)
    return repr(text if len(text) <= 60 else text[:57] + "...")


def parse_target(module: Module, text: str, inventory: Mapping[tuple[str, int], Any]) -> Target:
    """Validate ``target`` for ``module``; raises BadTarget (a 400 with one line)."""
    from roomprobe.peer.link import split_peer

    text = text.strip()
    if not text:
        raise BadTarget("target is empty: give the room's address, e.g. target=10.0.0.20")
    if len(text) > 256:
        raise BadTarget("target is longer than 256 characters")
    if module.kind == "check" and module.target == "label":
        if not LABEL_RE.match(text):
            raise BadTarget(f"target {_shown(text)}: module {module.name} takes a name for the "
                            "series (letters, digits, '.', '-', '_', ':', '@')")
        return Target(text)
    try:
        host, port = split_peer(text, module.port)
    except ValueError:
        raise BadTarget(f"target {_shown(text)} is not ADDR or ADDR:PORT") from None
    addr = _ip(host)
    room = inventory.get((addr, port))
    if room is None and module.kind == "check":
        # a peer or room named by address alone (the peer's port is not the room's 9090): the
        # inventory's name still labels its series, as in the rules and dashboard
        room = next((r for (a, _p), r in inventory.items() if a == addr), None)
    if module.kind == "room-agent" and (room is None or not room.peer):
        raise BadTarget(f"target {addr}:{port} has no peer in the exporter's inventory "
                        "(--inventory, column peer): room-agent asks only the agents it lists")
    return Target(text, addr, port, room)


def run(module: Module, target: Target, budget_s: float) -> Outcome:
    """Run ``module`` on ``target`` within ``budget_s`` seconds; never raises for a measurement."""
    t0 = time.monotonic()
    out = Outcome(timeout_s=budget_s)
    try:
        if module.kind == "room":
            _room(module, target, budget_s, out)
        elif module.kind == "room-agent":
            _room_agent(module, target, budget_s, t0, out)
        else:
            _check(module, target, budget_s, out)
    except Exception as exc:  # noqa: BLE001 - a probe's own bug is a failed probe, not a 500
        out.reports, out.error = [], "internal-error"
        out.detail = f"{type(exc).__name__}: {str(exc)[:200]}"
    out.duration_s = time.monotonic() - t0
    out.success = bool(out.reports) and all(rep.status in ("pass", "warn") for rep, _ in out.reports)
    return out


def _sweep_row(module: Module, target: Target, budget_s: float) -> Report:
    from roomprobe.fleet import sweep as sw

    room = target.room or sw.Room(str(target.address), target.port)
    connect = max(MIN_CONNECT_S, min(module.connect_timeout, budget_s - ROOM_MARGIN_S))
    return sw.sweep([room], timeout=connect, concurrency=1)[0]


def _room(module: Module, target: Target, budget_s: float, out: Outcome) -> None:
    from roomprobe.fleet.sweep import exit_of

    rep = _sweep_row(module, target, budget_s)
    out.reports = [(rep, exit_of(rep))]


def _room_agent(module: Module, target: Target, budget_s: float, t0: float, out: Outcome) -> None:

    from roomprobe.fleet import sweep as sw
    from roomprobe.peer.agent import CheckRequest, agent_address, ask

    room = target.room
    # The row gets at most half the budget: the room's own check needs the rest.
    rep = _sweep_row(module, target, budget_s / 2)
    left = budget_s - (time.monotonic() - t0)
    addr, port = agent_address(room.peer)
    # The agent's check needs its process start and report on top of its --timeout.
    req = CheckRequest(room.controllers[0] if room.controllers else None, module.only,
                       max(1.0, min(module.check_timeout, left - 3.0)))
    res = ask(addr, port, str(module.token), req, max(0.1, left))
    merged = sw.merge_deep(rep, res)
    out.reports = [(merged, sw.exit_of(merged))]


def check_argv(module: Module, target: Target, config: str, name: str | None) -> list[str]:
    """The child's command line: the module's fixed arguments and the validated target."""
    exe = [sys.executable] if getattr(sys, "frozen", False) else [sys.executable, "-I", "-m",
                                                                  "roomprobe"]
    argv = [*exe, "check", "--format", "json", "--no-history", "--no-color", "--config", config,
            "--timeout", f"{module.check_timeout:g}", "--only", ",".join(module.only)]
    if "bandwidth" not in module.only:
        argv.append("--no-bandwidth")
    if module.target == "peer":
        argv += ["--peer", f"[{target.address}]:{target.port}" if ":" in str(target.address)
                 else f"{target.address}:{target.port}"]
    elif module.target == "room":
        argv += ["--room", str(target.address), "--port", str(target.port)]
    if name:
        argv += ["--room-name", name]
    return argv


def _check(module: Module, target: Target, budget_s: float, out: Outcome) -> None:
    from roomprobe.fleet.sweep import exit_of
    from roomprobe.peer.agent import _report_of, child_env

    name = target.text if module.target == "label" else (target.room.name if target.room else None)
    env = child_env()
    if module.token:
        env["ROOMPROBE_PEER_TOKEN"] = module.token  # never on the command line (ps shows it)
    with tempfile.TemporaryDirectory(prefix="roomprobe-exporter-") as tmp:
        config = module.config
        if config is None:
            config = os.path.join(tmp, "empty.toml")
            with open(config, "w", encoding="utf-8"):
                pass  # the check's defaults; the exporter's own environment does not apply
        env["ROOMPROBE_HISTORY_DB"] = os.path.join(tmp, "history.sqlite3")
        try:
            proc = subprocess.run(check_argv(module, target, config, name), stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=max(0.1, budget_s), env=env,
                                  check=False)
        except subprocess.TimeoutExpired:
            out.error, out.detail = "deadline", f"the check took longer than {budget_s:.3g} s"
            return
        except OSError as exc:
            out.error, out.detail = "not-started", f"could not start the check: {exc.strerror or exc}"
            return
    report = _report_of(proc.stdout)
    rep = _typed(report) if report is not None else None
    if rep is None:
        line = next((x for x in proc.stderr.decode("utf-8", "replace").splitlines() if x.strip()), "")
        out.error, out.detail = "no-report", f"the check gave no report (exit {proc.returncode}): {line[:200]}"
        return
    out.reports = [(rep, exit_of(rep))]


def _typed(data: dict[str, Any]) -> Report | None:
    """The child check's JSON as a Report; a report missing a v1 field is no report."""
    from roomprobe.report.model import Report

    try:
        return Report.from_dict(data)
    except (KeyError, TypeError, ValueError):
        return None


def collector(out: Outcome) -> Any:
    """The probe's metrics as one prometheus_client collector (for a fresh registry)."""
    from prometheus_client.core import GaugeMetricFamily

    from roomprobe.fleet.metrics import collector as report_collector

    reports = report_collector(out.reports) if out.reports else None

    class _Collector:
        def collect(self) -> Iterator[GaugeMetricFamily]:
            yield GaugeMetricFamily("probe_success", "1 if the module's report says PASS or WARN "
                                    "(measured), 0 otherwise.", value=1 if out.success else 0)
            yield GaugeMetricFamily("probe_duration_seconds", "How long the probe took.",
                                    value=round(out.duration_s, 6))
            yield GaugeMetricFamily("probe_timeout_seconds", "The probe's budget: the scrape's "
                                    "timeout minus the offset, capped by the module's.",
                                    value=round(out.timeout_s, 6))
            if reports is not None:
                yield from reports.collect()

    return _Collector()


def render(out: Outcome) -> bytes:
    """The exposition of one probe, from a registry made for it alone."""
    from prometheus_client import CollectorRegistry, generate_latest

    reg = CollectorRegistry(auto_describe=False)
    reg.register(collector(out))
    return generate_latest(reg)
