"""After a check: record it in the history, export it for Prometheus, tell a webhook.

``roomprobe check`` calls :func:`validate` before the probes run (bad paths and URLs are usage
errors, exit 3, before any waiting) and :func:`after_run` once the report is built. Nothing
here changes the check's verdict or exit code: a full disk or a dead webhook receiver is
reported as one ``roomprobe: warning:`` line on stderr, because the network's health is what the
exit code is about. The webhook is the only step that can wait, and it stops at the check's
deadline (with a small floor so a check that used its whole budget can still send).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from roomprobe.core.errors import UsageError

if TYPE_CHECKING:
    from roomprobe.core.settings import CheckSettings

WEBHOOK_FLOOR_S = 2.0


def validate(c: CheckSettings) -> None:
    """Refuse unusable --prometheus-textfile / --webhook / --history-db values up front."""
    prom = c.prometheus_textfile
    if prom:
        if not str(prom).endswith(".prom"):
            raise UsageError(f"--prometheus-textfile {prom}: the textfile collector only reads "
                             "*.prom files; name it e.g. roomprobe.prom")
        parent = Path(prom).parent
        if not parent.is_dir():
            raise UsageError(f"--prometheus-textfile {prom}: directory {parent} does not exist; "
                             "point it at the collector's --collector.textfile.directory")
    if c.webhook:
        from roomprobe.fleet.webhook import validate_url

        validate_url(str(c.webhook))
    for key in ("history_keep_days", "history_keep_runs"):
        if float(getattr(c, key) or 0) < 0:
            raise UsageError(f"[check] {key} = {getattr(c, key)}: give 0 (no limit) or a positive number")
    db = c.history_db
    if db and Path(db).is_dir():
        raise UsageError(f"--history-db {db} is a directory; give a file path, "
                         f"e.g. {Path(db) / 'history.sqlite3'}")


def _warn(message: str) -> None:
    click.echo(f"roomprobe: warning: {message}", err=True)


def after_run(rep: dict[str, Any], exit_code: int, c: CheckSettings, deadline: float) -> dict[str, Any]:
    """Do the post-run work the flags asked for; returns what happened (for tests and logs)."""
    done: dict[str, Any] = {}
    previous: str | None = None
    if c.history or c.webhook:
        previous, done["history_id"] = _history(rep, exit_code, c)
    if c.prometheus_textfile:
        from roomprobe.fleet import metrics

        try:
            metrics.write(c.prometheus_textfile, rep, exit_code)
            done["prometheus"] = True
        except UsageError as exc:
            _warn(str(exc))
    if c.webhook:
        state = f"{rep['status']}/{exit_code}"
        if state != previous:
            from roomprobe.fleet import webhook

            until = max(deadline, time.monotonic() + WEBHOOK_FLOOR_S)
            d = webhook.post(str(c.webhook), webhook.summary(rep, exit_code, previous), until)
            done["webhook"] = d
            if not d.delivered:
                last = d.attempts[-1] if d.attempts else {}
                _warn(f"webhook not delivered after {len(d.attempts)} attempt(s) "
                      f"({d.gave_up}; last: {last.get('status') or last.get('error')})")
    return done


def _history(rep: dict[str, Any], exit_code: int, c: CheckSettings) -> tuple[str | None, int | None]:
    """Record the run (if history is on) and return the previous run's "status/exit" state."""
    from roomprobe.fleet import history

    path = Path(c.history_db) if c.history_db else history.default_db_path()
    if not c.history and not path.exists():
        return None, None
    try:
        conn = history.connect(path)
    except UsageError as exc:
        _warn(str(exc))
        return None, None
    try:
        last = history.last_run(conn)
        previous = f"{last['status']}/{last['exit_code']}" if last else None
        run_id = None
        if c.history:
            run_id = history.record(conn, rep, exit_code, keep_days=float(c.history_keep_days),
                                    keep_runs=int(c.history_keep_runs))
        return previous, run_id
    except Exception as exc:  # sqlite3.Error, full disk: never lose the check's verdict over it
        _warn(f"could not record the run: {history.db_error(path, exc)}")
        return None, None
    finally:
        conn.close()

