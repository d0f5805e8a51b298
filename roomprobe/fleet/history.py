"""Run history: every check's report in an embedded SQLite database, for "what changed?".

Why SQLite: one file, no server, atomic transactions, and WAL mode lets a reader (``roomprobe
history``) run while a scheduled check writes. A run is inserted and old runs are pruned in ONE
transaction, so a check killed mid-write (power cut, ``kill -9``, Task Scheduler's stop) leaves
either the old database or the new one, never half a row. ``synchronous=FULL`` makes a committed
run survive a power cut too, at the cost of one fsync per check.

The database lives in the platform's state directory (platformdirs: ``~/.local/state/roomprobe``
on Linux, ``%LOCALAPPDATA%\\roomprobe`` on Windows, ``~/Library/Application Support/roomprobe``
on macOS); ``--history-db PATH`` or ``$ROOMPROBE_HISTORY_DB`` moves it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from roomprobe.core.errors import UsageError

if TYPE_CHECKING:
    from roomprobe.report.model import Report

ENV_DB = "ROOMPROBE_HISTORY_DB"
KEEP_DAYS = 30.0
KEEP_RUNS = 5000
BUSY_TIMEOUT_MS = 5000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ts          REAL    NOT NULL,  -- unix time the run started
    started_at  TEXT    NOT NULL,  -- RFC 3339, as in the report
    status      TEXT    NOT NULL,  -- pass | warn | fail
    complete    INTEGER NOT NULL,
    exit_code   INTEGER NOT NULL,
    duration_s  REAL    NOT NULL,
    findings    TEXT    NOT NULL,  -- JSON [{"id", "severity", "probe"}], for quick diffs
    report      TEXT    NOT NULL   -- the whole JSON report
);
CREATE INDEX IF NOT EXISTS runs_ts ON runs(ts);
"""
# Added later (older databases get them by ALTER TABLE in _migrate): which room/target a run
# checked and which probes it ran. "Previous state" and "what changed" compare only runs with
# the same key, so two rooms checked alternately, or a partial run (--only interfaces), never
# look like a change.
_KEY_COLUMNS = {"target": "TEXT NOT NULL DEFAULT ''", "probe_set": "TEXT NOT NULL DEFAULT ''"}


def default_db_path() -> Path:
    """``$ROOMPROBE_HISTORY_DB``, else ``history.sqlite3`` in the platform's user state dir."""
    env = os.environ.get(ENV_DB)
    if env:
        return Path(env)
    from platformdirs import user_state_path

    return user_state_path("roomprobe", appauthor=False) / "history.sqlite3"


REQUIRED_COLUMNS = ("id", "ts", "started_at", "status", "complete", "exit_code", "duration_s",
                    "findings", "report")


class DamagedHistory(UsageError):
    """A row or the schema of the history database is not what roomprobe wrote.

    A UsageError, so even a caller that does not turn it into ``db_error``'s line naming the
    file still ends with one line and exit 3."""


def db_error(path: str | os.PathLike[str], exc: BaseException) -> UsageError:
    """One line that names what is really wrong with the database file, and what to do.

    A full disk and a read-only mount are not a broken database: saying "unusable, move it
    away" would make the user delete a good history."""
    p = os.fspath(path)
    code = getattr(exc, "sqlite_errorcode", None)
    errno_ = getattr(exc, "errno", None)
    text = str(exc).lower()
    fs = None if isinstance(exc, DamagedHistory) else _fs_state(Path(p))
    # ENOSPC, SQLITE_FULL
    if fs == "full" or errno_ == 28 or code == 13 or "disk is full" in text or "no space" in text:
        return UsageError(f"the disk holding the history database {p} is full; free some space "
                          "(history itself keeps at most 30 days) or move it with --history-db")
    if fs == "readonly" or errno_ in (30, 13) or code in (8, 1032) or "readonly" in text or "read-only" in text:
        return UsageError(f"the history database {p} is on a read-only file system or not "
                          "writable; 'roomprobe history' can still read it; to record runs, give "
                          "a writable path with --history-db")
    if is_damage(exc):
        return UsageError(f"the history database {p} is damaged ({str(exc)[:160]}); move it away "
                          "and rerun (a new one is created)")
    if isinstance(exc, sqlite3.OperationalError) and ("unable to open" in text or "cannot open" in text):
        return UsageError(f"cannot open the history database {p} ({exc}); check the path, or "
                          "choose another with --history-db")
    return UsageError(f"the history database {p} is unusable ({str(exc)[:160]}); move it away "
                      "and rerun (a new one is created)")


def is_damage(exc: BaseException) -> bool:
    """Is ``exc`` the database file's own damage (corrupt pages, flipped bytes in a text column:
    SQLite's "could not decode to UTF-8", or UnicodeDecodeError on some Pythons), as opposed to
    a full disk, a read-only mount or a lock?"""
    code = getattr(exc, "sqlite_errorcode", None)
    text = str(exc).lower()
    return (isinstance(exc, (DamagedHistory, UnicodeDecodeError)) or code in (11, 26)
            or "not a database" in text or "malformed" in text or "could not decode" in text)


def set_aside(path: str | os.PathLike[str]) -> Path:
    """Rename a damaged database (and its -wal/-shm) to ``<name>.damaged-<UTC time>``, so a new
    one can record this run while the old file is kept whole for whoever wants to rescue it.
    Raises OSError when it cannot be moved (then nothing was moved), and ValueError for a file
    that is not a SQLite database at all (a wrong --history-db: that file is left alone)."""
    p = Path(path)
    with open(p, "rb") as fh:
        if fh.read(16) != b"SQLite format 3\x00":
            raise ValueError("not a SQLite file; left alone")
    aside = p.with_name(f"{p.name}.damaged-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    n = 1
    while aside.exists():
        n += 1
        aside = aside.with_name(f"{aside.name.split('~')[0]}~{n}")
    # The WAL moves with its database (a new database must never meet the old one's WAL):
    # all three go, or none does.
    moved: list[tuple[Path, Path]] = []
    try:
        for suffix in ("-wal", "-shm", ""):
            src = p.with_name(p.name + suffix)
            if suffix and not src.exists():
                continue
            dst = aside.with_name(aside.name + suffix)
            os.replace(src, dst)
            moved.append((src, dst))
    except OSError:
        for src, dst in reversed(moved):
            with contextlib.suppress(OSError):
                os.replace(dst, src)
        raise
    return aside


def _fs_state(path: Path) -> str | None:
    """"readonly" or "full" for the file system holding ``path`` (POSIX statvfs), else None.

    SQLite reports both as a generic "disk I/O error" or "unable to open database file" (the
    WAL's -shm file cannot be created), so the file system is asked directly."""
    if not hasattr(os, "statvfs"):
        return None
    d = path if path.is_dir() else path.parent
    try:
        st = os.statvfs(d)
    except OSError:
        return None
    if st.f_flag & getattr(os, "ST_RDONLY", 1):
        return "readonly"
    if st.f_bavail * st.f_frsize < 64 * 1024:
        return "full"
    return None


def check_schema(conn: sqlite3.Connection) -> None:
    """The ``runs`` table with every column this version reads, or DamagedHistory."""
    cols = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
    if not cols:
        raise DamagedHistory("no 'runs' table: not a roomprobe history database")
    missing = [c for c in REQUIRED_COLUMNS if c not in cols]
    if missing:
        raise DamagedHistory(f"table 'runs' lacks column(s) {', '.join(missing)}")


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open (creating if needed) the history database in WAL mode with durable commits."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(p), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        if isinstance(exc, OSError) and exc.errno in (28, 30):
            raise db_error(p, exc) from None
        raise UsageError(f"cannot open the history database {p}: {exc}; "
                         "choose a writable path with --history-db") from None
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        with _tx(conn):
            for stmt in filter(str.strip, _SCHEMA.split(";")):
                conn.execute(stmt)
            _migrate(conn)
        check_schema(conn)
    except (sqlite3.Error, DamagedHistory) as exc:
        conn.close()
        raise db_error(p, exc) from None
    return conn


def connect_readonly(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open the database for reading only (``roomprobe history``): works on a read-only mount.

    ``mode=ro`` first; a WAL database on a read-only file system cannot create its ``-shm``
    file, so then ``immutable=1`` (nothing can be writing to a read-only mount anyway)."""
    from urllib.parse import quote

    p = Path(path)
    uri = "file:" + quote(str(p.resolve()))
    last: BaseException | None = None
    for params in ("mode=ro", "mode=ro&immutable=1"):
        try:
            conn = sqlite3.connect(f"{uri}?{params}", uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                                   isolation_level=None)
        except sqlite3.Error as exc:
            last = exc
            continue
        try:
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            check_schema(conn)
            return conn
        except DamagedHistory as exc:
            conn.close()
            raise db_error(p, exc) from None
        except sqlite3.Error as exc:
            conn.close()
            last = exc
    raise db_error(p, last or sqlite3.DatabaseError("cannot open")) from None


@contextmanager
def _tx(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction (BEGIN IMMEDIATE takes the write lock up front: no upgrade deadlock)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _migrate(conn: sqlite3.Connection) -> None:
    """Add the key columns to a database made by an older roomprobe (inside connect's transaction)."""
    have = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
    for col, decl in _KEY_COLUMNS.items():
        if col not in have:
            conn.execute(f"ALTER TABLE runs ADD COLUMN {col} {decl}")
    conn.execute("CREATE INDEX IF NOT EXISTS runs_key ON runs(target, probe_set, id)")


def _has_key_columns(conn: sqlite3.Connection) -> bool:
    return set(_KEY_COLUMNS) <= {r[1] for r in conn.execute("PRAGMA table_info(runs)")}


def run_key(report: Report) -> tuple[str, str]:
    """(target, probe set) of a report: the room it checked and the probes it selected.

    target is "role|room|address" (role: room or controller side; room: --room-name or address),
    so the same address checked from two sides, or two names for one address, stay apart.
    """
    t = report.targets
    addr = str(t.room or t.controller or "")
    target = f"{t.role or ''}|{report.room_name or ''}|{addr}"
    probe_set = ",".join(sorted(str(p.id) for p in report.probes))
    return target, probe_set


def _findings_summary(report: Report) -> list[dict[str, str]]:
    return [{"id": f.id, "severity": f.severity.value, "probe": f.probe} for f in report.findings]


def _ts(report: Report) -> float:
    try:
        return datetime.fromisoformat(report.started_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time()


def record(conn: sqlite3.Connection, report: Report, exit_code: int, *,
           keep_days: float = KEEP_DAYS, keep_runs: int = KEEP_RUNS, now: float | None = None) -> int:
    """Insert one run and apply retention, atomically. Returns the new run's id."""
    now = time.time() if now is None else now
    row = (_ts(report), report.started_at, report.status,
           int(bool(report.complete)), int(exit_code), float(report.duration_s),
           json.dumps(_findings_summary(report)), json.dumps(report.to_dict(), separators=(",", ":")),
           *run_key(report))
    with _tx(conn):
        cur = conn.execute("INSERT INTO runs (ts, started_at, status, complete, exit_code, duration_s, "
                           "findings, report, target, probe_set) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           row)
        run_id = int(cur.lastrowid or 0)
        if keep_days > 0:
            conn.execute("DELETE FROM runs WHERE ts < ? AND id != ?", (now - keep_days * 86400, run_id))
        if keep_runs > 0:
            conn.execute("DELETE FROM runs WHERE id <= (SELECT id FROM runs ORDER BY id DESC "
                         "LIMIT 1 OFFSET ?)", (keep_runs,))
    return run_id


def last_run(conn: sqlite3.Connection, key: tuple[str, str] | None = None) -> dict[str, Any] | None:
    """The most recent run (without its full report), or None; with ``key`` (see
    :func:`run_key`) the most recent run of that target and probe set."""
    rows = runs(conn, limit=1, key=key)
    return rows[0] if rows else None


def runs(conn: sqlite3.Connection, *, since: float | None = None, limit: int | None = None,
         with_report: bool = False, key: tuple[str, str] | None = None) -> list[dict[str, Any]]:
    """Runs newest first (only those of ``key``'s target and probe set when given)."""
    cols = "id, ts, started_at, status, complete, exit_code, duration_s, findings"
    if with_report:
        cols += ", report"
    sql = f"SELECT {cols} FROM runs WHERE 1=1"  # noqa: S608 (fixed column list)
    args: list[float | str | int] = []
    if since is not None:
        sql += " AND ts >= ?"
        args.append(since)
    if key is not None:
        sql += " AND target = ? AND probe_set = ?"
        args.extend(key)
    sql += " ORDER BY id DESC"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(int(limit))
    out = []
    for r in conn.execute(sql, args):
        row = _row(r)
        if with_report:
            row["report"] = _json(r[8], r[0], "report", dict)
        out.append(row)
    return out


def _json(raw: Any, run_id: Any, column: str, kind: type) -> Any:
    """A JSON column of one run, or DamagedHistory naming the run and the column."""
    try:
        value = json.loads(raw)
    except (TypeError, ValueError, RecursionError):
        raise DamagedHistory(f"run #{run_id}: column {column} is not JSON") from None
    if not isinstance(value, kind):
        raise DamagedHistory(f"run #{run_id}: column {column} is not a JSON {kind.__name__}")
    return value


def _row(r: tuple[Any, ...]) -> dict[str, Any]:
    """(id, ts, started_at, status, complete, exit_code, duration_s, findings) -> a checked run.

    Every value is checked for the type the renderers use, so a row edited by hand or by
    another program is one DamagedHistory line, not a TypeError halfway through the table."""
    run_id = r[0]
    findings = _json(r[7], run_id, "findings", list)
    if not all(isinstance(f, dict) and isinstance(f.get("id"), str)
               and isinstance(f.get("severity"), str) and isinstance(f.get("probe", ""), str)
               for f in findings):
        raise DamagedHistory(f"run #{run_id}: findings are not {{id, severity, probe}} records")
    if not isinstance(run_id, int) or not isinstance(r[2], str) or not isinstance(r[3], str) \
            or not isinstance(r[5], int) or isinstance(r[6], bool) \
            or not isinstance(r[6], (int, float)) or r[4] not in (0, 1):
        raise DamagedHistory(f"run #{run_id}: a column holds a value of the wrong type")
    # "probe" may be absent (older rows, other writers): every reader gets it, as "" then
    findings = [{**f, "probe": f.get("probe", "")} for f in findings]
    return {"id": run_id, "started_at": r[2], "status": r[3], "complete": bool(r[4]),
            "exit_code": r[5], "duration_s": float(r[6]), "findings": findings}


def healthy(run: dict[str, Any]) -> bool:
    """A healthy run passed every probe and finished within its deadline."""
    return run["status"] == "pass" and run["complete"]


def changes(conn: sqlite3.Connection) -> dict[str, Any]:
    """What changed in the latest run since the last healthy run before it (of the same
    target and probe set: another room's or a partial run's findings are not "cleared").

    ``new``: findings in the latest run that the healthy baseline did not have. ``cleared``:
    findings seen in a run after the baseline that the latest run no longer has (fixed, or
    gone away). With no healthy run on record, the baseline is the start of the history.
    """
    latest = last_run(conn)
    if latest is None:
        return {"latest": None, "baseline": None, "unhealthy_since": None, "new": [], "cleared": []}
    key: tuple[str, str] | None = None
    if _has_key_columns(conn):  # an older database opened read-only has no key columns yet
        key = tuple(conn.execute("SELECT target, probe_set FROM runs WHERE id = ?",
                                 (latest["id"],)).fetchone())  # type: ignore[assignment]
    base_sql = "SELECT id FROM runs WHERE id < ? AND status = 'pass' AND complete = 1"
    base_args: list[Any] = [latest["id"]]
    if key is not None:
        base_sql += " AND target = ? AND probe_set = ?"
        base_args.extend(key)
    base_row = conn.execute(base_sql + " ORDER BY id DESC LIMIT 1", base_args).fetchone()
    base_id = base_row[0] if base_row else 0
    between = _rows_between(conn, base_id, latest["id"], key)
    baseline = _one(conn, base_id) if base_id else None
    base_keys = {_key(f) for f in baseline["findings"]} if baseline else set()
    latest_keys = {_key(f): f for f in latest["findings"]}
    new = [f for k, f in latest_keys.items() if k not in base_keys]
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for r in between:
        for f in r["findings"]:
            seen.setdefault(_key(f), f)
    cleared = [f for k, f in seen.items() if k not in latest_keys]
    unhealthy = [r for r in between + [latest] if not healthy(r)]
    since = unhealthy[0]["started_at"] if unhealthy and not healthy(latest) else None
    brief = ("id", "started_at", "status", "complete", "exit_code")
    return {"latest": {k: latest[k] for k in brief},
            "baseline": {k: baseline[k] for k in brief} if baseline else None,
            "unhealthy_since": since, "new": new, "cleared": cleared}


def _key(f: dict[str, str]) -> tuple[str, str]:
    return (f.get("probe", ""), f["id"])


def _rows_between(conn: sqlite3.Connection, lo: int, hi: int,
                  key: tuple[str, str] | None) -> list[dict[str, Any]]:
    sql = ("SELECT id, ts, started_at, status, complete, exit_code, duration_s, findings "
           "FROM runs WHERE id > ? AND id < ?")
    args: list[Any] = [lo, hi]
    if key is not None:
        sql += " AND target = ? AND probe_set = ?"
        args.extend(key)
    return [_row(r) for r in conn.execute(sql + " ORDER BY id", args).fetchall()]


def _one(conn: sqlite3.Connection, run_id: int) -> dict[str, Any]:
    r = conn.execute("SELECT id, ts, started_at, status, complete, exit_code, duration_s, findings "
                     "FROM runs WHERE id = ?", (run_id,)).fetchone()
    return _row(r)


_AGO = re.compile(r"^\s*(\d{1,9}(?:\.\d{1,9})?)\s*([smhdw])\s*$", re.ASCII)
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: float | None = None) -> float:
    """``90m``, ``24h``, ``7d`` (ago) or an ISO date/time (local time unless it has an offset)."""
    now = time.time() if now is None else now
    m = _AGO.match(text)
    if m:
        return now - float(m.group(1)) * _UNIT_S[m.group(2)]
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        return dt.timestamp() if dt.tzinfo else dt.astimezone(timezone.utc).timestamp()
    except (ValueError, OverflowError, OSError):  # not a date; year 1 or 9999 near the edges
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise UsageError(f"--since {shown!r}: give an age like 90m, 24h, 7d or a date like "
                         "2026-11-20 or 2026-11-20T08:00") from None


MAX_READ_REPORT = 4 * 1024 * 1024  # one stored report, for a probe's look back; a bigger row is skipped


class Reader:
    """The history as a probe sees it (core.probe.HistoryReader): the newest reports, read-only.

    The check hands one to the probes, built on the database it will record into, so a probe
    (wifi: roaming) never re-derives the path nor opens the file itself. Bounded and quiet: the
    newest ``limit`` rows, each at most MAX_READ_REPORT; a damaged row is skipped and a damaged
    or missing file is "no history" (``roomprobe history`` is where damage is reported).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def recent_reports(self, limit: int) -> list[dict[str, Any]] | None:
        if limit <= 0 or not self.path.is_file():
            return None
        try:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=1.0)
        except sqlite3.Error:
            return None
        try:
            rows = conn.execute("SELECT report FROM runs WHERE length(report) <= ? ORDER BY id DESC "
                                "LIMIT ?", (MAX_READ_REPORT, int(limit))).fetchall()
        except sqlite3.Error:
            return None
        finally:
            conn.close()
        out: list[dict[str, Any]] = []
        for (raw,) in rows:
            try:
                rep = json.loads(raw)
            except (ValueError, TypeError, RecursionError):
                continue
            if isinstance(rep, dict):
                out.append(rep)
        return out
