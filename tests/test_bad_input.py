"""The repros of issue 13's "Bad input" list, each one line and the right exit code, never a
traceback; and the pieces that make it structural (bounded reader, guarded threads)."""

from __future__ import annotations

import contextlib
import os
import shutil
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
    """Every background thread in roomprobe/ goes through core/threads.py (speed.py's
    measurement threads report through their own result boxes, started together at t0)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "roomprobe"
    allowed = {"core/threads.py", "peer/speed.py"}
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
    with pytest.raises(UsageError, match="character device, not a regular file"):  # never read
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
    from roomprobe.proxy.sources import pac

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


# ---- issue 21 section 7: every file we read may be a FIFO; a blocking open never returned ----

def _fifo(path) -> str:
    os.mkfifo(path)
    return str(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are a POSIX file type")
@pytest.mark.parametrize("make_args", [
    lambda d: ["check", "--only", "interfaces", "--no-history", "--config", _fifo(d / "c.toml")],
    lambda d: ["sweep", _fifo(d / "rooms.csv")],
    lambda d: ["report", _fifo(d / "r.json")],
])
def test_a_fifo_given_as_a_file_is_refused_not_waited_on(tmp_path, make_args):
    """A plain open() of a FIFO blocks until a writer comes: the CLI hung forever. The subprocess
    timeout turns a hang into a failure instead of a stuck test run."""
    args = make_args(tmp_path)
    try:
        out = cli(*args)
    except subprocess.TimeoutExpired:
        pytest.fail(f"roomprobe {' '.join(args[:1])} hung on a FIFO")
    assert out.returncode == 3, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a regular file" in lines[0], out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are a POSIX file type")
def test_a_fifo_as_the_webhook_outbox_does_not_hang_the_check(tmp_path):
    db = tmp_path / "h.db"
    _fifo(tmp_path / "webhook-outbox.json")
    try:
        out = cli("check", "--only", "interfaces", "--history-db", str(db),
                  "--webhook", "http://127.0.0.1:9/hook", "--format", "json")
    except subprocess.TimeoutExpired:
        pytest.fail("the check hung on a FIFO in place of the webhook outbox")
    assert out.returncode in (0, 1, 2), out
    assert "Traceback" not in out.stderr and "not a file" in out.stderr, out.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are a POSIX file type")
def test_the_bounded_reader_refuses_a_fifo_at_once(tmp_path):
    import threading

    from roomprobe.core import fsutil

    fifo = _fifo(tmp_path / "p")
    done = threading.Event()

    def rescue() -> None:
        """If the reader blocked in open() (the old code), a writer comes and goes, so the test
        fails instead of hanging; with no reader blocked, opening for writing fails (ENXIO)."""
        if not done.wait(5):
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    t = threading.Thread(target=rescue, daemon=True)
    t.start()
    try:
        with pytest.raises(UsageError, match="named pipe, not a regular file"):
            fsutil.read_bounded(fifo, 100, "test file")
    finally:
        done.set()
        t.join()
    assert fsutil.read_bounded(os.devnull, 100, "test file") == b""  # "no config" still works


@pytest.mark.parametrize("url", ["ftp://x/SECRETPATH", "https:///SECRETPATH?k=SECRETPATH",
                                 "http://[SECRETPATH/x", "SECRETPATH"])
def test_a_bad_webhook_url_is_not_echoed(url):
    """The error quoted the whole URL, and a webhook URL's path is its secret."""
    out = cli("check", "--only", "interfaces", "--no-history", "--webhook", url)
    assert out.returncode == 3, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "give an http:// or https:// URL" in lines[0], out.stderr
    assert "SECRETPATH" not in out.stderr + out.stdout


# ---- issue 21: probe crashes on bad values, now refused up front or a finding naming them ------

LONG_LABEL = "x" * 64
# every target the proxy probe would reach is on loopback: nothing leaves the machine
PROXY_LOOPBACK = ["--set", "proxy.os_sources=false", "--set", "proxy.wpad=off",
                  "--set", "proxy.targets=https://127.0.0.1:9/",
                  "--set", "proxy.connect_target=127.0.0.1:9", "--set", "proxy.tls_host=127.0.0.1",
                  "--set", "proxy.tls_port=9", "--timeout", "3", "--no-history", "--format", "json"]


def _proxy_probe(out: subprocess.CompletedProcess) -> dict:
    """The proxy probe's result, with its findings (they live at the report's top level)."""
    import json

    assert "Traceback" not in out.stderr, out.stderr
    report = json.loads(out.stdout)
    probe = next(p for p in report["probes"] if p["id"] == "proxy")
    return {**probe, "findings": [f for f in report["findings"] if f.get("probe") == "proxy"]}


def test_a_proxy_host_label_over_63_characters_in_the_environment_is_a_finding():
    """socket.connect raised UnicodeError (IDNA: label too long): the probe crashed (exit 3)."""
    out = cli("check", "--only", "proxy", *PROXY_LOOPBACK,
              env={"https_proxy": f"http://{LONG_LABEL}:1"})
    probe = _proxy_probe(out)
    assert out.returncode in (1, 2) and probe["status"] != "error", probe["summary"]
    bad = [f for f in probe["findings"] if f["id"] == "proxy-bad-setting"]
    assert bad and "https_proxy" in bad[0]["message"] and "63" in bad[0]["message"], probe["findings"]


def test_a_pac_answer_with_a_host_label_over_63_characters_is_a_finding(tmp_path):
    pac = tmp_path / "long.pac"
    pac.write_text("function FindProxyForURL(url, host) { return \"PROXY " + LONG_LABEL + ':1"; }')
    out = cli("check", "--only", "proxy", *PROXY_LOOPBACK, "--set", f"proxy.pac_url={pac}")
    probe = _proxy_probe(out)
    assert out.returncode in (0, 1, 2) and probe["status"] != "error", probe["summary"]
    bad = [f for f in probe["findings"] if f["id"] == "proxy-pac-error"]
    assert bad and LONG_LABEL in bad[0]["message"] and bad[0]["severity"] == "warn", probe["findings"]


@pytest.mark.parametrize("args, words", [
    (["--peer", "127.0.0.1:9", "--peer-token", "é€token"], "--peer-token must be the token"),
    (["--peer", "127.0.0.1\x01:9"], "control characters"),
    (["--peer", "127.0.0.1\udcff"], "not UTF-8"),
    (["--peer", f"{LONG_LABEL}.lab:9"], "longer than 63"),
    (["--set", "proxy.ca_file=/nonexistent/ca.pem"], "proxy.ca_file"),
    (["--set", "cloud.ca_file=/"], "not a regular file"),
])
def test_bad_peer_and_file_values_are_refused_before_any_probe(args, words):
    """Each crashed a probe mid-run (http.client's Latin-1 header, InvalidURL, IDNA, a
    FileNotFoundError in the TLS check); now one line, exit 3, before anything is sent."""
    only = "proxy" if "proxy.ca_file" in " ".join(args) else "cloud" if "cloud." in args[1] else "bandwidth"
    argv = [sys.executable, "-m", "roomprobe", "check", "--only", only, "--no-history", *args]
    # In a network namespace of its own (nothing but a down loopback): code that did NOT refuse
    # the value would run the cloud/proxy probe, and that must not reach the Internet.
    if not (shutil.which("unshare") and hasattr(os, "geteuid") and os.geteuid() == 0):
        pytest.skip("needs root and unshare(1) to keep a failing run off the network")
    argv = ["unshare", "-n", *argv]
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update({"ROOMPROBE_CONFIG": os.devnull, "NO_COLOR": "1"})
    out = subprocess.run([os.fsencode(a) for a in argv], capture_output=True, timeout=60, env=env)
    err = out.stderr.decode("utf-8", "replace")
    assert out.returncode == 3, (out.stdout[-500:], err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in err, err
    assert "€token" not in err  # a token is never echoed
