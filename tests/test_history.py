"""History: runs recorded atomically, retention, "what changed", and survival of kill -9 writers."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reportkit import as_report

from roomprobe.core.errors import UsageError
from roomprobe.fleet import history

HERE = Path(__file__).resolve().parent



def _record(conn, report, code, **kw):  # type: ignore[no-untyped-def]
    """history.record of a test's partial report (completed: the report is typed)."""
    return history.record(conn, as_report(report), code, **kw)


def _run_key(report):  # type: ignore[no-untyped-def]
    return history.run_key(as_report(report))

def rep(status: str, *finding_ids: str, started: str = "2026-11-22T00:00:00Z", complete: bool = True) -> dict:
    return {"started_at": started, "status": status, "complete": complete, "duration_s": 1.5,
            "findings": [{"id": f, "severity": "fail" if status == "fail" else "warn", "probe": "p",
                          "message": f} for f in finding_ids]}


def test_record_and_read_back_newest_first(tmp_path):
    conn = history.connect(tmp_path / "sub" / "h.sqlite3")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    a = _record(conn, rep("pass"), 0)
    b = _record(conn, rep("fail", "port-not-listening"), 2)
    rows = history.runs(conn, with_report=True)
    assert [r["id"] for r in rows] == [b, a]
    assert rows[0]["status"] == "fail" and rows[0]["exit_code"] == 2
    assert rows[0]["findings"] == [{"id": "port-not-listening", "severity": "fail", "probe": "p"}]
    assert rows[0]["report"]["findings"][0]["message"] == "port-not-listening"
    assert [r["id"] for r in history.runs(conn, limit=1)] == [b]


def test_retention_by_count_and_age(tmp_path):
    conn = history.connect(tmp_path / "h.sqlite3")
    now = 1_800_000_000.0
    for i in range(10):
        _record(conn, rep("pass"), 0, keep_runs=4, keep_days=0, now=now)
        assert len(history.runs(conn)) == min(i + 1, 4)
    assert [r["id"] for r in history.runs(conn)] == [10, 9, 8, 7]
    old = rep("pass", started="2026-01-01T00:00:00Z")  # far older than 30 days before `now`
    conn2 = history.connect(tmp_path / "h2.sqlite3")
    _record(conn2, old, 0, now=now)
    _record(conn2, rep("pass", started="2027-01-15T00:00:00Z"), 0, keep_days=30, now=now)
    assert [r["started_at"] for r in history.runs(conn2)] == ["2027-01-15T00:00:00Z"]


def test_changes_since_last_healthy(tmp_path):
    conn = history.connect(tmp_path / "h.sqlite3")
    assert history.changes(conn)["latest"] is None
    _record(conn, rep("warn", "wifi-weak"), 1)  # no healthy baseline yet
    ch = history.changes(conn)
    assert ch["baseline"] is None and [f["id"] for f in ch["new"]] == ["wifi-weak"]
    h = _record(conn, rep("pass", started="2026-11-22T01:00:00Z"), 0)
    _record(conn, rep("fail", "dns-timeout", "port-blocked", started="2026-11-22T02:00:00Z"), 2)
    _record(conn, rep("fail", "port-blocked", started="2026-11-22T03:00:00Z"), 2)
    ch = history.changes(conn)
    assert ch["baseline"]["id"] == h
    assert [f["id"] for f in ch["new"]] == ["port-blocked"]
    assert [f["id"] for f in ch["cleared"]] == ["dns-timeout"]
    assert ch["unhealthy_since"] == "2026-11-22T02:00:00Z"
    _record(conn, rep("pass", started="2026-11-22T04:00:00Z"), 0)  # fixed
    ch = history.changes(conn)
    assert ch["baseline"]["id"] == h and ch["new"] == [] and ch["unhealthy_since"] is None
    assert sorted(f["id"] for f in ch["cleared"]) == ["dns-timeout", "port-blocked"]
    _record(conn, rep("pass", started="2026-11-22T05:00:00Z", complete=False), 3)
    assert history.changes(conn)["unhealthy_since"] == "2026-11-22T05:00:00Z"  # incomplete != healthy


@pytest.mark.parametrize("text, ago", [("90m", 5400), ("24h", 86400), ("7d", 604800), ("30s", 30)])
def test_parse_since_ages(text, ago):
    assert history.parse_since(text, now=1000000.0) == 1000000.0 - ago


def test_parse_since_dates_and_errors():
    assert history.parse_since("2026-11-20T08:00:00Z") == 1795161600.0
    with pytest.raises(UsageError, match="give an age like 90m"):
        history.parse_since("yesterday")


def test_kill_9_writers_lose_nothing_committed(tmp_path):
    """Three processes write big reports concurrently; each is SIGKILLed at a random moment,
    several times over. Every run a writer acknowledged (after COMMIT) must be there, whole."""
    db = tmp_path / "h.sqlite3"
    history.connect(db).close()
    acked: dict[int, str] = {}
    rng = random.Random(8)
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    kills = 0
    for round_ in range(4):
        procs = [subprocess.Popen([sys.executable, str(HERE / "history_writer.py"), str(db), f"w{round_}{i}",
                                   str(200_000)], stdout=subprocess.PIPE, text=True, env=env)
                 for i in range(3)]
        try:
            time.sleep(rng.uniform(0.6, 1.2))
            for p in procs:
                p.send_signal(signal.SIGKILL)
                kills += 1
        finally:
            for p in procs:
                p.kill()
                out, _ = p.communicate(timeout=10)
                assert p.returncode == -signal.SIGKILL
                for line in out.splitlines():
                    run_id, marker = line.split()
                    acked[int(run_id)] = marker
    assert kills == 12 and len(acked) >= 12, acked  # the writers really were mid-stream

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = {r[0]: json.loads(r[1]) for r in conn.execute("SELECT id, report FROM runs")}
    for run_id, marker in acked.items():
        assert run_id in rows, f"acknowledged run {run_id} ({marker}) lost"
        assert rows[run_id]["marker"] == marker
    for r in rows.values():  # nothing half-written, acknowledged or not
        assert hashlib.sha256(r["payload"].encode()).hexdigest() == r["sha"]
    # And the database is still writable by a new process.
    assert _record(history.connect(db), rep("pass"), 0) > max(acked)


def test_corrupt_database_is_one_clear_error(tmp_path):
    db = tmp_path / "h.sqlite3"
    db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(UsageError, match="is damaged"):
        history.connect(db)


# -- damaged databases, read-only mounts, full disks: one clear line, never a traceback --------
def hist_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ROOMPROBE_CONFIG": os.devnull}
    return subprocess.run([sys.executable, "-m", "roomprobe", "history", *args], capture_output=True,
                          text=True, timeout=60, env=env)


def _db_with_runs(path: Path) -> None:
    conn = history.connect(path)
    _record(conn, rep("pass"), 0)
    _record(conn, rep("fail", "port-refused"), 2)
    conn.close()


@pytest.mark.parametrize("damage, words", [
    ("UPDATE runs SET findings = 'not json' WHERE id = 2", "run #2: column findings is not JSON"),
    ("UPDATE runs SET findings = '{\"a\": 1}' WHERE id = 2", "is not a JSON list"),
    ("UPDATE runs SET findings = '[1, 2]' WHERE id = 1", "run #1: findings are not"),
    ("UPDATE runs SET status = x'00ff' WHERE id = 2", "wrong type"),
    ("UPDATE runs SET duration_s = 'slow' WHERE id = 1", "wrong type"),
    ("UPDATE runs SET findings = '' WHERE id = 2", "not JSON"),
    ("UPDATE runs SET findings = '[' || replace(hex(zeroblob(5000)), '00', '[') WHERE id = 2",
     "not JSON"),
    ("ALTER TABLE runs DROP COLUMN findings", "lacks column(s) findings"),
    ("DROP TABLE runs", "no 'runs' table"),
    ("DROP TABLE runs; CREATE TABLE runs (id INTEGER, x TEXT)", "lacks column(s)"),
])
def test_damaged_history_is_one_line_exit_3(tmp_path, damage, words):
    db = tmp_path / "h.sqlite3"
    _db_with_runs(db)
    conn = sqlite3.connect(db)
    conn.executescript(damage)
    conn.close()
    for fmt in ("text", "json"):
        out = hist_cli("--history-db", str(db), "--format", fmt)
        assert out.returncode == 3 and "Traceback" not in out.stderr, out
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0] and "is damaged" in lines[0], out.stderr


@pytest.mark.parametrize("args, words", [
    (["--limit", "99999999999999999999"], "not in the range"),
    (["--limit", "0"], "not in the range"),
    (["--since", "0001-01-01"], "give an age like"),
    (["--since", "9" * 400 + "d"], "give an age like"),
])
def test_history_flag_errors_are_one_line(tmp_path, args, words):
    db = tmp_path / "h.sqlite3"
    _db_with_runs(db)
    out = hist_cli("--history-db", str(db), *args)
    assert out.returncode == 3 and len(out.stderr.strip().splitlines()) == 1, out
    assert words in out.stderr


def _unshare_ok() -> bool:
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _unshare_ok(), reason="needs unshare -m (root)")
def test_history_on_a_read_only_mount_is_read_not_refused(tmp_path):
    """A real read-only bind mount (root ignores file modes, so chmod would prove nothing):
    'history' reads it; a check says read-only, not "unusable, move it away"."""
    d = tmp_path / "ro"
    d.mkdir()
    _db_with_runs(d / "h.sqlite3")
    script = (f"mount --bind {d} {d} && mount -o remount,bind,ro {d} && "
              f"{sys.executable} -m roomprobe history --history-db {d}/h.sqlite3 --format json; "
              f"echo RC=$?; {sys.executable} -m roomprobe check --only interfaces "
              f"--history-db {d}/h.sqlite3")
    out = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "ROOMPROBE_CONFIG": os.devnull})
    head, _, tail = out.stdout.partition("RC=")
    assert tail.startswith("0"), out
    data = json.loads(head)
    assert [r["id"] for r in data["runs"]] == [2, 1] and data["changes"]["new"], data
    assert "read-only" in out.stderr and "unusable" not in out.stderr and "damaged" not in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.skipif(not _unshare_ok(), reason="needs unshare -m (root)")
def test_history_on_a_full_disk_says_full(tmp_path):
    """A small tmpfs filled to the last byte: the check keeps its verdict and says the disk is
    full; the history already there is still readable and intact."""
    d = tmp_path / "full"
    d.mkdir()
    script = (f"mount -t tmpfs -o size=256k tmpfs {d} && "
              f"{sys.executable} -m roomprobe check --only interfaces --history-db {d}/h.sqlite3 "
              f"&& (dd if=/dev/zero of={d}/fill bs=4k 2>/dev/null; true) && "
              f"{sys.executable} -c \"import json,sys; print(json.dumps({{'x': 'y' * 300000}}))\" > /dev/null && "
              f"{sys.executable} -m roomprobe check --only interfaces --history-db {d}/h.sqlite3 "
              f"--note {'n' * 100000}; echo RC=$?; "
              f"{sys.executable} -m roomprobe history --history-db {d}/h.sqlite3 --format json")
    out = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True,
                         timeout=90, env={**os.environ, "ROOMPROBE_CONFIG": os.devnull})
    assert "RC=0" in out.stdout, out
    assert "is full" in out.stderr and "unusable" not in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    data = json.loads(out.stdout.split("RC=0", 1)[1])
    assert len(data["runs"]) == 1


def keyed(status: str, room: str, probes: tuple[str, ...], *ids: str) -> dict:
    r = rep(status, *ids)
    r["targets"] = {"room": room, "controller": None, "role": "controller", "port": 9090}
    r["probes"] = [{"id": p} for p in probes]
    return r


def test_state_is_keyed_by_target_and_probe_set(tmp_path):
    """Two rooms alternating, or a partial run, never become each other's "previous" state."""
    conn = history.connect(tmp_path / "h.sqlite3")
    full = ("controller-port", "interfaces", "subnet")
    a_bad = keyed("fail", "198.51.100.20", full, "port-refused")
    b_ok = keyed("pass", "198.51.100.21", full)
    a_partial = keyed("pass", "198.51.100.20", ("interfaces",))
    for r in (a_bad, b_ok, a_partial):
        _record(conn, r, 2 if r["status"] == "fail" else 0)
    last_a = history.last_run(conn, key=_run_key(a_bad))
    assert last_a["status"] == "fail"  # not room B's pass, not the --only interfaces pass
    assert history.last_run(conn, key=_run_key(b_ok))["status"] == "pass"
    assert history.last_run(conn, key=_run_key(keyed("pass", "198.51.100.99", full))) is None
    # "what changed": the partial run clears nothing of room A's full runs.
    _record(conn, keyed("fail", "198.51.100.20", full, "port-refused"), 2)
    _record(conn, a_partial, 0)
    ch = history.changes(conn)
    assert ch["cleared"] == [] and ch["new"] == []


def test_an_old_database_gains_the_key_columns(tmp_path):
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(history._SCHEMA)
    old.execute("INSERT INTO runs (ts, started_at, status, complete, exit_code, duration_s, findings, "
                "report) VALUES (?, 'x', 'pass', 1, 0, 1.0, '[]', '{}')", (time.time(),))
    old.commit()
    old.close()
    conn = history.connect(path)
    _record(conn, keyed("pass", "198.51.100.20", ("interfaces",)), 0)
    assert [r["status"] for r in history.runs(conn)] == ["pass", "pass"]
    assert len(history.runs(conn, key=_run_key(keyed("pass", "198.51.100.20", ("interfaces",))))) == 1


def test_an_old_database_opened_read_only_still_shows_changes(tmp_path):
    """'roomprobe history' opens read-only (no migration): an older database without the key
    columns is compared as one target, not refused or crashed on."""
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(history._SCHEMA)
    for status, findings in (("pass", "[]"), ("fail", '[{"id": "port-refused", "severity": "fail", '
                                                      '"probe": "controller-port"}]')):
        old.execute("INSERT INTO runs (ts, started_at, status, complete, exit_code, duration_s, findings, "
                    "report) VALUES (?, 'x', ?, 1, 0, 1.0, ?, '{}')", (time.time(), status, findings))
    old.commit()
    old.close()
    conn = history.connect_readonly(path)
    ch = history.changes(conn)
    assert [f["id"] for f in ch["new"]] == ["port-refused"] and ch["baseline"]["status"] == "pass"
    assert "target" not in {r[1] for r in conn.execute("PRAGMA table_info(runs)")}  # untouched


# ---- issue 21: rows without "probe", and flipped bytes in a text column ------------------------

def test_findings_without_probe_are_read_not_an_internal_error(tmp_path):
    """Rows written by an older version or another program may lack "probe": 'history' crashed
    with KeyError: 'probe' (an internal error) when such a finding was new."""
    db = tmp_path / "h.sqlite3"
    _db_with_runs(db)
    conn = sqlite3.connect(db)
    conn.execute("""UPDATE runs SET findings = '[{"id": "port-refused", "severity": "fail"}]'
                    WHERE id = 2""")
    conn.commit()
    conn.close()
    out = hist_cli("--history-db", str(db))
    assert out.returncode == 0 and out.stderr == "", out
    assert "+ port-refused (fail, )" in out.stdout, out.stdout
    out = hist_cli("--history-db", str(db), "--format", "json")
    assert out.returncode == 0 and json.loads(out.stdout)["changes"]["new"][0]["probe"] == ""


def _flip_text(db: Path) -> None:
    """Bytes that are no UTF-8 inside a TEXT column, as a flipped bit on disk leaves them."""
    conn = sqlite3.connect(db)
    conn.execute("UPDATE runs SET status = CAST(x'70ff61737300' AS TEXT) WHERE id = 2")  # the last
    conn.commit()
    conn.close()


def test_flipped_bytes_are_damage_on_read_and_set_aside_on_the_next_write(tmp_path):
    db = tmp_path / "h.sqlite3"
    env = {**os.environ, "ROOMPROBE_CONFIG": os.devnull, "NO_COLOR": "1"}
    check = [sys.executable, "-m", "roomprobe", "check", "--only", "interfaces", "--history-db", str(db)]
    for _ in range(2):  # two runs of this very check: the next one reads the last of them
        assert subprocess.run(check, capture_output=True, timeout=60, env=env).returncode in (0, 1, 2)
    _flip_text(db)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = db.read_bytes()
    out = hist_cli("--history-db", str(db))
    assert out.returncode == 3 and "Traceback" not in out.stderr, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "is damaged" in lines[0], out.stderr
    # the next check records its run in a new database and keeps the damaged one whole beside it
    out = subprocess.run(check, capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode in (0, 1, 2) and "Traceback" not in out.stderr, out
    warn = [ln for ln in out.stderr.splitlines() if "history" in ln]
    assert len(warn) == 1 and "is damaged" in warn[0] and "kept as" in warn[0], out.stderr
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("h.sqlite3.damaged-")
             and not p.name.endswith(("-wal", "-shm"))]
    assert len(aside) == 1 and aside[0].read_bytes()[:100] == before[:100]
    conn = sqlite3.connect(aside[0])
    assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 2  # nothing lost
    conn.close()
    assert [r["id"] for r in history.runs(history.connect(db))] == [1]  # this run, recorded
    out = hist_cli("--history-db", str(db))
    assert out.returncode == 0, out


def test_a_file_that_is_no_database_is_never_moved(tmp_path):
    """--history-db pointing at some other file by mistake: refused, never renamed."""
    db = tmp_path / "notes.txt"
    db.write_bytes(b"my notes, not sqlite\n" * 50)
    env = {**os.environ, "ROOMPROBE_CONFIG": os.devnull, "NO_COLOR": "1"}
    out = subprocess.run([sys.executable, "-m", "roomprobe", "check", "--only", "interfaces",
                          "--history-db", str(db)], capture_output=True, text=True, timeout=60, env=env)
    assert "Traceback" not in out.stderr and db.read_bytes().startswith(b"my notes"), out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
