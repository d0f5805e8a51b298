"""``roomprobe serve``: the far end of the LAN bandwidth test (see roomprobe/fleet/serve.py) and,
on the same port number over UDP, of the quality test (roomprobe/fleet/reflector.py)."""

from __future__ import annotations

import ipaddress
import secrets
import sys
import threading
import time

import click

from roomprobe.core.errors import UsageError

DEFAULT_SPEED_PORT = 9095


@click.command()
@click.option("--bind", "bind", required=True, metavar="ADDR",
              help="This device's address to listen on (e.g. its LAN address); nothing else is bound.")
@click.option("--speed-port", type=click.IntRange(1, 65535), default=DEFAULT_SPEED_PORT,
              show_default=True, help="TCP port of the bandwidth/latency endpoint.")
@click.option("--port", "zoom_port", type=click.IntRange(1, 65535), default=None, metavar="PORT",
              help="Also accept TCP on PORT (9090) in place of the stopped Zoom Rooms app.")
@click.option("--token", default=None, metavar="TOKEN",
              help="Session token clients must present [default: a random one, printed].")
@click.option("--duration", type=click.FloatRange(1, 86400), default=900.0, show_default=True,
              metavar="S", help="Exit after this many seconds.")
@click.option("--max-clients", type=click.IntRange(1, 256), default=16, show_default=True,
              help="Concurrent connections at most.")
@click.option("--max-mb", type=click.IntRange(1, 10**7), default=20000, show_default=True,
              help="Total megabytes served and received, at most.")
def serve(bind: str, speed_port: int, zoom_port: int | None, token: str | None, duration: float,
          max_clients: int, max_mb: int) -> int:
    """Answer the bandwidth/latency and call-quality tests (and optionally 9090) for 'check --peer'.

    \b
    On the room PC (Zoom Rooms stopped):  roomprobe serve --bind 10.0.0.20 --port 9090
    Then on the controller side:           roomprobe check --room 10.0.0.20 --peer 10.0.0.20 \\
                                               --peer-token TOKEN
    """
    from roomprobe.fleet.serve import Limits, SpeedServer, zoom_standin

    try:
        ipaddress.ip_address(bind)
    except ValueError:
        raise UsageError(f"--bind {bind!r} is not an IP address; give this device's address, "
                         "e.g. --bind 10.0.0.20") from None
    if token is not None and len(token) < 8:
        raise UsageError("--token must be at least 8 characters (or leave it out for a random one)")
    token = token or secrets.token_urlsafe(12)
    limits = Limits(max_clients=max_clients, max_total_bytes=max_mb * 1000**2)
    deadline = time.monotonic() + duration
    try:
        server = SpeedServer((bind, speed_port), token, limits, deadline)
    except OSError as exc:
        raise UsageError(f"cannot listen on {bind}:{speed_port}: {exc.strerror or exc}") from None
    from roomprobe.fleet.reflector import Reflector, ReflectorLimits

    try:  # the quality probe's UDP reflector: same port number, same token
        reflector = Reflector(bind, speed_port, token,
                              ReflectorLimits(max_sessions=max(1, min(max_clients, 64))))
    except OSError as exc:
        server.server_close()
        raise UsageError(f"cannot listen on {bind}:{speed_port}/udp: {exc.strerror or exc}") from None
    reflector.start()
    stop = threading.Event()
    if zoom_port is not None:
        try:
            standin = zoom_standin(bind, zoom_port, stop)
        except OSError as exc:
            server.server_close()
            reflector.close()
            raise UsageError(f"cannot listen on {bind}:{zoom_port}: {exc.strerror or exc}; is "
                             "Zoom Rooms still running?") from None
    host = f"[{bind}]" if ":" in bind else bind
    click.echo(f"roomprobe serve: bandwidth/latency on {host}:{speed_port}, quality on UDP {speed_port}"
               + (f", TCP {zoom_port} open" if zoom_port else "")
               + f", for {duration:g} s; session token: {token}")
    peer = bind if speed_port == DEFAULT_SPEED_PORT else f"{host}:{speed_port}"
    click.echo(f"on the other device: roomprobe check --peer {peer} --peer-token {token}")
    sys.stdout.flush()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              daemon=True)
    thread.start()
    try:
        while time.monotonic() < deadline:
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        reflector.close()
        if zoom_port is not None:
            standin.close()
    click.echo(f"roomprobe serve: done; {server.requests} requests, "
               f"{server.bytes_total / 1e6:.1f} MB, {server.rejected} rejected; "
               f"UDP: {reflector.counters.echoed} echoed, {reflector.counters.rejected} rejected, "
               f"{reflector.counters.capped} over limits")
    return 0
