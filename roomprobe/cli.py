"""The ``roomprobe`` command line: a lazy click group.

Subcommands live in ``roomprobe.commands.*`` and are imported only when invoked, and their
one-line help is listed here, so ``roomprobe --help`` never imports psutil, scapy or the probes.
Every usage problem ends as one line on stderr and exit code 3 (the monitoring "UNKNOWN").
"""

from __future__ import annotations

import os
import sys
from importlib import import_module
from typing import Any

import click

from roomprobe import __version__
from roomprobe.core.errors import ExitCode, UsageError

# name -> (module:attribute, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("roomprobe.commands.check:check",
              "Run the probes and tell why controller, room or cloud cannot talk."),
    "probes": ("roomprobe.commands.probes:probes", "List the probes and what each needs."),
    "explain": ("roomprobe.commands.explain:explain",
                "Explain a Zoom error code (2002, zoom-rooms:2002, VIDEO_CAMERA_TAKEN)."),
    "codes": ("roomprobe.commands.explain:codes", "Browse the error-code catalog."),
    "report": ("roomprobe.commands.report:report",
               "Render a saved report for a ticket (text, markdown, self-contained html)."),
    "history": ("roomprobe.commands.history:history",
                "Past checks and what changed since the room was last healthy."),
    "schedule": ("roomprobe.commands.schedule:schedule",
                 "Run the check every N minutes with the OS scheduler (install|remove|status)."),
    "sweep": ("roomprobe.commands.sweep:sweep", "Check many rooms at once: 9090 state, ARP, likely code."),
    "exporter": ("roomprobe.commands.exporter:exporter",
                 "Serve /probe?target=&module= for Prometheus (blackbox_exporter style)."),
    "path": ("roomprobe.commands.path:path",
             "Trace the path to Zoom hop by hop (live, like mtr) and say where loss or delay begins."),
    "serve": ("roomprobe.commands.serve:serve",
              "Answer 'check --peer' bandwidth/latency tests (and stand in on 9090)."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module, _, attr = COMMANDS[cmd_name][0].partition(":")
            try:
                return getattr(import_module(module), attr)
            except ModuleNotFoundError as exc:
                if exc.name and exc.name.startswith("roomprobe"):
                    return None  # a command not built in this version
                raise
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in sorted(COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="roomprobe")
def cli() -> None:
    """roomprobe: why can't the Zoom Rooms controller, the room, or Zoom's cloud talk?

    \b
    On the room PC:          roomprobe check --controller 10.0.0.5
    Next to the controller:  roomprobe check --room 10.0.0.20
    For a ticket:            roomprobe check --controller 10.0.0.5 --json report.json

    Exit codes: 0 all passed, 1 warnings, 2 failures, 3 unknown (bad usage, internal error,
    interrupted).
    """
    ctx = click.get_current_context()
    from roomprobe.core.output import from_env

    ctx.obj = from_env()  # the one terminal, handed down to every command (commands/formats.py)
    if ctx.invoked_subcommand is None:  # plain 'roomprobe': the help, as asked, and exit 0
        click.echo(ctx.get_help())


def one_line(message: str, limit: int = 1000) -> str:
    """A message as ONE printable line: a value the user typed may hold a newline, a carriage
    return or an escape sequence, and echoing it raw would split or rewrite the error line."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fail(message: str) -> None:
    click.echo(f"roomprobe: {one_line(message)}", err=True)
    sys.exit(ExitCode.UNKNOWN)


# Internal roles of the same executable, chosen by the first argument before click parses
# anything: a frozen binary has no ``python -m``, so roomprobe.proxy.sources.pac starts the binary
# itself with ``--pac-worker`` to evaluate a PAC file in a killable child. Found by name, like
# COMMANDS, so this module imports core only.
HELPERS: dict[str, str] = {"--pac-worker": "roomprobe.proxy.sources.pacworker:main"}


def run_helper(argv: list[str]) -> int | None:
    """Run the helper role ``argv`` names (its exit code), or None when it names none."""
    if len(argv) != 1 or argv[0] not in HELPERS:
        return None
    module, _, attr = HELPERS[argv[0]].partition(":")
    return int(getattr(import_module(module), attr)())


def main(argv: list[str] | None = None) -> Any:
    """Entry point: click in non-standalone mode so every usage error becomes exit 3."""
    helper = run_helper(sys.argv[1:] if argv is None else argv)
    if helper is not None:
        sys.exit(helper)
    try:
        rv = cli.main(args=argv, prog_name="roomprobe", standalone_mode=False)
    except UsageError as exc:
        _fail(str(exc))
    except click.exceptions.NoSuchOption as exc:
        hint = f" (did you mean {', '.join(exc.possibilities)}?)" if exc.possibilities else ""
        _fail(f"no such option: {exc.option_name}{hint}; see 'roomprobe {_sub(exc)}--help'")
    except click.UsageError as exc:
        _fail(f"{exc.format_message()}; see 'roomprobe {_sub(exc)}--help'")
    except click.exceptions.Abort:
        _fail("aborted")
    except click.ClickException as exc:
        _fail(exc.format_message())
    except KeyboardInterrupt:
        _fail("interrupted")
    except BrokenPipeError:
        sys.exit(ExitCode.UNKNOWN)
    except Exception as exc:  # a bug of ours: one line for the user, the traceback on request
        if os.environ.get("ROOMPROBE_DEBUG"):
            raise
        _fail(f"internal error: {type(exc).__name__}: {exc}; rerun with ROOMPROBE_DEBUG=1 "
              "for the traceback and report it")
    if isinstance(rv, int):
        sys.exit(rv)
    sys.exit(0)


WINDOWLESS_LOG_MAX = 1024 * 1024  # one old generation is kept: a scheduled run's log stays small


def main_windowless(argv: list[str] | None = None) -> Any:
    """Entry point for scheduled runs without a console (``roomprobe-w``, the windowed build).

    Why: a task running as the room's logged-on user with a console program opens a console
    window on the room's display every run. A windowless program (pythonw, PyInstaller
    ``console=False``) has no stdout/stderr at all, so output and errors would vanish: they go
    to ``roomprobe-w.log`` in the user's log directory instead (kept below about 1 MiB, one
    previous file ``.1``). With a console (streams present) this is exactly :func:`main`.
    """
    if sys.stdout is None or sys.stderr is None:
        try:
            log = _windowless_log()
            sys.stdout = sys.stdout or log
            sys.stderr = sys.stderr or log
        except OSError:  # nowhere to write: run anyway (history and exports still record it)
            import io

            sys.stdout = sys.stdout or io.StringIO()
            sys.stderr = sys.stderr or io.StringIO()
    return main(argv)


def _windowless_log() -> Any:
    from platformdirs import user_log_path

    from roomprobe.core.fsutil import replace

    path = user_log_path("roomprobe", appauthor=False) / "roomprobe-w.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if path.stat().st_size > WINDOWLESS_LOG_MAX:
            replace(path, path.with_name(path.name + ".1"))
    except FileNotFoundError:
        pass
    return open(path, "a", encoding="utf-8", errors="replace", buffering=1)  # noqa: SIM115 (lives with the process)


def _sub(exc: click.ClickException) -> str:
    ctx = getattr(exc, "ctx", None)
    if ctx is not None and ctx.info_name and ctx.parent is not None:
        return f"{ctx.info_name} "
    return ""
