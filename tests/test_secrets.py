"""Secrets never leave roomprobe: not in text, JSON, markdown, HTML, the history database, the
webhook payload, nor in a proxy's echo of our own request. Each test fails if any secret below
appears in any output."""

from __future__ import annotations

import base64
import json
import socket
import sqlite3
import threading

import pytest

from roomprobe.core.redact import redact, redact_text, redact_url
from tests.test_fleet import Receiver, cli

PASSWORDS = ["Pa@ssW0rdZ", "pa/ss#Wd9", "x?y@Qz7"]
TOKEN = "T0kenSecret99"
B64 = base64.b64encode(b"alice:Pa@ssW0rdZ").decode()
SECRETS = ["ssW0rdZ", "ss#Wd9", "Wd9", "y@Qz7", "Qz7", TOKEN, B64, B64[:12]]
HOSTILE = (f"proxy http://alice:{PASSWORDS[0]}@proxy.lab:3128 then http://bob:{PASSWORDS[1]}"
           f"@proxy.lab:3128 and carol:{PASSWORDS[2]}@10.0.0.1:8080; PAC "
           f"http://pac.lab/proxy.pac?token={TOKEN}&v=2 (see https://pac.lab/p.pac?{TOKEN}); "
           f"echo Proxy-Authorization: Basic {B64}; ValueError: Port could not be cast to "
           f"integer value as 'ssW0rdZ'")


def leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


@pytest.mark.parametrize("url, want", [
    ("http://u:Pa@ssW0rdZ@host:3128", "http://***:***@host:3128"),
    ("http://u:pa/ss#Wd9@host:3128/x", "http://***:***@host:3128/x"),
    ("http://u:x?y@Qz7@host:3128", "http://***:***@host:3128"),
    ("https://pac.lab/p.pac?token=T0kenSecret99&v=2", "https://pac.lab/p.pac?token=***&v=***"),
    ("https://pac.lab/p.pac#access_token=T0kenSecret99", "https://pac.lab/p.pac#access_token=***"),
    ("http://proxy:3128", "http://proxy:3128"),
    ("https://docs.lab/x.md#pass-rules", "https://docs.lab/x.md#pass-rules"),
])
def test_redact_url(url, want):
    assert redact_url(url) == want
    assert redact_text(f"see ({url}).") == f"see ({want})."


def test_redact_text_catches_every_form():
    out = redact_text(HOSTILE)
    assert not leaks(out), out
    assert "proxy.lab:3128" in out and "pac.lab/proxy.pac?token=***" in out  # still readable


def test_redact_structures_and_the_safe_url_of_evidence():
    from roomprobe.proxy.sources import safe_url

    data = {"proxies": {"https": f"http://alice:{PASSWORDS[1]}@proxy.lab:3128"},
            "pac_url": f"http://pac.lab/p.pac?token={TOKEN}", "nested": [[HOSTILE]]}
    assert not leaks(json.dumps(redact(data)))
    assert safe_url(f"http://alice:{PASSWORDS[0]}@proxy.lab:3128") == "http://proxy.lab:3128"
    assert safe_url(f"http://bob:{PASSWORDS[1]}@proxy.lab:3128") == "http://proxy.lab:3128"
    assert safe_url(f"http://pac.lab/p.pac?token={TOKEN}") == "http://pac.lab/p.pac?token=***"


def test_no_secret_in_any_output_of_a_real_check(tmp_path):
    """Through the real CLI (loopback only): text and JSON output, the JSON file, history, the
    webhook payload, and 'report' in text, markdown and html."""
    rx = Receiver()
    try:
        js, db = tmp_path / "r.json", tmp_path / "h.sqlite3"
        outs = []
        for fmt in ("text", "json"):
            out = cli("check", "--only", "interfaces", "--note", HOSTILE, "--room-name", HOSTILE,
                      "--format", fmt, "--json", str(js), "--history-db", str(db), "--webhook",
                      rx.url, "-v")
            assert out.returncode in (0, 1, 2), out
            outs += [out.stdout, out.stderr]
        assert HOSTILE not in js.read_text() and "proxy.lab:3128" in js.read_text()
        outs.append(js.read_text())
        for fmt in ("text", "markdown", "html"):
            out = cli("report", str(js), "--format", fmt, *(["-v"] if fmt == "text" else []))
            assert out.returncode == 0, out
            outs.append(out.stdout)
        conn = sqlite3.connect(db)
        outs += [json.dumps(row) for row in conn.execute("SELECT * FROM runs")]
        conn.close()
        assert rx.posts, "the webhook was not called"
        outs.append(json.dumps(rx.posts))
        found = {s for text in outs for s in leaks(text)}
        assert not found, found
    finally:
        rx.close()


def test_report_file_with_secrets_is_redacted_when_rendered(tmp_path):
    """A report written by an older version (or edited) may hold a password: rendering it for a
    ticket must not print it."""
    js = tmp_path / "r.json"
    out = cli("check", "--only", "interfaces", "--json", str(js), "--no-history")
    assert out.returncode in (0, 1, 2), out
    rep = json.loads(js.read_text())
    rep["note"] = HOSTILE
    rep["probes"][0]["summary"] = HOSTILE
    js.write_text(json.dumps(rep))
    for fmt in ("text", "markdown", "html"):
        out = cli("report", str(js), "--format", fmt)
        assert out.returncode == 0 and not leaks(out.stdout), (fmt, leaks(out.stdout))


def test_a_proxy_that_echoes_proxy_authorization_leaves_no_credentials():
    """A loopback 'proxy' answering CONNECT with our own request echoed into its status line."""
    from roomprobe.proxy.sources.checks import probe_proxy

    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)
    port = lsock.getsockname()[1]

    def serve() -> None:
        conn, _ = lsock.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            echo = data.replace(b"\r\n", b" ").strip()
            conn.sendall(b"HTTP/1.1 407 you sent: " + echo + b"\r\n" + data + b"\r\n")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        out = probe_proxy(f"http://alice:{PASSWORDS[0]}@127.0.0.1:{port}", "zoom.us:443", 5.0)
    finally:
        t.join(5)
        lsock.close()
    assert out["connect"] == "auth-required" and out["status_code"] == 407, out
    assert out["credentials_sent"] is True
    text = json.dumps(out)
    assert not leaks(text) and B64 not in text, text


# ---- issue 21: a raw password with @ and then / or # leaked everywhere ---------------------------

RAW_PW_PROXY = "http://alice:Pr0xy@Pass/w0rd#Frag@127.0.0.1:{port}"
RAW_PW_PARTS = ["Pr0xy", "Pass/w0rd", "w0rd", "#Frag", "Frag@"]
# every target the proxy probe would reach is on loopback: nothing leaves the machine
LOOPBACK_ONLY = ["--set", "proxy.os_sources=false", "--set", "proxy.wpad=off",
                 "--set", "proxy.targets=https://127.0.0.1:9/",
                 "--set", "proxy.connect_target=127.0.0.1:9", "--set", "proxy.tls_host=127.0.0.1",
                 "--set", "proxy.tls_port=9"]


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _check_env(proxy: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update({"ROOMPROBE_CONFIG": os.devnull, "NO_COLOR": "1", "https_proxy": proxy})
    return env


def test_a_raw_proxy_password_with_at_slash_hash_is_in_no_output(tmp_path):
    """``http://alice:Pr0xy@Pass/w0rd#Frag@127.0.0.1:PORT`` in https_proxy: urlsplit ended the
    authority at the first /, so ``Pass/w0rd#Frag@...`` showed in the JSON, -v text, every
    report format, the history database, the webhook payload and the outbox. The proxy is read
    as curl reads it (the last @), at a closed loopback port."""
    import subprocess
    import sys

    proxy = RAW_PW_PROXY.format(port=_closed_port())
    rx = Receiver([503] * 50)  # never delivered: the payload stays in the outbox too
    js, db = tmp_path / "r.json", tmp_path / "h.sqlite3"
    outs: dict[str, str] = {}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "roomprobe", *args], capture_output=True,
                              text=True, timeout=120, env=_check_env(proxy))

    try:
        base = ["check", "--only", "proxy", *LOOPBACK_ONLY, "--timeout", "3"]
        out = run(*base, "--format", "json", "--json", str(js), "--history-db", str(db),
                  "--webhook", rx.url)
        assert out.returncode in (0, 1, 2), out
        outs["json"], outs["json-stderr"] = out.stdout, out.stderr
        assert "127.0.0.1" in out.stdout  # the proxy is named, by its real host
        out = run(*base, "-v", "--no-history")
        outs["-v text"] = out.stdout + out.stderr
        out = run(*base, "--format", "nagios", "--no-history")
        outs["nagios"] = out.stdout + out.stderr
        for fmt in ("text", "markdown", "html"):
            out = run("report", str(js), "--format", fmt, *(["-v"] if fmt == "text" else []))
            assert out.returncode == 0, out
            outs[f"report {fmt}"] = out.stdout
        outs["history db"] = db.read_bytes().decode("latin-1")
        outs["webhook"] = json.dumps(rx.posts)
        assert rx.posts, "the webhook was not called"
        outbox = tmp_path / "webhook-outbox.json"
        assert outbox.exists(), "the undelivered payload should wait in the outbox"
        outs["outbox"] = outbox.read_text()
    finally:
        rx.close()
    found = {where: [p for p in RAW_PW_PARTS if p in text] for where, text in outs.items()}
    assert not any(found.values()), found


def test_one_proxy_url_parser_reads_the_last_at_as_curl_does():
    from roomprobe.core.proxyurl import ProxyURLError, parse_proxy_url
    from roomprobe.peer.speed import redact_proxy
    from roomprobe.proxy.sources import proxy_problem, safe_url
    from roomprobe.proxy.sources.checks import split_proxy

    raw = RAW_PW_PROXY.format(port=3128)
    p = parse_proxy_url(raw)
    assert (p.scheme, p.host, p.port, p.username, p.password) == (
        "http", "127.0.0.1", 3128, "alice", "Pr0xy@Pass/w0rd#Frag")
    assert parse_proxy_url(p.canonical()) == p
    assert split_proxy(raw) == ("http", "127.0.0.1", 3128, "alice:Pr0xy@Pass/w0rd#Frag")
    assert proxy_problem(raw) is None
    for shown in (safe_url(raw), redact_proxy(raw), redact_text(f"via {raw}: refused"), p.shown()):
        assert not [s for s in RAW_PW_PARTS if s in shown], shown
        assert "127.0.0.1:3128" in shown
    assert parse_proxy_url("[::1]:8080").host == "::1"
    assert parse_proxy_url("proxy.lab").port is None
    for bad, why in [("http://a:b@host:99999", "port"), ("http://" + "x" * 64 + ":1", "label"),
                     ("http://::1:8080", "brackets"), ("http://u:p@:8080", "no host")]:
        with pytest.raises(ProxyURLError, match=why) as exc:
            parse_proxy_url(bad)
        assert "u:p" not in str(exc.value) and "x" * 64 not in str(exc.value)
