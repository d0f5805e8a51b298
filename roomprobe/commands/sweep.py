"""``roomprobe sweep``: every room's TCP 9090 state, reachability and likely Zoom code at once."""

from __future__ import annotations

import time

import click

from roomprobe.commands import formats
from roomprobe.core.errors import UsageError


@click.command()
@click.argument("targets", nargs=-1, metavar="[INVENTORY] [ADDR|CIDR ...]")
@click.option("--port", type=click.IntRange(1, 65535), default=9090, show_default=True,
              help="Port for rooms whose inventory row names none.")
@click.option("--timeout", type=click.FloatRange(0.1, 60), default=2.5, show_default=True, metavar="S",
              help="The longest a silent room is waited for. Within it, silence is judged from "
                   "the round trips of the rooms that answer (two tries, each srtt + 4 x rttvar, "
                   "at least 0.25 s), as nmap does.")
@click.option("--concurrency", type=click.IntRange(1, 4096), default=1024, show_default=True,
              help="Rooms checked at the same time.")
@click.option("--format", "fmt", type=click.Choice(formats.names("sweep", "text", "json", "csv")), default="text",
              show_default=True, help="What goes to stdout.")
@click.option("--prometheus-textfile", default=None, metavar="PATH.prom",
              help="Also write every room's metrics (room/target labels) for node_exporter.")
@click.option("--html", "html_path", default=None, metavar="FILE",
              help="Also write a self-contained html page (sortable, worst first).")
@click.option("--sd-file", default=None, metavar="PATH.json",
              help="Also write the rooms as Prometheus file_sd JSON (labels room, site, "
                   "controller) for 'roomprobe exporter' (docs/exporter.md).")
@click.option("--deep", is_flag=True, default=False,
              help="Also ask each room's 'roomprobe serve --agent' (inventory column peer) for "
                   "the room's own check, and merge it in.")
@click.option("--peer-token", default=None, metavar="TOKEN", envvar="ROOMPROBE_PEER_TOKEN",
              help="The agents' session token for --deep (also: ROOMPROBE_PEER_TOKEN).")
@click.option("--peer-fingerprint", default=None, metavar="SHA256", envvar="ROOMPROBE_PEER_FINGERPRINT",
              help="--deep over TLS, pinning the agents' certificate (the fingerprint 'roomprobe "
                   "serve --tls' printed) for rooms whose inventory row names none (column "
                   "fingerprint).")
@click.option("--peer-tls-unpinned", is_flag=True, default=False,
              help="--deep over TLS WITHOUT checking the agents' certificates (hides the token "
                   "from listeners, not from a machine in the middle).")
@click.option("--deep-only", multiple=True, metavar="IDS",
              help="Probes the room's check runs (comma-separated) [default: the agent's default "
                   "set, without bandwidth].")
@click.option("--deep-timeout", type=click.FloatRange(1, 30), default=10.0, show_default=True,
              metavar="S", help="The room's check's --timeout; each room's agent gets this plus "
                                "25 s to answer.")
@click.option("--deep-concurrency", type=click.IntRange(1, 256), default=16, show_default=True,
              help="Agents asked at the same time.")
def sweep(targets: tuple[str, ...], port: int, timeout: float, concurrency: int, fmt: str,
          prometheus_textfile: str | None, html_path: str | None, sd_file: str | None, deep: bool,
          peer_token: str | None, peer_fingerprint: str | None, peer_tls_unpinned: bool,
          deep_only: tuple[str, ...], deep_timeout: float, deep_concurrency: int) -> int:
    """Check many rooms at once from this host: TCP 9090, ARP on this subnet, the likely code.

    \b
    roomprobe sweep rooms.csv                 (columns: name,address,controller,port,peer)
    roomprobe sweep rooms.toml 10.0.5.0/24    ([[room]] tables with the same keys)
    roomprobe sweep 10.0.0.20 10.0.0.21 --format json

    Measured from this host only: the controller -> room path itself needs 'roomprobe check
    --room ADDR' on the controller. Exit code: the worst room's (0 OK, 1 WARNING, 2 CRITICAL,
    3 UNKNOWN). docs/fleet.md has the details.
    """
    from roomprobe.fleet import metrics
    from roomprobe.fleet import sweep as sw
    from roomprobe.fleet.sweep_out import SweepView
    from roomprobe.report.build import rfc3339

    if not targets:
        raise UsageError("nothing to sweep: give an inventory file (.csv/.toml), addresses or "
                         "CIDRs, e.g. 'roomprobe sweep 10.0.0.0/24'")
    if prometheus_textfile and not prometheus_textfile.endswith(".prom"):
        raise UsageError(f"--prometheus-textfile {prometheus_textfile}: the textfile collector "
                         "only reads *.prom files; name it e.g. rooms.prom")
    rooms = sw.parse_targets(targets, port)
    if sd_file:  # before the sweep: the inventory is known now, and a bad path is exit 3 at once
        from roomprobe.fleet import sd

        sd.write(sd_file, rooms)
    request = _deep_request(rooms, peer_token, deep_only, deep_timeout) if deep else None
    pin = _deep_tls(rooms, deep, peer_fingerprint, peer_tls_unpinned)
    term = formats.terminal()
    started, t0 = time.time(), time.monotonic()
    reports = sw.sweep(rooms, timeout=timeout, concurrency=concurrency, progress=_progress(term))
    if term.live:
        term.note("\r\033[K", nl=False)
    if request is not None:
        from roomprobe.peer.agent import GRACE_S

        outcomes = sw.ask_agents(rooms, str(peer_token), request, deep_timeout + GRACE_S + 5,
                                 deep_concurrency, progress=_progress(term, "deep"), pin=pin,
                                 tls_unpinned=peer_tls_unpinned)
        if term.live:
            term.note("\r\033[K", nl=False)
        reports = sw.deepen(reports, outcomes)
    summary = sw.summary(reports, time.monotonic() - t0)
    view = SweepView(reports, summary, rfc3339(started))
    if prometheus_textfile:
        metrics.write_text(prometheus_textfile,
                           metrics.render_many([(r, sw.exit_of(r)) for r in reports]))
    if html_path:
        from roomprobe.core.fsutil import atomic_write_text

        try:
            atomic_write_text(html_path, formats.render("sweep", "html", view, term=term))
        except OSError as exc:
            raise UsageError(f"cannot write {html_path}: {exc.strerror or exc}") from None
    formats.emit("sweep", fmt, view, term=term)  # json streams: 10,000 rooms are not one string
    return int(summary["exit_code"])


def _deep_request(rooms, token: str | None, only: tuple[str, ...], timeout: float):  # type: ignore[no-untyped-def]
    """What --deep asks every agent, checked before the sweep starts (bad input: exit 3)."""
    from roomprobe.core.settings import split_ids
    from roomprobe.fleet import sweep as sw
    from roomprobe.peer.agent import BadRequest, CheckRequest, parse_request

    if not token:
        raise UsageError("--deep needs the agents' session token: --peer-token TOKEN or "
                         "ROOMPROBE_PEER_TOKEN (the token 'roomprobe serve --agent' printed)")
    sw.check_peers(rooms)
    ids = split_ids(only)
    from roomprobe.core.registry import load_probes

    try:  # the agent validates again; this catches a typo before a thousand requests
        parse_request(CheckRequest(None, ids, timeout).to_json(), load_probes())
    except BadRequest as exc:
        raise UsageError(f"--deep-only/--deep-timeout: {exc}") from None
    return CheckRequest(None, ids, timeout)


def _deep_tls(rooms, deep: bool, fingerprint: str | None, unpinned: bool) -> str | None:  # type: ignore[no-untyped-def]
    """--peer-fingerprint (normalised) for --deep; the flags checked before anything is sent."""
    if not deep and (fingerprint or unpinned or any(r.fingerprint for r in rooms)):
        if fingerprint or unpinned:
            raise UsageError("--peer-fingerprint/--peer-tls-unpinned are for --deep (the rooms' "
                             "'roomprobe serve --agent --tls'); add --deep")
        return None
    if fingerprint and unpinned:
        raise UsageError("--peer-fingerprint pins the agents' certificate and --peer-tls-unpinned "
                         "checks none: give one of them")
    from roomprobe.peer.tls import fingerprint_option

    return fingerprint_option(fingerprint)


def _progress(term, what: str = "sweep"):  # type: ignore[no-untyped-def]
    """A progress line on stderr, only on a terminal, at most ten updates a second."""
    if not term.live:
        return None
    last = [0.0]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] >= 0.1:
            last[0] = now
            width = 30
            fill = width * done // max(total, 1)
            term.note(f"\r{what} [{'#' * fill}{'.' * (width - fill)}] {done}/{total}", nl=False)

    return show
