"""``roomprobe serve``: the far end of the LAN bandwidth test (see roomprobe/peer/serve.py) and,
on the same port number over UDP, of the quality test (roomprobe/peer/reflector.py)."""

from __future__ import annotations

import secrets
import sys
import threading
import time
from typing import TYPE_CHECKING

import click

from roomprobe.core.errors import UsageError
from roomprobe.core.threads import start_guarded
from roomprobe.peer.port import PEER_PORT as DEFAULT_SPEED_PORT

if TYPE_CHECKING:  # the servers load when serve runs, not for --help
    import socket
    import ssl

    from roomprobe.peer.reflector import Reflector
    from roomprobe.peer.serve import Limits, SpeedServer


@click.command()
@click.option("--bind", "bind", required=True, metavar="ADDR",
              help="This device's address to listen on (e.g. its LAN address); nothing else is bound.")
@click.option("--speed-port", type=click.IntRange(1, 65535), default=DEFAULT_SPEED_PORT,
              show_default=True, help="TCP port of the bandwidth/latency endpoint.")
@click.option("--port", "zoom_port", type=click.IntRange(1, 65535), default=None, metavar="PORT",
              help="Also accept TCP on PORT (9090) in place of the stopped Zoom Rooms app.")
@click.option("--token", default=None, metavar="TOKEN",
              help="Session token clients must present; never printed [default: a random one, printed].")
@click.option("--duration", type=click.FloatRange(1, 86400), default=900.0, show_default=True,
              metavar="S", help="Exit after this many seconds.")
@click.option("--max-clients", type=click.IntRange(1, 256), default=16, show_default=True,
              help="Concurrent sessions (clients that presented the token) at most.")
@click.option("--max-pending", type=click.IntRange(1, 4096), default=64, show_default=True,
              help="Connections still sending their request head, at most; each gets "
                   "--header-timeout seconds and takes no session slot.")
@click.option("--max-pending-per-address", "max_pending_per_source", type=click.IntRange(1, 4096),
              default=8, show_default=True,
              help="Of those, at most this many from one address; when all are taken, a newcomer "
                   "displaces the oldest of the addresses holding the most.")
@click.option("--header-timeout", type=click.FloatRange(0.2, 60), default=2.0, show_default=True,
              metavar="S", help="Seconds a connection has to send its request head (with the token).")
@click.option("--max-mb", type=click.IntRange(1, 10**7), default=30000, show_default=True,
              help="Megabytes one client address may move (down + up) per --window.")
@click.option("--window", type=click.FloatRange(1, 86400), default=300.0, show_default=True,
              metavar="S", help="The time window of --max-mb.")
@click.option("--total-mb", type=click.IntRange(1, 10**9), default=None, metavar="MB",
              help="Optional cap on megabytes for the whole serve lifetime (all clients).")
@click.option("--tls", "tls", is_flag=True, default=False,
              help="Speak TLS with a self-signed certificate (made once, kept in the user's state "
                   "directory) and print its SHA-256 fingerprint for the clients' "
                   "--peer-fingerprint: the token never crosses the network in clear.")
@click.option("--tls-cert", default=None, metavar="PEM",
              help="Speak TLS with this certificate (PEM) instead; needs --tls-key.")
@click.option("--tls-key", default=None, metavar="PEM", help="The key of --tls-cert (PEM, not encrypted).")
@click.option("--web-config", "web_config", default=None, metavar="FILE.yml",
              help="Speak TLS with the certificate of an exporter-toolkit web config file "
                   "(tls_server_config: cert_file, key_file, min_version), as 'roomprobe "
                   "exporter --web.config.file' reads it.")
@click.option("--agent", is_flag=True, default=False,
              help="Also answer POST /__check: run this room's own check for 'sweep --deep' "
                   "(token-gated, whitelisted request, one at a time; docs/fleet.md).")
def serve(bind: str, speed_port: int, zoom_port: int | None, token: str | None, duration: float,
          max_clients: int, max_pending: int, max_pending_per_source: int, header_timeout: float,
          max_mb: int, window: float, total_mb: int | None, tls: bool, tls_cert: str | None,
          tls_key: str | None, web_config: str | None, agent: bool) -> int:
    """Answer the bandwidth/latency and call-quality tests (and optionally 9090) for 'check --peer'.

    \b
    On the room PC (Zoom Rooms stopped):  roomprobe serve --bind 10.0.0.20 --port 9090
    Then on the controller side:           roomprobe check --room 10.0.0.20 --peer 10.0.0.20 \\
                                               --peer-token TOKEN
    """
    from roomprobe.peer.serve import Limits

    _check_bind(bind)
    if token is not None and len(token) < 8:
        raise UsageError("--token must be at least 8 characters (or leave it out for a random one)")
    # A token given with --token is never printed: serve's output lands in service logs
    # (journald, a scheduled task's log) and the operator already knows it. A generated one
    # is printed, because nobody else can know it.
    given = token is not None
    token = token or secrets.token_urlsafe(12)
    tls_ctx, fingerprint, tls_note = (_web_config_tls(web_config, tls or bool(tls_cert or tls_key))
                                      if web_config else _tls(bind, tls, tls_cert, tls_key))
    limits = Limits(max_clients=max_clients, max_pending=max_pending,
                    max_pending_per_source=max_pending_per_source, header_timeout_s=header_timeout,
                    max_client_bytes=max_mb * 1000**2, client_window_s=window,
                    max_total_bytes=total_mb * 1000**2 if total_mb else None)
    deadline = time.monotonic() + duration
    stop = threading.Event()
    server, reflector, standin = _listen(bind, speed_port, zoom_port, token, limits, deadline,
                                         agent, tls_ctx, stop)
    host = f"[{bind}]" if ":" in bind else bind
    click.echo(f"roomprobe serve: bandwidth/latency on {host}:{speed_port}, quality on UDP {speed_port}"
               + (f", TCP {zoom_port} open" if zoom_port else "")
               + (", room check agent on POST /__check" if agent else "")
               + f", for {duration:g} s; session token: "
               + ("the one given with --token (not printed)" if given else token))
    peer = bind if speed_port == DEFAULT_SPEED_PORT else f"{host}:{speed_port}"
    _how_to_reach(peer, "TOKEN" if given else token, fingerprint, tls_note, agent)
    try:
        error = _serve_until(server, deadline, stop)
    finally:
        server.server_close()
        reflector.close()
        if standin is not None:
            standin.close()
    if error is not None:
        raise UsageError(f"serve stopped: {type(error).__name__}: {error}")
    _summary(server, reflector, tls_ctx is not None)
    return 0


def _check_bind(bind: str) -> None:
    """--bind must be an IP address of this device's scope: one clear line otherwise."""
    from roomprobe.core.targets import BadScope, ip_literal

    try:
        ip_literal(bind)
    except BadScope as exc:
        raise UsageError(f"--bind: {exc}") from None
    except ValueError:
        raise UsageError(f"--bind {bind!r} is not an IP address; give this device's address, "
                         "e.g. --bind 10.0.0.20") from None


def _listen(bind: str, speed_port: int, zoom_port: int | None, token: str, limits: Limits,
            deadline: float, agent: bool, tls_ctx: ssl.SSLContext | None,
            stop: threading.Event) -> tuple[SpeedServer, Reflector, socket.socket | None]:
    """The speed endpoint (with the agent), its UDP reflector and the 9090 stand-in, listening;
    a port that cannot be had closes what was opened and is one UsageError line."""
    from roomprobe.peer.reflector import Reflector, ReflectorLimits
    from roomprobe.peer.serve import SpeedServer, zoom_standin

    check_agent = None
    if agent:
        from roomprobe.core.registry import load_probes
        from roomprobe.peer.agent import Agent

        check_agent = Agent(load_probes())  # the caller may name only probes that exist
    try:
        server = SpeedServer((bind, speed_port), token, limits, deadline, agent=check_agent,
                             tls=tls_ctx)
    except OSError as exc:
        raise UsageError(f"cannot listen on {bind}:{speed_port}: {exc.strerror or exc}") from None
    try:  # the quality probe's UDP reflector: same port number, same token
        reflector = Reflector(bind, speed_port, token,
                              ReflectorLimits(max_sessions=max(1, min(limits.max_clients, 64))))
    except OSError as exc:
        server.server_close()
        raise UsageError(f"cannot listen on {bind}:{speed_port}/udp: {exc.strerror or exc}") from None
    reflector.require_grant = tls_ctx is not None  # with TLS: sessions opened over HTTPS only
    server.reflector = reflector
    reflector.start()
    standin = None
    if zoom_port is not None:
        try:
            standin = zoom_standin(bind, zoom_port, stop)
        except OSError as exc:
            server.server_close()
            reflector.close()
            raise UsageError(f"cannot listen on {bind}:{zoom_port}: {exc.strerror or exc}; is "
                             "Zoom Rooms still running?") from None
    return server, reflector, standin


def _how_to_reach(peer: str, shown: str, fingerprint: str | None, tls_note: str | None,
                  agent: bool) -> None:
    """The command lines the other device runs (``shown`` is the token, or TOKEN if given)."""
    pin = f" --peer-fingerprint {fingerprint}" if fingerprint else ""
    if fingerprint:
        from roomprobe.peer.tls import shown as colons

        click.echo(f"TLS ({tls_note}); certificate SHA-256 fingerprint: {colons(fingerprint)}")
    else:
        click.echo("plain HTTP: the session token crosses the network in clear (use --tls)")
    click.echo(f"on the other device: roomprobe check --peer {peer} --peer-token {shown}{pin}")
    if agent:
        click.echo(f"for a deep sweep: roomprobe sweep INVENTORY --deep --peer-token {shown}{pin} "
                   f"(inventory column peer = {peer})")
    sys.stdout.flush()


def _serve_until(server: SpeedServer, deadline: float, stop: threading.Event) -> BaseException | None:
    """Serve until the deadline, Ctrl-C or a crash of the server thread (returned); then
    ``stop`` the stand-in."""
    thread = start_guarded(server.serve_forever, "serve", poll_interval=0.2)
    try:
        while time.monotonic() < deadline and thread.is_alive():
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        if thread.is_alive():
            server.shutdown()
    return thread.error


def _summary(server: SpeedServer, reflector: Reflector, tls: bool) -> None:
    if tls:
        click.echo(f"TLS: {server.tls_failed} failed handshakes, {server.plain_refused} plain-HTTP "
                   "requests refused")
    click.echo(f"roomprobe serve: done; {server.requests} requests, "
               f"{server.bytes_total / 1e6:.1f} MB, {server.rejected} rejected, "
               f"{server.head_timeouts} too slow to send a request head, "
               f"{server.displaced} displaced; "
               f"UDP: {reflector.counters.echoed} echoed, {reflector.counters.rejected} rejected, "
               f"{reflector.counters.capped} over limits, {reflector.counters.replays} replays")


def _tls(bind: str, tls: bool, cert: str | None, key: str | None):  # type: ignore[no-untyped-def]
    """(server context, fingerprint, how the certificate was had) or (None, None, None)."""
    if (cert is None) != (key is None):
        raise UsageError("--tls-cert and --tls-key go together: give both (PEM files), or --tls "
                         "for a self-signed certificate")
    if cert is None and not tls:
        return None, None, None
    from roomprobe.peer import servetls

    if cert is not None and key is not None:
        ctx, fp = servetls.server_context(cert, key)
        return ctx, fp, f"certificate {cert}"
    cert_p, key_p = servetls.default_paths()
    made = servetls.ensure_self_signed(bind, cert_p, key_p)
    ctx, fp = servetls.server_context(cert_p, key_p)
    return ctx, fp, f"self-signed, {'new' if made else 'kept'} in {cert_p.parent}"


def _web_config_tls(path: str, also_flags: bool):  # type: ignore[no-untyped-def]
    """TLS from an exporter-toolkit web config file: its tls_server_config only. serve
    authenticates with its session token, and its clients present no certificate, so
    basic_auth_users and client certificates are refused with what to do instead."""
    from roomprobe.fleet import webconfig
    from roomprobe.peer import servetls

    if also_flags:
        raise UsageError("--web-config names the certificate already: leave out --tls, "
                         "--tls-cert and --tls-key")
    wc = webconfig.load(path)
    if wc.tls is None:
        raise UsageError(f"--web-config {path}: no tls_server_config (cert_file, key_file); serve "
                         "needs it to speak TLS")
    if wc.users:
        raise UsageError(f"--web-config {path}: basic_auth_users is for 'roomprobe exporter'; serve "
                         "authenticates with its session token (--token): remove them or use "
                         "--tls-cert/--tls-key")
    if wc.tls.client_auth_type != "NoClientCert" or wc.tls.client_ca_file:
        raise UsageError(f"--web-config {path}: serve's clients present no certificate; use "
                         "client_auth_type: NoClientCert and no client_ca_file")
    ctx = wc.ssl_context()
    assert ctx is not None  # tls_server_config is there
    _ctx, fp = servetls.server_context(wc.tls.cert_file, wc.tls.key_file)  # its fingerprint
    return ctx, fp, f"certificate {wc.tls.cert_file} from {path}"
