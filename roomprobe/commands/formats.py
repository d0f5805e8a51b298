"""The one registry of output formats: what ``check``, ``report``, ``sweep``, ``history`` (and
``path``) print, by subject and name.

Each format is one module's ``FORMAT`` (or a ``FORMATS`` tuple: the history's two small
formats share one module) implementing roomprobe/core/output.py's ``Format``: a name and
``render(subject, terminal, options) -> str``. A command offers a subset by name (its click
``Choice``) and prints through :func:`emit`, so no command keeps its own if/elif of formats and a
new format is one module and one line here. The subjects: ``report`` (a Report), ``sweep``
(fleet/sweep_out.SweepView), ``history`` (the history view). Modules load on first use, so
``roomprobe --help`` imports none of them.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

import click

from roomprobe.core.output import Format, RenderOptions, Terminal, from_env

# subject -> name -> "module:attribute" (FORMAT, or FORMATS searched by name)
REGISTRY: dict[str, dict[str, str]] = {
    "report": {"text": "roomprobe.report.text:FORMAT", "json": "roomprobe.report.jsonout:FORMAT",
               "nagios": "roomprobe.report.nagios:FORMAT",
               "markdown": "roomprobe.report.markdown:FORMAT", "html": "roomprobe.report.html:FORMAT"},
    "sweep": {"text": "roomprobe.fleet.sweep_text:FORMAT", "json": "roomprobe.fleet.sweep_json:FORMAT",
              "csv": "roomprobe.fleet.sweep_csv:FORMAT", "html": "roomprobe.fleet.sweep_html:FORMAT"},
    "history": {name: "roomprobe.fleet.history_out:FORMATS" for name in ("text", "json")},
}


def names(subject: str, *only: str) -> list[str]:
    """The format names of ``subject`` a command offers (``only``, checked to exist, in that
    order; all of them without)."""
    known = REGISTRY[subject]
    missing = [n for n in only if n not in known]
    if missing:
        raise KeyError(f"no {subject} format {', '.join(missing)}")
    return list(only or known)


def get(subject: str, name: str) -> Format[Any]:
    module, _, attr = REGISTRY[subject][name].partition(":")
    found = getattr(import_module(module), attr)
    if isinstance(found, tuple):
        found = next(f for f in found if f.name == name)
    return found  # type: ignore[no-any-return]


def terminal() -> Terminal:
    """The terminal cli.py made for this command line (a command invoked on its own, as tests
    do, gets one from the environment)."""
    ctx = click.get_current_context(silent=True)
    term = ctx.find_object(Terminal) if ctx is not None else None
    return term if term is not None else from_env()


def render(subject: str, name: str, value: Any, opts: RenderOptions | None = None,
           term: Terminal | None = None) -> str:
    """``value`` rendered by the ``subject`` format ``name``."""
    return get(subject, name).render(value, term or terminal(), opts or RenderOptions())


def emit(subject: str, name: str, value: Any, opts: RenderOptions | None = None,
         term: Terminal | None = None) -> None:
    """``value`` rendered and written to the terminal's stdout; a format that streams (``write``,
    the sweep's JSON) writes itself."""
    term = term or terminal()
    fmt = get(subject, name)
    opts = opts or RenderOptions()
    write = getattr(fmt, "write", None)
    if write is not None:
        write(value, term, opts)
    else:
        term.write(fmt.render(value, term, opts))
