"""``roomprobe explain CODE`` and ``roomprobe codes``: the error-code catalog from the command line.

For the technician who has a code on a screen and no network problem to chase yet. The catalog
is imported inside the commands, so ``roomprobe --help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

import click

if TYPE_CHECKING:
    from roomprobe.diagnose.catalog import Entry

# Same as roomprobe.diagnose.catalog.PRODUCTS (a test keeps them equal); literal here to keep imports lazy.
_PRODUCTS = ("zoom-rooms", "zoom-client", "video-sdk")
_WIDTH = 100


class _Wrap(TypedDict):
    width: int
    break_on_hyphens: bool
    break_long_words: bool


_WRAP: _Wrap = {"width": _WIDTH, "break_on_hyphens": False, "break_long_words": False}


@click.command()
@click.argument("code")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Output format.")
def explain(code: str, fmt: str) -> None:
    """Explain a Zoom error code: meaning, causes, fix in order, what roomprobe can check.

    \b
    CODE is a number (2002), product:number (zoom-rooms:2002) or a Video SDK name
    (VIDEO_CAMERA_TAKEN). A number used by several products lists every meaning.
    """
    from roomprobe.core.errors import UsageError
    from roomprobe.diagnose import catalog as kb

    found = kb.lookup(code)
    if not found:
        raise UsageError(kb.unknown_code_message(code))
    if fmt == "json":
        import json

        out: dict[str, Any] = {"query": code, "ambiguous": len({e.product for e in found}) > 1,
                               "entries": [e.to_dict() for e in found]}
        if any(e.product == "zoom-rooms" for e in found):
            out["ticket_evidence"] = kb.ticket_evidence()
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
        return
    blocks = []
    if len({e.product for e in found}) > 1:
        blocks.append(f"{code} means different things in different products "
                      f"({', '.join(e.product for e in found)}): say which one, e.g. {found[0].key}.")
    blocks += [_entry_text(e) for e in found]
    if any(e.product == "zoom-rooms" for e in found):
        blocks.append(_section("For a ticket, collect:", [f"- {x}" for x in kb.ticket_evidence()]))
    click.echo("\n\n".join(blocks))


@click.command()
@click.option("--product", type=click.Choice(_PRODUCTS), help="Only this product's codes.")
@click.option("--search", "words", metavar="WORDS", help="Only codes whose text holds every word.")
@click.argument("more_words", nargs=-1, metavar="[WORDS]...")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Output format.")
@click.pass_context
def codes(ctx: click.Context, product: str | None, words: str | None, more_words: tuple[str, ...],
          fmt: str) -> None:
    """Browse the error-code catalog (every code is product + number).

    \b
    roomprobe codes --product zoom-rooms
    roomprobe codes --search camera taken
    """
    from roomprobe.diagnose import catalog as kb

    words = " ".join([words or "", *more_words]).strip()
    found = kb.search(words or "", product)
    if fmt == "json":
        import json

        rows = [{k: v for k, v in (("product", e.product), ("code", e.code), ("name", e.name),
                                   ("title", e.title)) if v is not None} for e in found]
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    elif found:
        click.echo("\n".join(f"{e.product:<12} {e.code:>6}  {e.title}" + (f"  [{e.name}]" if e.name else "")
                             for e in found))
    if not found:
        if fmt == "text":
            where = f" in {product}" if product else ""
            click.echo(f"roomprobe: no code matches {words!r}{where}; try fewer or other words", err=True)
        ctx.exit(1)


def _entry_text(e: Entry) -> str:
    import textwrap

    head = f"{e.product} {e.code}" + (f" {e.name}" if e.name else "") + f": {e.title}"
    parts = [head, textwrap.fill(e.meaning, **_WRAP, initial_indent="  ", subsequent_indent="  ")]
    if e.where:
        parts.append(f"  Raised by: {', '.join(e.where)}")
    if e.readings:
        parts.append(_section("Readings (sources disagree):", [f"- {x}" for x in e.readings]))
    if e.details:
        parts.append(_section("Sub-reasons:", [f"- {x}" for x in e.details]))
    parts.append(_section("Causes:", [f"- {x}" for x in e.causes]))
    parts.append(_section("Fix, in this order:", [f"{i}. {x}" for i, x in enumerate(e.fix, 1)]))
    if e.notes:
        parts.append(_section("Notes:", [f"- {x}" for x in e.notes]))
    checks = (f"roomprobe checks: {', '.join(e.checks)} (run 'roomprobe check --code {e.key}')"
              if e.checks else "roomprobe cannot check this code: it is not caused by the network")
    parts.append(textwrap.fill(checks, **_WRAP, subsequent_indent="  "))
    parts.append(_section("Sources:", [f"- {x}" for x in e.sources]))
    return "\n".join(parts)


def _section(title: str, lines: list[str]) -> str:
    import textwrap

    body = [textwrap.fill(ln, **_WRAP, initial_indent="  ", subsequent_indent="     ") for ln in lines]
    return "\n".join([title, *body])
