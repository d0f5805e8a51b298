"""Property-based bad input (hypothesis) over the CLI, the config reader, the report reader and
the history reader: whatever the input, no traceback, no "internal error", exit code 0..3.

Only commands that send no packets run here: explain, codes, report FILE, history and
``check --only interfaces`` (no --controller/--room names, no --peer, no --webhook: a fuzzed
value must never become a lookup or a packet to a real host). Runs in-process (a subprocess per
example would take minutes); the budget is kept under a minute in total.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roomprobe.cli import main

FUZZ = settings(max_examples=int(os.environ.get("ROOMPROBE_FUZZ_EXAMPLES", "80")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
TMP = Path(tempfile.mkdtemp(prefix="roomprobe-fuzz-"))
# Keys that would turn on a probe that talks to the network: never fuzzed into a config file.
NETWORK_KEYS = {"peer", "peer_token", "webhook", "controller", "room", "only", "skip", "bandwidth"}


@pytest.fixture(autouse=True, scope="module")
def quiet_env():
    saved = dict(os.environ)
    for k in list(os.environ):
        if k.lower().endswith("_proxy"):
            del os.environ[k]
    os.environ.update({"ROOMPROBE_CONFIG": os.devnull, "NO_COLOR": "1",
                       "ROOMPROBE_HISTORY_DB": str(TMP / "default-history.sqlite3")})
    os.environ.pop("ROOMPROBE_DEBUG", None)
    yield
    os.environ.clear()
    os.environ.update(saved)


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code: object = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code
    return (code if isinstance(code, int) else 1 if code else 0), out.getvalue(), err.getvalue()


def assert_clean(argv: list[str]) -> tuple[int, str, str]:
    code, out, err = run(argv)
    assert 0 <= code <= 3, (argv, code, err)
    assert "Traceback" not in err and "Traceback" not in out, (argv, err)
    assert "internal error" not in err, (argv, err)
    if code == 3 and err:
        assert len(err.strip().splitlines()) <= 2, (argv, err)  # a warning line + the error at most
    return code, out, err


text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=40)
number = st.one_of(st.integers(-10**25, 10**25).map(str), st.floats(allow_nan=True).map(str), text)


@FUZZ
@given(st.one_of(
    st.tuples(st.just("explain"), text),
    st.tuples(st.just("explain"), text, st.just("--format"), st.sampled_from(["json", "text", "x"])),
    st.tuples(st.just("codes"), st.just("--search"), text),
    st.tuples(st.just("codes"), st.just("--product"), text),
    st.tuples(st.just("history"), st.just("--limit"), number),
    st.tuples(st.just("history"), st.just("--since"), text),
    st.tuples(st.just("serve"), st.just("--bind"), text, st.just("--duration"), st.just("0")),
    st.tuples(text),
    st.tuples(st.just("report"), text),
))
def test_commands_with_random_arguments(argv):
    assert_clean(list(argv))


check_flag = st.one_of(
    st.tuples(st.just("--set"), st.builds(lambda p, k, v: f"{p}.{k}={v}",
              st.sampled_from(["interfaces", "dns", "cloud", "proxy", "subnet", "bandwidth",
                               "controller-port", "nope", ""]),
              st.one_of(st.sampled_from(["timeout", "slow_ms", "media_hosts", "pac_url", "port",
                                         "names", "resolvers", "stun_hosts", "duration"]), text),
              st.one_of(number, text))),
    st.tuples(st.just("--set"), text),
    st.tuples(st.just("--timeout"), number),
    st.tuples(st.just("--port"), number),
    st.tuples(st.just("--code"), text),
    st.tuples(st.just("--note"), text),
    st.tuples(st.just("--room-name"), text),
    st.tuples(st.just("--format"), st.sampled_from(["text", "json", "xml"])),
    st.tuples(st.just("--controller"), st.sampled_from(["127.0.0.1", "::1", "127.0.0.99", "1.2.3",
                                                        "127.0.0.1:9090", "[::1]", "300.1.1.1"])),
)


@FUZZ
@given(st.lists(check_flag, max_size=4))
def test_check_interfaces_with_random_flags(flags):
    argv = ["check", "--only", "interfaces", "--no-history"] + [x for f in flags for x in f]
    assert_clean(argv)


toml_value = st.recursive(
    st.one_of(st.integers(-10**20, 10**20), st.floats(allow_nan=False), st.booleans(), text),
    lambda inner: st.lists(inner, max_size=3), max_leaves=8)
toml_key = st.one_of(st.sampled_from(["timeout", "port", "format", "history", "history_db",
                                      "room_name", "note", "code", "slow_ms", "enabled"]),
                     st.from_regex(r"[a-z_]{1,12}", fullmatch=True)).filter(
                         lambda k: k not in NETWORK_KEYS)


def toml_doc(check: dict, probes: dict) -> str:
    def val(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        if isinstance(v, float) and v in (float("inf"), float("-inf")):
            return "inf" if v > 0 else "-inf"
        return repr(v)

    lines = ["[check]"] + [f"{k} = {val(v)}" for k, v in check.items()]
    for pid, opts in probes.items():
        lines.append(f"[probes.{pid}]")
        lines += [f"{k} = {val(v)}" for k, v in opts.items()]
    return "\n".join(lines) + "\n"


# Config files: TOML-shaped documents (known and unknown probes), random text, deep nesting.
CONFIG_DOCS = st.one_of(
    st.builds(toml_doc, st.dictionaries(toml_key, toml_value, max_size=4),
              st.dictionaries(st.sampled_from(["interfaces", "dns", "cloud", "nope"]),
                              st.dictionaries(toml_key, toml_value, max_size=3), max_size=2)),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.integers(1, 3000).map(lambda n: "[check]\na = " + "[" * n + "]" * n),
)


@FUZZ
@given(CONFIG_DOCS)
def test_check_with_random_config_files(doc):
    path = TMP / "config.toml"
    path.write_text(doc, encoding="utf-8", errors="surrogateescape")
    assert_clean(["check", "--only", "interfaces", "--no-history", "--config", str(path)])


@FUZZ
@given(CONFIG_DOCS)
def test_config_reader(doc):
    """The typed config reader (core/settings.py, the one 'check' uses): a UsageError or a
    ConfigFile, nothing else, for any text, deep nesting included."""
    from roomprobe.core import settings
    from roomprobe.core.errors import UsageError

    path = TMP / "config2.toml"
    path.write_text(doc, encoding="utf-8", errors="surrogateescape")
    with contextlib.suppress(UsageError):
        settings.load(path)


json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), text),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(text, inner, max_size=3)), max_leaves=12)


def _saved_report() -> dict:
    path = TMP / "base.json"
    if not path.exists():
        code, _, err = run(["check", "--only", "interfaces", "--no-history", "--json", str(path),
                            "--format", "json"])
        assert code in (0, 1, 2), err
    return json.loads(path.read_text())


@FUZZ
@given(st.one_of(
    json_value.map(json.dumps),
    st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
    st.integers(1, 5000).map(lambda n: "[" * n + "]" * n),
    st.tuples(st.sampled_from(["status", "host", "probes", "findings", "targets", "window",
                               "timezone", "zoom_rooms_app", "note", "started_at", "duration_s"]),
              json_value).map(lambda kv: json.dumps({**_saved_report(), kv[0]: kv[1]})),
), st.sampled_from(["text", "markdown", "html"]))
def test_report_reader(doc, fmt):
    path = TMP / "report.json"
    path.write_text(doc, encoding="utf-8", errors="surrogateescape")
    assert_clean(["report", str(path), "--format", fmt, "-v"] if fmt == "text"
                 else ["report", str(path), "--format", fmt])


sql_value = st.one_of(st.none(), st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=False),
                      text, st.binary(max_size=8), json_value.map(json.dumps))


@FUZZ
@given(st.lists(st.tuples(*[sql_value] * 8), min_size=1, max_size=4),
       st.sampled_from(["text", "json"]))
def test_history_reader(rows, fmt):
    path = TMP / "fuzz-history.sqlite3"
    for p in TMP.glob("fuzz-history.sqlite3*"):
        p.unlink()
    from roomprobe.fleet import history

    history.connect(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA ignore_check_constraints = 1")
    for r in rows:
        with contextlib.suppress(sqlite3.Error):  # NOT NULL refuses some rows: fine
            conn.execute("INSERT INTO runs (ts, started_at, status, complete, exit_code, duration_s, "
                         "findings, report) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", r)
    conn.commit()
    conn.close()
    assert_clean(["history", "--history-db", str(path), "--format", fmt])
