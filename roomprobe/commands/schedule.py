"""``roomprobe schedule install|remove|status``: a periodic check with the OS's own scheduler.

Files go to the scheduler's directory (``/etc/systemd/system`` as root or
``~/.config/systemd/user`` otherwise; ``/Library/LaunchDaemons`` or ``~/Library/LaunchAgents``;
on Windows the XML is kept in the state dir and imported with ``schtasks``). ``--dir`` or
``$ROOMPROBE_SCHEDULE_DIR`` writes them elsewhere and then only writes files, never calling
systemctl/schtasks/launchctl: that is how the tests (and an admin who wants to review first)
use it. ``--platform`` renders another OS's files (for a fleet's image or config management).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import click

from roomprobe.core.errors import UsageError
from roomprobe.fleet import schedule as sch

ENV_DIR = "ROOMPROBE_SCHEDULE_DIR"


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def default_dir(platform: str) -> Path:
    """Where the scheduler looks for its files, for this account."""
    if platform == "linux":
        return Path("/etc/systemd/system") if _is_root() else Path.home() / ".config/systemd/user"
    if platform == "macos":
        return Path("/Library/LaunchDaemons") if _is_root() else Path.home() / "Library/LaunchAgents"
    from platformdirs import user_state_path

    return user_state_path("roomprobe", appauthor=False) / "schedule"


def _target(platform: str, directory: str | None) -> tuple[Path, bool]:
    """(directory, live): live means "this OS's real scheduler directory, so activate it"."""
    chosen = directory or os.environ.get(ENV_DIR)
    if chosen:
        return Path(chosen), False
    return default_dir(platform), platform == sch.current_platform()


def _activate_cmds(platform: str, files: list[Path], remove: bool) -> list[list[str]]:
    user = [] if _is_root() else ["--user"]
    if platform == "linux":
        if remove:
            return [["systemctl", *user, "disable", "--now", f"{sch.UNIT}.timer"]]
        return [["systemctl", *user, "daemon-reload"],
                ["systemctl", *user, "enable", "--now", f"{sch.UNIT}.timer"]]
    if platform == "windows":
        if remove:
            return [["schtasks", "/Delete", "/TN", sch.UNIT, "/F"]]
        return [["schtasks", "/Create", "/TN", sch.UNIT, "/XML", str(files[0]), "/F"]]
    verb = "unload" if remove else "load"
    return [["launchctl", verb, "-w", str(files[0])]]


def _run(cmds: list[list[str]]) -> None:
    for cmd in cmds:
        if shutil.which(cmd[0]) is None:
            raise UsageError(f"'{cmd[0]}' not found: this system has no {cmd[0]}; write the files "
                             "with --dir and install them by hand")
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise UsageError(f"{' '.join(cmd)} failed: {(out.stderr or out.stdout).strip()[:300]}")


@click.group()
def schedule() -> None:
    """Run 'roomprobe check' periodically with the OS scheduler (systemd, Task Scheduler, launchd).

    \b
    roomprobe schedule install --every 15m --args "--controller 10.0.0.5"
    roomprobe schedule status
    roomprobe schedule remove
    """


_platform_opt = click.option("--platform", type=click.Choice(sch.PLATFORMS), default=None,
                             help="Render for this OS [default: this one].")
_dir_opt = click.option("--dir", "directory", default=None, metavar="DIR",
                        help=f"Write the files here and activate nothing [default: the scheduler's "
                             f"own directory; also ${ENV_DIR}].")


@schedule.command()
@click.option("--every", default="15m", show_default=True, help="Interval: 15m, 1h, 900s.")
@click.option("--splay", default=None, help="Random delay added to each run [default: min(5m, every/2)].")
@click.option("--args", "args", default=None, metavar="'CHECK ARGS'",
              help="Arguments for 'roomprobe check', as one quoted string.")
@click.option("--run-as", default=None, metavar="USER",
              help="Account to run as [default: root/SYSTEM, or you for a per-user install].")
@click.option("--exe", default=None, metavar="PATH",
              help="The roomprobe program to run [default: this one].")
@click.option("--controller", default=None, metavar="ADDR",
              help="The controller's address (adds --controller to the check; empty = none, for installers).")
@click.option("--config-from", default=None, metavar="FILE",
              help="Deploy this config file as the machine config the check reads (validated, owner-only).")
@click.option("--webhook-file", default=None, metavar="FILE",
              help="Read the webhook URL from FILE into the machine config, never onto a command line.")
@_platform_opt
@_dir_opt
def install(every: str, splay: str | None, args: str | None, run_as: str | None, exe: str | None,
            controller: str | None, config_from: str | None, webhook_file: str | None,
            platform: str | None, directory: str | None) -> int:
    """Write the scheduler files (and activate them when they are the real ones).

    Installers (the MSI, the pkg) call this with --controller, --config-from and --webhook-file;
    an empty value means "not given", since an unset installer property expands to "".
    """
    platform = platform or sch.current_platform()
    every = every or "15m"  # an installer's unset INTERVAL property
    try:
        check_args = sch.split_args(args)
    except ValueError as exc:
        raise UsageError(f"--args {args!r}: {exc}") from None
    if controller:
        check_args += ["--controller", controller]
    target, live = _target(platform, directory)
    config = _deploy_config(platform, target, live, config_from or None, webhook_file or None)
    if config is not None:
        check_args += ["--config", str(config)]
    _validate_check_args(check_args)
    # launchd: a daemon (root, or any file set rendered for a fleet image) logs to /Library/Logs,
    # a per-user agent to ~/Library/Logs; never /tmp.
    log = sch.launchd_log(daemon=not (live and platform == "macos" and not _is_root()))
    spec = sch.make_spec(platform, every, splay, check_args, run_as=run_as, exe=[exe] if exe else None, log=log)
    rendered = sch.render(spec)
    mode = sch.file_mode(spec)
    if live and platform == "linux" and run_as and not _is_root():
        raise UsageError("--run-as needs a system unit: run 'roomprobe schedule install' as root "
                         "(a per-user unit always runs as you)")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {target}: {exc.strerror or exc}; choose --dir") from None
    from roomprobe.core.fsutil import atomic_write_bytes, atomic_write_text

    written = []
    for name, text in rendered.items():
        path = target / name
        try:
            if name.endswith(".xml"):  # Task Scheduler wants UTF-16, as the XML declaration says
                atomic_write_bytes(path, text.encode("utf-16"), mode)
            else:
                atomic_write_text(path, text, mode=mode)
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror or exc}; run as root or choose --dir") from None
        written.append(path)
    if live and platform == "macos":
        _make_log_dir(Path(spec.log).parent, run_as)
    if live:
        _run(_activate_cmds(platform, written, remove=False))
    click.echo(f"Scheduled 'roomprobe check' every {spec.every_s}s (this machine's offset "
               f"{spec.offset_s}s, random delay up to {spec.splay_s}s) for {platform}:")
    for path in written:
        click.echo(f"  wrote {path}")
    if mode == 0o600:
        click.echo("  the command holds a secret (webhook URL or token): files written owner-only (0600)")
    if platform == "macos":
        click.echo(f"  log: {spec.log}" + ("" if live else " (create its folder when you install the plist)"))
    if not live:
        click.echo("  not activated (files only); activate with: "
                   + " && ".join(" ".join(c) for c in _activate_cmds(platform, written, remove=False)))
    return 0


def _deploy_config(platform: str, target: Path, live: bool, config_from: str | None,
                   webhook_file: str | None) -> Path | None:
    """Write the machine config (beside the scheduler files with --dir, for review) or None."""
    if not (config_from or webhook_file):
        return None
    from roomprobe.fleet import deploy

    url = deploy.read_webhook_file(webhook_file) if webhook_file else None
    data = deploy.build_config(config_from, url)
    where = deploy.machine_config_dir(platform) if live else target
    try:
        path = deploy.write_config(where, data, live_windows=live and platform == "windows")
    except OSError as exc:
        raise UsageError(f"cannot write the machine config in {where}: {exc.strerror or exc}; "
                         "run as root/Administrator or choose --dir") from None
    click.echo(f"  machine config: {path} (owner-only{', holds the webhook URL' if url else ''})")
    return path


def _make_log_dir(path: Path, run_as: str | None) -> None:
    """launchd opens StandardOutPath but does not create its folder; a daemon running as
    ``run_as`` must be able to write there."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        if run_as and _is_root():
            shutil.chown(path, user=run_as)
    except (OSError, LookupError) as exc:
        raise UsageError(f"cannot prepare the log folder {path}: {exc}; create it and run again") from None


def _validate_check_args(args: list[str]) -> None:
    """Parse them as 'roomprobe check' would, so a typo fails now, not at 3 a.m. every 15 minutes."""
    from roomprobe.commands.check import check as check_cmd

    try:
        check_cmd.make_context("check", list(args), resilient_parsing=False)
    except click.exceptions.Exit:
        return
    except click.UsageError as exc:
        raise UsageError(f"--args: {exc.format_message().rstrip('.')}; see 'roomprobe check --help'") from None


def _names(platform: str) -> list[str]:
    if platform == "linux":
        return [f"{sch.UNIT}.service", f"{sch.UNIT}.timer"]
    if platform == "windows":
        return [f"{sch.UNIT}.xml"]
    return [f"{sch.LAUNCHD_LABEL}.plist"]


@schedule.command()
@_platform_opt
@_dir_opt
@click.option("--purge", is_flag=True, default=False,
              help="Also delete the run history (an uninstall whose user chose not to keep it).")
@click.option("--history-db", default=None, metavar="PATH", help="The history database --purge deletes.")
def remove(platform: str | None, directory: str | None, purge: bool, history_db: str | None) -> int:
    """Deactivate and delete the scheduler files and the machine config (nothing to remove is not an error).

    The history is kept unless --purge: it is the record of the room's past runs, which an
    uninstall (or an upgrade that reinstalls) should not throw away unasked.
    """
    platform = platform or sch.current_platform()
    target, live = _target(platform, directory)
    paths = [target / n for n in _names(platform) if (target / n).exists()]
    from roomprobe.fleet import deploy

    config = (deploy.machine_config_dir(platform) if live else target) / deploy.CONFIG_NAME
    leftovers = [config] if config.is_file() else []
    if purge:
        from roomprobe.fleet import history

        db = Path(history_db) if history_db else history.default_db_path()
        leftovers += [p for p in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"))
                      if p.is_file()]
    if live and paths:
        _run(_activate_cmds(platform, paths, remove=True))
    for path in paths:
        path.unlink()
        click.echo(f"removed {path}")
    if live and paths and platform == "linux":
        _run([["systemctl", *([] if _is_root() else ["--user"]), "daemon-reload"]])
    for path in leftovers:
        try:
            path.unlink()
        except OSError as exc:
            raise UsageError(f"cannot delete {path}: {exc.strerror or exc}; delete it by hand") from None
        click.echo(f"removed {path}")
    if not paths:
        click.echo(f"nothing scheduled in {target}")
    return 0


@schedule.command()
@_platform_opt
@_dir_opt
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--history-db", default=None, metavar="PATH", help="History database to read the last run from.")
def status(platform: str | None, directory: str | None, fmt: str, history_db: str | None) -> int:
    """Is the check scheduled, how often, as whom, and how did the last run go."""
    platform = platform or sch.current_platform()
    target, live = _target(platform, directory)
    files = {n: target / n for n in _names(platform)}
    present = {n: p.exists() for n, p in files.items()}
    meta = None
    for p in files.values():
        if p.exists():
            from roomprobe.core.fsutil import open_regular

            try:  # a FIFO or device in its place must not hang 'schedule status'
                with open_regular(p) as fh:
                    raw = fh.read(1 << 20)
            except OSError:
                continue
            bom = raw[:2] in (b"\xff\xfe", b"\xfe\xff")
            text = raw.decode("utf-16") if bom else raw.decode("utf-8", "replace")
            meta = meta or sch.read_meta(text)
    command = meta.get("command") if meta else None
    if meta and isinstance(command, list):  # a webhook URL or token is never printed
        from roomprobe.core.redact import redact_text

        meta["command"] = [_redact_arg(prev, redact_text(str(a))) for prev, a in
                           zip([None, *command], command, strict=False)]
    out: dict[str, Any] = {"platform": platform, "dir": str(target), "installed": all(present.values()),
                           "files": {n: str(p) if present[n] else None for n, p in files.items()},
                           "schedule": meta, "scheduler": _scheduler_state(platform) if live else None,
                           "last_run": _last_run(history_db)}
    if fmt == "json":
        click.echo(json.dumps(out, indent=2))
        return 0
    if not out["installed"]:
        click.echo(f"not scheduled (no {', '.join(n for n, ok in present.items() if not ok)} in {target})")
    else:
        m = meta or {}
        click.echo(f"scheduled every {m.get('every_s')}s (offset {m.get('offset_s')}s, random delay up to "
                   f"{m.get('splay_s')}s) as {m.get('run_as') or 'the default account'}")
        shown = m.get("command")
        click.echo(f"  command: {' '.join(map(str, shown)) if isinstance(shown, list) else ''}")
        for p in files.values():
            click.echo(f"  file: {p}")
    if out["scheduler"]:
        click.echo(f"  scheduler: {out['scheduler']}")
    lr = out["last_run"]
    click.echo(f"last run: {lr['started_at']} {lr['status'].upper()} (exit {lr['exit_code']})" if lr
               else "last run: none recorded")
    return 0


def _redact_arg(previous: str | None, arg: str) -> str:
    """The value after --webhook / --peer-token (or inside --webhook=...) is masked whole."""
    from roomprobe.core.redact import MASK

    for flag in sch.SECRET_FLAGS:
        if previous == flag:
            return MASK
        if arg.startswith(flag + "="):
            return f"{flag}={MASK}"
    return arg


def _scheduler_state(platform: str) -> str | None:
    cmd = {"linux": ["systemctl", *([] if _is_root() else ["--user"]), "is-active", f"{sch.UNIT}.timer"],
           "windows": ["schtasks", "/Query", "/TN", sch.UNIT],
           "macos": ["launchctl", "list", sch.LAUNCHD_LABEL]}[platform]
    if shutil.which(cmd[0]) is None:
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    return (out.stdout or out.stderr).strip().splitlines()[-1] if (out.stdout or out.stderr).strip() else None


def _last_run(history_db: str | None) -> dict[str, Any] | None:
    from roomprobe.fleet import history

    path = Path(history_db) if history_db else history.default_db_path()
    if not path.is_file():
        return None
    conn = history.connect(path)
    try:
        return history.last_run(conn)
    finally:
        conn.close()
