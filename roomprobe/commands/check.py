"""``roomprobe check``: run the probes, print the verdict, write the report, exit with its status."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from roomprobe.core.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from roomprobe.core.probe import Probe
    from roomprobe.core.settings import CheckSettings, Settings


@click.command()
@click.option("--controller", metavar="ADDR", multiple=True,
              help="The controller's address (run this on the room).")
@click.option("--room", metavar="ADDR", multiple=True,
              help="The room's address (run this next to the controller); one per check.")
@click.option("--port", type=int, default=None, help="Controller-to-room TCP port [default: 9090].")
@click.option("--timeout", type=float, default=None, metavar="S",
              help="Global deadline in seconds for all quick probes [default: 5].")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="TOML config file [default: $ROOMPROBE_CONFIG or the user config dir].")
@click.option("--only", multiple=True, metavar="IDS", help="Run only these probes (comma-separated).")
@click.option("--skip", multiple=True, metavar="IDS", help="Skip these probes (comma-separated).")
@click.option("--set", "set_opts", multiple=True, metavar="PROBE.KEY=VALUE",
              help="Override a probe option (endpoints, thresholds); see 'roomprobe probes'.")
@click.option("--code", default=None, metavar="CODE",
              help="The error code the user saw (2002, zoom-rooms:2002): its causes come first.")
@click.option("--room-name", default=None, metavar="NAME",
              help="The room's name as the customer knows it (for the ticket) [config: room_name].")
@click.option("--note", default=None, metavar="TEXT", help="Free text for the ticket (what the user saw).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "nagios"]), default=None,
              help="Output on stdout; nagios: one status line + perfdata [default: text].")
@click.option("--json", "json_path", default=None, metavar="PATH|-",
              help="Also write the JSON report to PATH (atomically); '-' means JSON on stdout.")
@click.option("--no-color", is_flag=True, default=False, help="No colours (also: NO_COLOR=1).")
@click.option("-v", "--verbose", is_flag=True, default=False, help="Show each probe's evidence.")
@click.option("--history/--no-history", "history", default=None,
              help="Record this run in the history database [default: on].")
@click.option("--history-db", default=None, metavar="PATH",
              help="History database [default: $ROOMPROBE_HISTORY_DB or the user state dir].")
@click.option("--prometheus-textfile", default=None, metavar="PATH.prom",
              help="Write metrics for node_exporter/windows_exporter's textfile collector.")
@click.option("--webhook", default=None, metavar="URL",
              help="POST the report to URL when the status changed since the last run.")
@click.option("--webhook-format", default=None, type=click.Choice(["json", "slack", "teams"]),
              help="Webhook body: roomprobe json, a Slack message, a Teams Adaptive Card [default: json].")
@click.option("--webhook-header", "webhook_headers", multiple=True, metavar="'NAME: VALUE'",
              help="Extra header on each webhook POST (e.g. a ticket system's Authorization).")
@click.option("--webhook-secret", default=None, metavar="KEY", envvar="ROOMPROBE_WEBHOOK_SECRET",
              help="Sign webhook POSTs (X-Roomprobe-Signature: HMAC-SHA256; also: ROOMPROBE_WEBHOOK_SECRET).")
@click.option("--peer", default=None, metavar="ADDR[:PORT]",
              help="Measure bandwidth/latency to a 'roomprobe serve' peer (the LAN path).")
@click.option("--peer-token", default=None, metavar="TOKEN", envvar="ROOMPROBE_PEER_TOKEN",
              help="The session token 'roomprobe serve' printed (also: ROOMPROBE_PEER_TOKEN).")
@click.option("--peer-fingerprint", default=None, metavar="SHA256", envvar="ROOMPROBE_PEER_FINGERPRINT",
              help="Speak TLS to the peer and pin its certificate: the SHA-256 fingerprint "
                   "'roomprobe serve --tls' printed (a different certificate: nothing is sent, exit 3).")
@click.option("--peer-tls-unpinned", is_flag=True, default=None,
              help="Speak TLS to the peer WITHOUT checking its certificate: hides the token from "
                   "listeners, not from a machine in the middle (prefer --peer-fingerprint).")
@click.option("--bandwidth/--no-bandwidth", "bandwidth", default=None,
              help="Run (or skip, for a quick check) the bandwidth probe [default: run].")
@click.option("--displays", type=click.IntRange(1, 3), default=None, metavar="1-3",
              help="The room's display count for the bandwidth profile [default: detected "
                   "from the OS on the room PC, else 1].")
@click.option("--resolution", type=click.Choice(["720p", "1080p"]), default=None,
              help="The room's video resolution for the bandwidth profile [default: 720p].")
@click.option("--share/--no-share", "share", default=None,
              help="Count screen sharing in the bandwidth profile [default: off].")
def check(**opts: Any) -> int:
    """Run the probes and tell why the controller, the room or Zoom's cloud cannot talk.

    \b
    On the room PC:          roomprobe check --controller 10.0.0.5
    Next to the controller:  roomprobe check --room 10.0.0.20
    """
    try:
        return _check(opts)
    except UsageError as exc:
        if opts.get("fmt") == "nagios":  # a monitoring plugin's UNKNOWN explains itself on stdout
            from roomprobe.report.nagios import usage_line

            click.echo(usage_line(str(exc)))
        raise


def _one(flag: str, values: tuple[str, ...]) -> str | None:
    """--room/--controller name one address per check; several are refused, never half-used."""
    if len(values) > 1 and flag == "room":
        raise UsageError(f"--room given {len(values)} times: a check looks at one room; for "
                         f"several rooms at once run 'roomprobe sweep {' '.join(values[:3])}'")
    if len(values) > 1:
        raise UsageError(f"--{flag} given {len(values)} times: a check looks at one room; "
                         f"run one check per {flag} (e.g. for a in {' '.join(values[:3])}; do "
                         f"roomprobe check --{flag} $a; done)")
    return values[0] if values else None


def _check(o: dict[str, Any]) -> int:
    """Flags (click's names) -> typed settings -> the run."""
    from roomprobe.core import settings as st
    from roomprobe.core.registry import load_probes

    cfg = st.load(Path(o["config_path"]) if o["config_path"] else st.default_config_path())
    flags = {"controller": _one("controller", o["controller"]), "room": _one("room", o["room"]),
             "format": o["fmt"], "json": o["json_path"],
             "webhook_headers": o["webhook_headers"] or None,
             **{k: o[k] for k in ("port", "timeout", "code", "room_name", "note", "history", "history_db",
                                  "prometheus_textfile", "webhook", "only", "skip", "no_color", "verbose",
                                  "peer", "peer_token", "bandwidth", "webhook_format", "webhook_secret",
                                  "displays", "resolution", "share", "peer_tls_unpinned")},
             "peer_fingerprint": _fingerprint(o["peer_fingerprint"])}
    probes = load_probes()
    settings = st.build(cfg, flags, o["set_opts"], probes, checks=(_check_code, _check_peer, _check_fleet))
    _check_peer_certificate(settings.check)
    return run_check(settings, probes)


def _fingerprint(value: str | None) -> str | None:
    from roomprobe.peer.tls import fingerprint_option

    return fingerprint_option(value)


def _check_peer_certificate(c: CheckSettings) -> None:
    """With --peer-fingerprint, the peer's certificate is checked before any probe sends it
    anything (the token, or datagrams keyed by it): another certificate is one line, exit 3.
    A peer that does not answer is left to the probes, which report it as they always did."""
    if c.peer is None or c.peer_fingerprint is None:
        return
    from roomprobe.peer.link import split_peer
    from roomprobe.peer.port import PEER_PORT
    from roomprobe.peer.tls import PinMismatch, verify_peer

    host, port = split_peer(c.peer, PEER_PORT)
    try:
        verify_peer(host, port, 5.0, c.peer_fingerprint)
    except PinMismatch as exc:
        raise UsageError(f"--peer {c.peer}: {exc}") from None


def _check_code(c: CheckSettings) -> None:
    """--code must name a code in the catalog (its causes are put first)."""
    if c.code is not None:
        from roomprobe.diagnose import catalog

        if not catalog.lookup(str(c.code)):
            raise UsageError(f"--code {c.code}: no such Zoom error code in the catalog; "
                             "find it with 'roomprobe codes --search WORDS'")


def _check_peer(c: CheckSettings) -> None:
    """--peer must be ADDR or ADDR:PORT (the bandwidth probe's LAN peer)."""
    if c.peer is None and (c.peer_fingerprint or c.peer_tls_unpinned):
        raise UsageError("--peer-fingerprint/--peer-tls-unpinned go with --peer ADDR[:PORT] (the "
                         "'roomprobe serve --tls' peer)")
    if c.peer_fingerprint and c.peer_tls_unpinned:
        raise UsageError("--peer-fingerprint pins the peer's certificate and --peer-tls-unpinned "
                         "checks none: give one of them")
    if c.peer is not None:
        from roomprobe.peer.link import split_peer
        from roomprobe.peer.port import PEER_PORT

        try:
            split_peer(c.peer, PEER_PORT)
        except ValueError as exc:
            raise UsageError(f"{exc}; e.g. --peer 10.0.0.20 or --peer 10.0.0.20:9095") from None


def _check_fleet(c: CheckSettings) -> None:
    from roomprobe.fleet import after_run

    after_run.validate(c)


def run_check(settings: Settings, all_probes: Mapping[str, Probe]) -> int:
    """The check itself, shared by ``check`` and scheduled runs: returns the exit code."""
    from roomprobe.core import runner, targets
    from roomprobe.core.probe import Context, Result, Status
    from roomprobe.core.settings import selected as selected_ids
    from roomprobe.host import osnet
    from roomprobe.report import build as report
    from roomprobe.report.text import render_text

    c = settings.check
    selected = [all_probes[pid] for pid in selected_ids(settings, all_probes)]

    started = time.time()
    app_lookup = _app_lookup()  # in the background, while the probes run
    t0 = time.monotonic()
    tgt = targets.resolve(c.controller, c.room, int(c.port), osnet.local_addresses())
    privileged = osnet.is_privileged()

    def needs_unmet(p: Probe) -> Result | None:
        if "peer" in p.needs and tgt.peer is None:
            return Result(Status.SKIP, "no-peer", "needs --controller (on the room) or --room "
                          "(next to the controller)", {})
        if "role" in p.needs and tgt.role == "unknown":
            return Result(Status.SKIP, "no-target", "needs --controller or --room", {})
        return None

    runnable, skipped = [], {}
    for p in selected:
        unmet = needs_unmet(p)
        if unmet:
            skipped[p.id] = unmet
        else:
            runnable.append(p)

    def make_context(p: Probe, deadline: float) -> Context:
        return Context(targets=tgt, options=settings.probes[p.id].options, deadline=deadline,
                       privileged=privileged, settings=c, user_code=c.code)

    timed = [_with_timeout(p, settings.probes[p.id].timeout) for p in runnable]
    with _sigterm_ends_the_run(runner.Terminated):
        runs_, complete = runner.run(timed, make_context, float(c.timeout))
    by_id = {r.probe.id: r for r in runs_}
    all_runs = [by_id[p.id] if p.id in by_id else runner.ProbeRun(p, skipped[p.id], 0.0)
                for p in selected]

    host = {**osnet.host_info(), "interfaces": list(osnet.interfaces()),
            "default_gateway": list(osnet.default_gateways()), "raw_sockets": osnet.raw_sockets()}
    rep = report.build(runs=all_runs, complete=complete, targets=tgt, started_at=started,
                       duration_s=time.monotonic() - t0, host=host, extra=_evidence_pack(c, started, app_lookup))
    rep["diagnosis"] = _diagnose(rep, c.code)
    code = int(report.exit_code(rep))  # after_run, the Nagios line and the process agree on it

    write_error = None
    if c.json:
        from roomprobe.core.fsutil import atomic_write_text

        try:
            atomic_write_text(c.json, report.to_json(rep))
        except OSError as exc:  # a full disk: the verdict is still shown, then the failure
            write_error = (f"could not write the report to {c.json}: {exc.strerror or exc}; "
                           "the verdict above is complete; free space or choose a writable path for --json")
    from roomprobe.fleet import after_run

    after_run.after_run(rep, code, c, deadline=t0 + float(c.timeout))
    if c.format == "json":
        click.echo(report.to_json(rep), nl=False)
    elif c.format == "nagios":
        from roomprobe.report.nagios import render_nagios

        click.echo(render_nagios(rep, code), nl=False)
    else:
        color = bool(c.color) and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        click.echo(render_text(rep, color=color, verbose=bool(c.verbose)), nl=False)
    if write_error:
        click.echo(f"roomprobe: {write_error}", err=True)
        return int(ExitCode.UNKNOWN)  # the file the user asked for does not exist: never "OK"
    return code


@contextlib.contextmanager
def _sigterm_ends_the_run(terminated: type[BaseException]) -> Iterator[None]:
    """While the probes run, SIGTERM ends the run like Ctrl-C (partial report, history row,
    exit 3); outside it, and where SIGTERM was ignored or handled by someone else, nothing
    changes. A second SIGTERM after the run is the default again: the process ends."""
    import signal
    import threading

    sig = getattr(signal, "SIGTERM", None)
    if sig is None or sys.platform == "win32" or threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(sig) is not signal.SIG_DFL:
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise terminated()

    signal.signal(sig, handler)
    try:
        yield
    finally:
        signal.signal(sig, signal.SIG_DFL)


def _app_lookup() -> Any:
    """The Zoom Rooms app version lookup (registry / Info.plist) in a daemon thread.

    It runs OS commands, so it overlaps the probes, and a daemon thread (not an executor, whose
    workers are joined at exit) so a hung lookup can never hold the process after the report.
    """
    from roomprobe.core.threads import Daemons
    from roomprobe.host import evidence

    return Daemons("zr-app").submit(lambda: evidence.zoom_rooms_app())


def _evidence_pack(c: CheckSettings, started: float, app_lookup: Any) -> dict[str, Any]:
    """Ticket fields (docs/report.md): room name, note, code, app version, time zone, window."""
    from roomprobe.host import evidence

    try:
        app = app_lookup.result(timeout=1.0)  # at most one second more than the probes took
    except Exception:  # still running (TimeoutError), or an OS lookup that broke: the field is null
        app = None
    return {"room_name": c.room_name, "note": c.note,
            "user_code": None if c.code is None else str(c.code),
            "zoom_rooms_app": app, "timezone": evidence.local_timezone(),
            "window": evidence.time_window(started, time.time())}


def _with_timeout(p: Any, timeout: float) -> Any:
    from dataclasses import replace

    return p if timeout == p.timeout_s else replace(p, timeout_s=float(timeout))


def _diagnose(rep: dict[str, Any], code: Any) -> list[dict[str, Any]]:
    """Map findings to likely Zoom error codes (roomprobe.diagnose.mapping), if that module is present."""
    try:
        from roomprobe.diagnose import mapping as diagnosis
    except ImportError:
        return []
    probes_run = {p["id"] for p in rep["probes"] if p["status"] not in ("skip", "error")}
    return diagnosis.diagnose(rep["findings"], str(code) if code is not None else None,
                              probes_run=probes_run)
