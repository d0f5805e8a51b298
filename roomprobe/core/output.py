"""The output contract: the terminal a command writes to, and the one interface of every format.

``Terminal`` is the streams, whether each is a terminal, colour and width: made once per command
line (cli.py, or :func:`from_env` for a command run on its own) and handed down, as httpie's
Environment is. A command, a format or a probe that wants to know "may I colour this?" or "is a
live progress line welcome on stderr?" asks it, never ``sys.stderr.isatty()`` itself: one place
decides, and a test hands in a fake terminal instead of patching ``sys``. This is the only module
that asks a stream whether it is a tty. ``Format`` is what every output format implements
(roomprobe/commands/formats.py registers them).
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from typing import Protocol, TextIO, TypeVar


def _isatty(stream: TextIO | None) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError, OSError):  # closed, or a stream without isatty
        return False


@dataclass(frozen=True)
class Terminal:
    """Where output goes and what it may look like there."""

    stdout: TextIO
    stderr: TextIO
    stdout_tty: bool
    stderr_tty: bool
    no_color: bool  # NO_COLOR is set (no-color.org): never colour, whatever the flags say
    width: int = 80

    @property
    def color(self) -> bool:
        """Colour is welcome on stdout: a terminal, and NO_COLOR is not set (a flag such as
        ``--no-color`` can still turn it off: the format's options)."""
        return self.stdout_tty and not self.no_color

    def write(self, text: str) -> None:
        """``text`` on stdout as it is (click strips colour codes a pipe should not get)."""
        import click

        click.echo(text, nl=False, file=self.stdout)

    def note(self, text: str, nl: bool = True) -> None:
        """A line on stderr (progress, a warning): never mixed into stdout's report."""
        import click

        click.echo(text, nl=nl, file=self.stderr)

    @property
    def live(self) -> bool:
        """A progress line that rewrites itself (``\\r``) is welcome on stderr: it is a terminal
        (in a log file or a pipe it would be noise)."""
        return self.stderr_tty


def from_env(stdout: TextIO | None = None, stderr: TextIO | None = None) -> Terminal:
    """The process's terminal: its current streams (a test runner's too), NO_COLOR, the width."""
    # The interpreter's own streams (Python's UTF-8 mode and Windows' console encoding apply);
    # click.echo writes to them. click.get_text_stream is deprecated and goes in Click 9.
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    return Terminal(stdout=out, stderr=err, stdout_tty=_isatty(out), stderr_tty=_isatty(err),
                    no_color=bool(os.environ.get("NO_COLOR")),
                    width=shutil.get_terminal_size((80, 24)).columns)


@dataclass(frozen=True)
class RenderOptions:
    """What the user asked of a rendering, beyond the format's name."""

    verbose: bool = False  # -v: each probe's evidence, every ruled-out cause
    color: bool = True  # False with --no-color; the terminal decides too (Terminal.color)
    evidence_pack: bool = False  # text for a ticket: the evidence pack under the verdict


S_contra = TypeVar("S_contra", contravariant=True)


class Format(Protocol[S_contra]):
    """One output format: its name and how it renders its subject (a report, a sweep, the
    history) for a terminal. Registered once in roomprobe/commands/formats.py."""

    name: str

    def render(self, subject: S_contra, term: Terminal, opts: RenderOptions) -> str: ...
