"""After a check: record it in the history, export it for Prometheus, tell a webhook.

``roomprobe check`` calls :func:`validate` before the probes run (bad paths and URLs are usage
errors, exit 3, before any waiting), :func:`record` once the report is built (history,
textfile), and :func:`deliver` (the webhook) only after the verdict is on the screen. Nothing
here changes the check's verdict or exit code: a full disk or a dead webhook receiver is
reported as one ``roomprobe: warning:`` line on stderr, because the network's health is what the
exit code is about. The webhook is the only step that can wait, and it stops at the check's
deadline (with a small floor so a check that used its whole budget can still send).

"Changed" means: this run's "status/exit code" differs from the previous run of the SAME target
and probe set (history.run_key), so two rooms checked alternately from one machine, or an
``--only interfaces`` run between full ones, never fake a change. A change goes into the
outbox (roomprobe.fleet.outbox) before it is sent, and leaves it only once delivered (or
refused for good, which is logged), so a receiver that is down hears of it on a later run.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from roomprobe.core.errors import UsageError

if TYPE_CHECKING:
    from roomprobe.core.settings import CheckSettings
    from roomprobe.report.model import Report

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
    from roomprobe.fleet.webhook import FORMATS, parse_header

    if c.webhook_format not in FORMATS:
        raise UsageError(f"--webhook-format {c.webhook_format}: choose one of {', '.join(FORMATS)}")
    for h in c.webhook_headers:
        parse_header(str(h))
    for key in ("history_keep_days", "history_keep_runs"):
        if float(getattr(c, key) or 0) < 0:
            raise UsageError(f"[check] {key} = {getattr(c, key)}: give 0 (no limit) or a positive number")
    db = c.history_db
    if db and Path(db).is_dir():
        raise UsageError(f"--history-db {db} is a directory; give a file path, "
                         f"e.g. {Path(db) / 'history.sqlite3'}")


def _warn(message: str) -> None:
    click.echo(f"roomprobe: warning: {message}", err=True)


@dataclass
class Recorded:
    """What :func:`record` did, and what :func:`deliver` still has to send."""

    rep: Report
    exit_code: int
    settings: CheckSettings
    changed: bool = False
    previous: str | None = None
    done: dict[str, Any] = field(default_factory=dict)


def record(rep: Report, exit_code: int, c: CheckSettings) -> Recorded:
    """The quick, local steps: the history row and the Prometheus textfile. They come before
    the verdict is printed, so a scheduler that reads the verdict finds the run recorded."""
    out = Recorded(rep, exit_code, c)
    previous: str | None = None
    first = True
    if c.history or c.webhook:
        first, previous, out.done["history_id"] = _history(rep, exit_code, c)
    if c.prometheus_textfile:
        from roomprobe.fleet import metrics

        try:
            metrics.write(c.prometheus_textfile, rep, exit_code)
            out.done["prometheus"] = True
        except UsageError as exc:
            _warn(str(exc))
    out.changed = first or f"{rep.status}/{exit_code}" != previous
    out.previous = previous
    return out


def deliver(rec: Recorded, deadline: float) -> dict[str, Any]:
    """The slow step: the webhook, with retries up to the check's deadline (at least
    WEBHOOK_FLOOR_S from now). The check calls it after printing the verdict, so a receiver
    that is down delays the process's exit, never the answer on the screen."""
    c = rec.settings
    if c.webhook:
        until = max(deadline, time.monotonic() + WEBHOOK_FLOOR_S)
        rec.done["webhook"] = _webhook(rec.rep, rec.exit_code, c, rec.previous if rec.changed else None,
                                       rec.changed, until)
    return rec.done


def after_run(rep: Report, exit_code: int, c: CheckSettings, deadline: float) -> dict[str, Any]:
    """Both steps at once (:func:`record`, then :func:`deliver`); returns what happened."""
    return deliver(record(rep, exit_code, c), deadline)


def db_path(c: CheckSettings) -> Path:
    from roomprobe.fleet import history

    return Path(c.history_db) if c.history_db else history.default_db_path()


def _webhook(rep: Report, exit_code: int, c: CheckSettings, previous: str | None,
             changed: bool, until: float) -> list[Any]:
    """Queue this change (if any) in the outbox, then deliver the outbox for this URL in order.

    Stops at the first entry that cannot be delivered (later ones wait behind it, so the
    receiver sees events in order). Returns the Delivery of each attempt made.
    """
    import uuid

    from roomprobe.fleet import outbox, webhook

    url = str(c.webhook)
    box_path = outbox.path_for(db_path(c))
    entries, problem = outbox.load(box_path)
    if problem:
        _warn(problem)
    uid = outbox.url_id(url)
    if changed:
        eid = str(uuid.uuid4())
        body = webhook.render(c.webhook_format, rep, exit_code, previous, eid)
        before = len(entries)
        entries = outbox.add(entries, {"event_id": eid, "url_id": uid, "created": rep.started_at,
                                       "format": c.webhook_format, "payload": body})
        if len(entries) <= before:
            _warn(f"webhook outbox full ({outbox.MAX_ENTRIES} undelivered changes): the oldest was dropped")
        _save(box_path, entries)
    headers = dict(webhook.parse_header(str(h)) for h in c.webhook_headers)
    secret = c.webhook_secret or os.environ.get("ROOMPROBE_WEBHOOK_SECRET") or None
    results: list[Any] = []
    for entry in [e for e in entries if e.get("url_id") == uid]:
        d = webhook.post(url, entry.get("payload") or {}, until, headers=headers, secret=secret,
                         event_id=str(entry.get("event_id") or ""))
        results.append(d)
        last = d.attempts[-1] if d.attempts else {}
        if d.delivered or d.gave_up == "rejected":
            if d.gave_up == "rejected":
                _warn(f"webhook receiver refused event {entry.get('event_id')} with HTTP "
                      f"{last.get('status')} ({last.get('error') or 'no reason given'}); it is not "
                      f"retried: check --webhook-format ({c.webhook_format}) matches the receiver")
            entries = [e for e in entries if e is not entry]
            _save(box_path, entries)
            continue
        pending = sum(1 for e in entries if e.get("url_id") == uid)
        _warn(f"webhook not delivered after {len(d.attempts)} attempt(s) "
              f"({d.gave_up}; last: {last.get('status') or last.get('error')}); "
              f"{pending} change(s) kept in {box_path} for the next run")
        break
    return results


def _save(path: Path, entries: list[dict[str, Any]]) -> None:
    from roomprobe.fleet import outbox

    try:
        outbox.save(path, entries)
    except OSError as exc:
        _warn(f"cannot write the webhook outbox {path}: {exc.strerror or exc}; an undelivered "
              "change will not be re-sent (choose a writable --history-db directory)")


def _history(rep: Report, exit_code: int, c: CheckSettings) -> tuple[bool, str | None, int | None]:
    """Record the run (if history is on); return (first run of this target and probe set?,
    the previous such run's "status/exit" state, the new run's id)."""
    from roomprobe.fleet import history

    path = db_path(c)
    if not c.history and not path.exists():
        return True, None, None
    try:
        return _record(path, rep, exit_code, c)
    except _Damaged as damaged:
        # The file itself is damaged (flipped bytes, corrupt pages): keep it whole beside, and
        # start a new one with this run, so neither the old runs nor this one are lost.
        try:
            aside = history.set_aside(path)
        except (OSError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            _warn(f"could not record the run: {damaged.message} (not moved aside: {why})")
            return True, None, None
        _warn(f"the history database {path} is damaged ({damaged.cause}); kept as {aside.name} "
              "and a new one started with this run")
        try:
            return _record(path, rep, exit_code, c)
        except _Damaged as again:
            _warn(f"could not record the run: {again.message}")
            return True, None, None


class _Damaged(Exception):
    def __init__(self, message: str, cause: str) -> None:
        super().__init__(message)
        self.message, self.cause = message, cause


def _record(path: Path, rep: Report, exit_code: int,
            c: CheckSettings) -> tuple[bool, str | None, int | None]:
    """One try of :func:`_history`; raises _Damaged when the file itself is damaged."""
    from roomprobe.fleet import history

    try:
        conn = history.connect(path)
    except UsageError as exc:
        if "is damaged" in str(exc) and c.history:
            raise _Damaged(str(exc), str(exc).split("(", 1)[-1].rsplit(")", 1)[0][:160]) from None
        _warn(str(exc))
        return True, None, None
    try:
        last = history.last_run(conn, key=history.run_key(rep))
        previous = f"{last['status']}/{last['exit_code']}" if last else None
        run_id = None
        if c.history:
            run_id = history.record(conn, rep, exit_code, keep_days=float(c.history_keep_days),
                                    keep_runs=int(c.history_keep_runs))
        return last is None, previous, run_id
    except Exception as exc:  # sqlite3.Error, full disk: never lose the check's verdict over it
        if c.history and history.is_damage(exc):
            raise _Damaged(str(history.db_error(path, exc)), str(exc)[:160]) from None
        _warn(f"could not record the run: {history.db_error(path, exc)}")
        return True, None, None
    finally:
        conn.close()

