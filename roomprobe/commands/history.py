"""``roomprobe history``: the room's status over time, and what changed since it was last healthy."""

from __future__ import annotations

from pathlib import Path

import click

from roomprobe.commands import formats
from roomprobe.core.errors import UsageError


@click.command()
@click.option("--since", default=None, metavar="AGE|DATE",
              help="Only runs since then: 90m, 24h, 7d, or 2026-11-20[T08:00].")
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=20, show_default=True,
              help="At most this many runs.")
@click.option("--format", "fmt", type=click.Choice(formats.names("history", "text", "json")), default="text",
              show_default=True)
@click.option("--history-db", default=None, metavar="PATH",
              help="History database [default: $ROOMPROBE_HISTORY_DB or the user state dir].")
def history(since: str | None, limit: int, fmt: str, history_db: str | None) -> int:
    """Show past checks (newest first) and what changed since the last healthy run.

    A run is healthy when every probe passed within the deadline. "New" findings are in the
    latest run but not in that healthy one; "cleared" ones appeared after it and are gone now.
    """
    import sqlite3

    from roomprobe.fleet import history as hist

    since_ts = hist.parse_since(since) if since else None
    path = Path(history_db) if history_db else hist.default_db_path()
    if not path.is_file():
        raise UsageError(f"no history at {path}: run 'roomprobe check' first (history is on by "
                         "default), or point --history-db at the database")
    # Read-only: reading must work on a read-only mount and never change the file.
    conn = hist.connect_readonly(path)
    try:
        data = {"db": str(path), "runs": hist.runs(conn, since=since_ts, limit=limit),
                "changes": hist.changes(conn)}
    except (sqlite3.Error, hist.DamagedHistory, UnicodeDecodeError) as exc:  # flipped bytes
        raise hist.db_error(path, exc) from None
    finally:
        conn.close()
    formats.emit("history", fmt, data)
    return 0
