"""``roomprobe exporter``: Prometheus probes rooms through this host (roomprobe/fleet/exporter.py)."""

from __future__ import annotations

import os
import signal
import sys
import time

import click

from roomprobe.core.errors import UsageError

DEFAULT_LISTEN = "127.0.0.1:9129"


def _listen(value: str) -> tuple[str, int]:
    from roomprobe.peer.link import split_peer

    try:
        host, port = split_peer(value, 9129)
    except ValueError:
        raise UsageError(f"--web.listen-address {value!r} is not ADDR:PORT (e.g. "
                         f"{DEFAULT_LISTEN} or 0.0.0.0:9129)") from None
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise UsageError(f"--web.listen-address {value!r}: give an IP address to listen on, e.g. "
                         "this host's monitoring VLAN address") from None
    return host, port


@click.command()
@click.option("--web.listen-address", "--listen", "listen", default=DEFAULT_LISTEN,
              show_default=True, metavar="ADDR:PORT", help="Where to listen (an IP address).")
@click.option("--web.config.file", "--web-config", "web_config", default=None, metavar="FILE",
              help="TLS and basic auth, exporter-toolkit format (tls_server_config, "
                   "basic_auth_users with bcrypt hashes).")
@click.option("--config", "config_path", default=None, metavar="FILE.toml",
              help="The modules ([modules.NAME] tables) [default: room and cloud, plus "
                   "room-agent and quality with ROOMPROBE_PEER_TOKEN].")
@click.option("--inventory", default=None, metavar="FILE",
              help="The rooms (sweep's .csv/.toml): served at /sd, names the room label, lists "
                   "the agents room-agent may ask.")
@click.option("--timeout-offset", type=click.FloatRange(0, 10), default=0.5, show_default=True,
              metavar="S", help="Subtracted from the scrape's timeout (as blackbox_exporter).")
@click.option("--max-probes", type=click.IntRange(1, 1024), default=16, show_default=True,
              help="Probes running at once.")
@click.option("--max-queue", type=click.IntRange(0, 4096), default=64, show_default=True,
              help="Probes waiting for a slot; past that a 503.")
@click.option("--max-connections", type=click.IntRange(1, 4096), default=256, show_default=True,
              help="Open connections in all.")
@click.option("--max-per-source", type=click.IntRange(1, 4096), default=32, show_default=True,
              help="Open connections per source address.")
def exporter(listen: str, web_config: str | None, config_path: str | None, inventory: str | None,
             timeout_offset: float, max_probes: int, max_queue: int, max_connections: int,
             max_per_source: int) -> int:
    """Serve /probe?target=ADDR&module=NAME for Prometheus (the blackbox_exporter idiom).

    \b
    roomprobe exporter --web.listen-address 10.0.8.5:9129 --inventory rooms.csv \\
        --config exporter.toml --web.config.file web.yml

    Runs until stopped (Ctrl-C, SIGTERM). docs/exporter.md has the Prometheus side.
    """
    from roomprobe.fleet import exporter_modules, webconfig
    from roomprobe.fleet.exporter import Settings, serve

    host, port = _listen(listen)
    modules = exporter_modules.load(config_path, env_token=os.environ.get("ROOMPROBE_PEER_TOKEN"))
    rooms = []
    if inventory:
        from roomprobe.fleet.sweep import load_inventory

        rooms = load_inventory(inventory, 9090)
    web = webconfig.load(web_config) if web_config else webconfig.WebConfig()
    settings = Settings(modules=modules, inventory=rooms, web=web, timeout_offset=timeout_offset,
                        max_probes=max_probes, max_queue=max_queue,
                        max_connections=max_connections, max_per_source=max_per_source)
    try:
        server = serve(host, port, settings)
    except OSError as exc:
        raise UsageError(f"cannot listen on {listen}: {exc.strerror or exc}") from None
    scheme = "https" if web.tls else "http"
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"roomprobe exporter: {scheme}://{shown}:{port}/probe, modules "
               f"{', '.join(sorted(modules))}; {len(rooms)} rooms at /sd; basic auth "
               f"{'on' if web.auth_required else 'off'}")
    if not web.tls and not _loopback(host):
        click.echo("roomprobe exporter: warning: plain HTTP on a network address; give "
                   "--web.config.file with tls_server_config and basic_auth_users", err=True)
    sys.stdout.flush()
    from roomprobe.core.threads import start_guarded

    def stop(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, stop)
    thread = start_guarded(server.serve_forever, "exporter", poll_interval=0.2)
    try:
        while thread.is_alive():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        if thread.is_alive():
            server.shutdown()
        server.server_close()
    if thread.error is not None:
        raise UsageError(f"exporter stopped: {type(thread.error).__name__}: {thread.error}")
    return 0


def _loopback(host: str) -> bool:
    import ipaddress

    return ipaddress.ip_address(host).is_loopback
