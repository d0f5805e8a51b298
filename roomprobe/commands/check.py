"""``roomprobe check``: run the probes, print the verdict, write the report, exit with its status."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from roomprobe.core.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from roomprobe.core.probe import HistoryReader, Probe
    from roomprobe.core.probe import Peer as ProbePeer
    from roomprobe.core.settings import CheckSettings, Settings
    from roomprobe.report.build import EvidencePack
    from roomprobe.report.model import DiagnosisEntry, Report


def _options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give ``command`` one click option per flag declared in core.settings.CheckSettings, in
    field order, each named after its field: the parsed values arrive keyed as CheckSettings
    is, so ``--peer``'s value is ``opts["peer"]`` and then ``CheckSettings.peer``."""
    from dataclasses import fields

    from roomprobe.core.settings import CheckSettings

    for f in reversed(fields(CheckSettings)):
        flag = f.metadata.get("flag")
        if flag is None:
            continue
        kind: Any = flag.kind
        if flag.choices:
            kind = click.Choice(list(flag.choices))
        elif flag.bounds:
            kind = click.IntRange(*flag.bounds)
        elif flag.file_path:
            kind = click.Path(dir_okay=False)
        extra: dict[str, Any] = ({"is_flag": True, "flag_value": flag.flag_value} if flag.is_flag
                                 else {"type": kind})
        command = click.option(*flag.decls, f.name, default=None, multiple=flag.multiple,
                               metavar=flag.metavar, envvar=flag.envvar, help=flag.help,
                               **extra)(command)
    return command


@click.command()
@_options
def check(**opts: Any) -> int:
    """Run the probes and tell why the controller, the room or Zoom's cloud cannot talk.

    \b
    On the room PC:          roomprobe check --controller 10.0.0.5
    Next to the controller:  roomprobe check --room 10.0.0.20
    """
    try:
        return _check(opts)
    except UsageError as exc:
        if opts.get("format") == "nagios":  # a monitoring plugin's UNKNOWN explains itself on stdout
            from roomprobe.report.nagios import usage_line

            click.echo(usage_line(str(exc)))
        raise


def _check(o: dict[str, Any]) -> int:
    """Flags (keyed by CheckSettings field) -> typed settings -> the run."""
    from roomprobe.core import settings as st
    from roomprobe.core.registry import load_probes

    cfg = st.load(Path(o["config"]) if o["config"] else st.default_config_path())
    flags = st.flags_given(o)
    flags["peer_fingerprint"] = _fingerprint(flags["peer_fingerprint"])
    probes = load_probes()
    settings = st.build(cfg, flags, flags["set_options"] or (), probes,
                        checks=(_check_code, _check_peer, _check_fleet))
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
    """The check itself, shared by ``check`` and scheduled runs: returns the exit code.

    Order: the probes; the report; the local records (--json, history, textfile); the verdict
    on stdout; only then the webhook, whose retries may wait up to the check's deadline."""
    from roomprobe.core import runner, targets
    from roomprobe.core.probe import Context
    from roomprobe.core.settings import selected as selected_ids
    from roomprobe.fleet import after_run
    from roomprobe.host import osnet
    from roomprobe.report import build as report

    c = settings.check
    selected = [all_probes[pid] for pid in selected_ids(settings, all_probes)]
    started = time.time()
    app_lookup = _app_lookup()  # in the background, while the probes run
    t0 = time.monotonic()
    tgt = targets.resolve(c.controller, c.room, int(c.port), osnet.local_addresses())
    privileged, peer, history = osnet.is_privileged(), _peer(c), _history_reader(c)
    from roomprobe.commands import formats

    term = formats.terminal()
    progress = c.format == "text" and term.live  # a live progress line on stderr is welcome

    def make_context(p: Probe, deadline: float) -> Context:
        return Context(targets=tgt, options=settings.probes[p.id].options, deadline=deadline,
                       privileged=privileged, user_code=c.code, peer=peer, history=history,
                       progress=progress)

    timeouts = {p.id: settings.probes[p.id].timeout for p in selected}
    with _sigterm_ends_the_run(runner.Terminated):
        runs, complete = runner.run(selected, make_context, float(c.timeout), targets=tgt, timeouts=timeouts)

    host = {**osnet.host_info(), "interfaces": list(osnet.interfaces()),
            "default_gateway": list(osnet.default_gateways()), "raw_sockets": osnet.raw_sockets()}
    rep = report.build(runs=runs, complete=complete, targets=tgt, started_at=started,
                       duration_s=time.monotonic() - t0, host=host, pack=_evidence_pack(c, started, app_lookup))
    rep.diagnosis = _diagnose(rep, c.code)
    code = int(report.exit_code(rep))  # the one exit code: history, the Nagios line and the process

    write_error = _write_json(c, rep)
    recorded = after_run.record(rep, code, c)
    from roomprobe.core.output import RenderOptions

    formats.emit("report", str(c.format), rep, RenderOptions(verbose=bool(c.verbose), color=bool(c.color)),
                 term)
    after_run.deliver(recorded, deadline=t0 + float(c.timeout))
    if write_error:
        click.echo(f"roomprobe: {write_error}", err=True)
        return int(ExitCode.UNKNOWN)  # the file the user asked for does not exist: never "OK"
    return code


def _write_json(c: CheckSettings, rep: Report) -> str | None:
    """--json FILE, atomically; a failure (a full disk) is returned, to be told after the
    verdict, which is still shown."""
    if not c.json:
        return None
    from roomprobe.core.fsutil import atomic_write_text
    from roomprobe.report import build as report

    try:
        atomic_write_text(c.json, report.to_json(rep))
    except OSError as exc:
        return (f"could not write the report to {c.json}: {exc.strerror or exc}; "
                "the verdict above is complete; free space or choose a writable path for --json")
    return None


def _peer(c: CheckSettings) -> ProbePeer | None:
    """--peer and how to speak to it, parsed once for the probes (validated by _check_peer)."""
    if c.peer is None:
        return None
    from roomprobe.core.probe import Peer
    from roomprobe.peer.link import parse_peer

    host, port = parse_peer(c.peer)  # no port written: the probes take their peer_port option
    return Peer(host, port, token=c.peer_token or "",
                fingerprint=c.peer_fingerprint, tls_unpinned=bool(c.peer_tls_unpinned))


def _history_reader(c: CheckSettings) -> HistoryReader:
    """The history this run records into (after_run.db_path), for the probes to look back."""
    from roomprobe.fleet import after_run
    from roomprobe.fleet.history import Reader

    return Reader(after_run.db_path(c))


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


def _evidence_pack(c: CheckSettings, started: float, app_lookup: Any) -> EvidencePack:
    """Ticket fields (docs/report.md): room name, note, code, app version, time zone, window."""
    from roomprobe.host import evidence

    try:
        app = app_lookup.result(timeout=1.0)  # at most one second more than the probes took
    except Exception:  # still running (TimeoutError), or an OS lookup that broke: the field is null
        app = None
    from roomprobe.report.build import EvidencePack

    return EvidencePack(room_name=c.room_name, note=c.note, user_code=None if c.code is None else str(c.code),
                        zoom_rooms_app=app, timezone=evidence.local_timezone(),
                        window=evidence.time_window(started, time.time()))


def _diagnose(rep: Report, code: Any) -> list[DiagnosisEntry]:
    """Map findings to likely Zoom error codes (report/build.diagnose)."""
    from roomprobe.report.build import diagnose

    probes_run = {p.id for p in rep.probes if p.status not in ("skip", "error")}
    return diagnose(rep.findings, str(code) if code is not None else None, probes_run)
