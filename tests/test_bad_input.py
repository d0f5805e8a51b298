"""The repros of issue 13's "Bad input" list, each one line and the right exit code, never a
traceback; and the pieces that make it structural (bounded reader, guarded threads)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from roomprobe.core.errors import UsageError


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    base.update({"ROOMPROBE_CONFIG": os.devnull, "NO_COLOR": "1", **(env or {})})
    return subprocess.run([sys.executable, "-m", "roomprobe", *args], capture_output=True, text=True,
                          timeout=60, env=base)


def test_no_arguments_prints_the_help_and_exits_0():
    out = cli()
    assert out.returncode == 0 and out.stdout.startswith("Usage: roomprobe") and out.stderr == ""
    assert "Commands:" in out.stdout


@pytest.mark.parametrize("args, words", [
    (["explain", "²"], "unknown error code '²'"),
    (["explain", "zoom-rooms:²"], "unknown error code"),
    (["explain", "9" * 5000], "unknown error code"),
    (["check", "--only", "interfaces", "--code", "²"], "no such Zoom error code"),
    (["check", "--only", "interfaces", "--peer", "1.2.3.4:²"], "PORT a number from 1 to 65535"),
    (["check", "--only", "interfaces", "--controller", "é" * 60], "is not a valid host name"),
    (["check", "--only", "interfaces", "--controller", "a\x01b"], "is not an IP address or host"),
    (["report", "bad\rname\n.json"], "cannot read report file bad\\rname\\n.json"),
    # issue 21: one validator for IPv6 scopes (check's targets, --peer, serve --bind, the agent)
    (["check", "--only", "interfaces", "--controller", "fe80::1%;id|x"], "IPv6 scope after %"),
    (["check", "--only", "interfaces", "--room", "[fe80::1%$(id)]"], "IPv6 scope after %"),
    (["check", "--only", "interfaces", "--peer", "[fe80::1%a|b]:9095"], "IPv6 scope after %"),
    (["serve", "--bind", "fe80::1%;id", "--duration", "1"], "IPv6 scope after %"),
])
def test_bad_values_are_one_line_exit_3(args, words):
    out = cli(*args)
    assert out.returncode == 3 and "Traceback" not in out.stderr, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], out.stderr
    assert "internal error" not in out.stderr


def test_a_bad_proxy_value_in_the_webhook_thread_is_no_traceback(tmp_path):
    """ALL_PROXY=$'\\xc2\\x97': the webhook thread used to die with a traceback on stderr."""
    out = cli("check", "--only", "interfaces", "--history-db", str(tmp_path / "h.sqlite3"),
              "--webhook", "http://127.0.0.1:9/h", env={"ALL_PROXY": "\x97"})
    assert out.returncode in (0, 1, 2) and "Traceback" not in out.stderr, out
    assert out.stderr.startswith("roomprobe: warning: webhook not delivered"), out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_guarded_thread_keeps_the_exception_and_prints_nothing(capfd):
    from roomprobe.core.threads import start_guarded

    def boom(x: int) -> int:
        raise UnicodeError(f"bad {x}")

    t = start_guarded(boom, "t", 5)
    t.join(5)
    assert isinstance(t.error, UnicodeError) and t.result is None and t.daemon
    ok = start_guarded(lambda a, b=1: a + b, "ok", 2, b=3)
    ok.join(5)
    assert ok.result == 5 and ok.error is None
    assert capfd.readouterr().err == ""


def test_no_bare_threads_outside_the_probes():
    """Every background thread in roomprobe/ goes through core/threads.py (probes/ and the
    runner belong to the lead's rewrite; speed.py's measurement threads report through their
    own result boxes)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "roomprobe"
    allowed = {"core/threads.py", "core/runner.py", "net/speed.py", "commands/check.py"}
    bare = [str(p.relative_to(root)) for p in root.rglob("*.py")
            if str(p.relative_to(root)) not in allowed
            and re.search(r"threading\.Thread\(", p.read_text(encoding="utf-8"))]
    assert bare == [], bare


def test_bounded_reader(tmp_path):
    from roomprobe.core import fsutil

    f = tmp_path / "f"
    f.write_bytes(b"x" * 100)
    assert fsutil.read_bounded(f, 100, "test file") == b"x" * 100
    with pytest.raises(UsageError, match="larger than"):
        fsutil.read_bounded(f, 99, "test file")
    with pytest.raises(UsageError, match="cannot read test file"):
        fsutil.read_bounded(tmp_path / "missing", 10, "test file")
    with pytest.raises(UsageError, match="cannot read test file"):
        fsutil.read_bounded(tmp_path, 10, "test file")
    t0 = time.monotonic()
    with pytest.raises(UsageError, match="larger than"):
        fsutil.read_bounded("/dev/zero", 1 << 20, "test file")
    assert time.monotonic() - t0 < 5
    assert fsutil.json_depth('{"a": "[[[[", "b": [[1]]}') == 3
    assert fsutil.data_depth({"a": [[{"b": []}]]}) == 5
    with pytest.raises(UsageError, match="nested more than"):
        fsutil.loads_toml_bounded(("a = " + "[" * 100 + "]" * 100).encode(), "x.toml")
    with pytest.raises(UsageError, match="not valid TOML"):
        fsutil.loads_toml_bounded(("a = " + "[" * 5000 + "]" * 5000).encode(), "x.toml")


def test_pac_file_from_a_path_is_bounded(tmp_path):
    """proxy.pac_url=/dev/zero used to be read forever; now it is a PAC error at once, and a
    regular file past the size cap is refused, not read whole."""
    from roomprobe.net.proxysrc import pac

    t0 = time.monotonic()
    with pytest.raises(pac.PacError, match="not a regular file"):
        pac.fetch("/dev/zero", 2.0)
    with pytest.raises(pac.PacError, match="not a regular file"):
        pac.fetch("file:///dev/zero", 2.0)
    huge = tmp_path / "huge.pac"
    with open(huge, "wb") as f:  # sparse: costs no disk
        f.truncate(pac.MAX_PAC_BYTES + 1)
    with pytest.raises(pac.PacError, match="larger than"):
        pac.fetch(str(huge), 2.0)
    assert time.monotonic() - t0 < 5
