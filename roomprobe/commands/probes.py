"""``roomprobe probes``: what each probe checks, what it needs, and the options it takes."""

from __future__ import annotations

import json
from typing import Any

import click


@click.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def probes(fmt: str) -> None:
    """List the probes, what each needs, and its options (for --set and the config file)."""
    from roomprobe.core.registry import load_probes

    rows: list[dict[str, Any]] = [{"id": p.id, "title": p.title, "needs": list(p.needs), "timeout_s": p.timeout_s,
             "default_enabled": p.default_enabled, "long_running": p.long_running,
             "description": p.description, "options": p.option_defaults}
            for p in load_probes().values()]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    for r in rows:
        needs = ", ".join(r["needs"]) or "nothing"
        flag = "" if r["default_enabled"] else " (off unless named in --only; the peer probes also with --peer)"
        click.echo(f"{r['id']}{flag}: {r['title']}\n    {r['description']}\n    needs: {needs}; "
                   f"timeout {r['timeout_s']} s")
        for key, value in r["options"].items():
            click.echo(f"    --set {r['id']}.{key}={json.dumps(value, default=str)}")
