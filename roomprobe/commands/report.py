"""``roomprobe report FILE.json``: render a saved report for a ticket (text, markdown, html)."""

from __future__ import annotations

import click

from roomprobe.commands import formats
from roomprobe.core.errors import UsageError


@click.command()
@click.argument("file", metavar="FILE.json")
@click.option("--format", "fmt", type=click.Choice(formats.names("report", "text", "markdown", "html")),
              default="text", show_default=True, help="text for a terminal, markdown to paste into a ticket, html "
              "for one self-contained page to attach.")
@click.option("--output", "-o", "output", default=None, metavar="PATH",
              help="Write to PATH (atomically) instead of stdout.")
@click.option("-v", "--verbose", is_flag=True, default=False, help="Text: show each probe's evidence.")
def report(file: str, fmt: str, output: str | None, verbose: bool) -> int:
    """Render a report saved by 'roomprobe check --json PATH' (validated against its schema first).

    \b
    For a ticket:   roomprobe report room.json --format markdown
    To attach:      roomprobe report room.json --format html -o room.html
    """
    from roomprobe.core.output import RenderOptions
    from roomprobe.report.ticket import load_report

    rep = load_report(file)
    # For a ticket: no colour (it is pasted or attached), the evidence pack under the text.
    text = formats.render("report", fmt, rep, RenderOptions(verbose=verbose, color=False, evidence_pack=True))
    if output:
        from roomprobe.core.fsutil import atomic_write_text

        try:
            atomic_write_text(output, text)
        except OSError as exc:
            raise UsageError(f"cannot write {output}: {exc.strerror or exc}; choose a writable path "
                             "for --output") from None
    else:
        formats.terminal().write(text)
    return 0
