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
    from roomprobe.net.proxysrc import safe_url

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
    from roomprobe.net.proxysrc.checks import probe_proxy

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
