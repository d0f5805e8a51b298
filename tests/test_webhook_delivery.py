"""Webhooks that arrive: a local receiver (127.0.0.1) that enforces Slack's and Teams' required
fields, checks the HMAC signature and a custom header, and answers 503 for a while. The real
after-run step, outbox file and HTTP client are used; every change must arrive exactly once, in
order, after the receiver recovers."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from reportkit import as_report

from roomprobe.core.settings import CheckSettings
from roomprobe.fleet import after_run, outbox

SECRET = "s3cret-key"


def slack_ok(body: dict) -> str | None:
    if not isinstance(body.get("text"), str) or not body["text"].strip():
        return "no_text"
    for b in body.get("blocks", []):
        if b.get("type") not in ("header", "section", "context", "divider"):
            return "invalid_blocks"
        if b["type"] == "header" and len(b["text"]["text"]) > 150:
            return "invalid_blocks"
    return None


def teams_ok(body: dict) -> str | None:
    if body.get("type") != "message" or not body.get("attachments"):
        return "not a message with attachments"
    a = body["attachments"][0]
    c = a.get("content") or {}
    if a.get("contentType") != "application/vnd.microsoft.card.adaptive" or c.get("type") != "AdaptiveCard":
        return "no adaptive card"
    if not c.get("version") or not isinstance(c.get("body"), list) or not c["body"]:
        return "card without version/body"
    return None


class StrictReceiver:
    def __init__(self, kind: str) -> None:
        self.kind, self.down, self.events, self.refused = kind, False, [], []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                code, reason = 200, "ok"
                stamp = self.headers.get("X-Roomprobe-Timestamp", "")
                want = "sha256=" + hmac.new(SECRET.encode(), stamp.encode() + b"." + raw,
                                            hashlib.sha256).hexdigest()
                if outer.down:
                    code, reason = 503, "down"
                elif self.headers.get("X-Ticket-Token") != "tkt-Qv7zP2":
                    code, reason = 401, "no token"
                elif not hmac.compare_digest(self.headers.get("X-Roomprobe-Signature", ""), want):
                    code, reason = 401, "bad signature"
                else:
                    body = json.loads(raw)
                    problem = (slack_ok if outer.kind == "slack" else teams_ok)(body)
                    if problem:
                        code, reason = 400, problem
                        outer.refused.append(problem)
                    else:
                        outer.events.append((self.headers["X-Roomprobe-Event-Id"], body))
                data = reason.encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook?token=secret-in-query"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def report(status: str, room: str = "198.51.100.20"):  # type: ignore[no-untyped-def]
    findings = [] if status == "pass" else [
        {"id": "port-refused", "severity": "fail", "probe": "controller-port",
         "message": "Nothing listens on TCP 9090 on the room."}]
    return as_report({"schema": "roomprobe/report/v1", "roomprobe_version": "t",
                      "started_at": "2026-11-22T00:00:00Z",
            "duration_s": 0.1, "complete": True, "status": status, "host": {"hostname": "ctl"},
            "targets": {"room": room, "controller": None, "role": "controller", "port": 9090},
            "probes": [{"id": "controller-port", "status": status}], "findings": findings,
            "diagnosis": [{"code": "2002"}] if findings else [], "room_name": "Board room"})


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for k in list(os.environ):
        if k.lower().endswith("_proxy"):
            monkeypatch.delenv(k)


@pytest.mark.parametrize("kind", ["slack", "teams"])
def test_every_change_arrives_exactly_once_after_the_receiver_recovers(tmp_path, kind, capsys):
    rx = StrictReceiver(kind)
    try:
        c = CheckSettings(history_db=str(tmp_path / "h.sqlite3"), webhook=rx.url, webhook_format=kind,
                          webhook_headers=("X-Ticket-Token: tkt-Qv7zP2",), webhook_secret=SECRET)
        box = outbox.path_for(tmp_path / "h.sqlite3")

        def run(status: str) -> None:
            after_run.after_run(report(status), 0 if status == "pass" else 2, c, time.monotonic() + 0.5)

        run("pass")  # first run of this room: announced
        assert len(rx.events) == 1
        rx.down = True
        for status in ("fail", "fail", "pass", "fail"):  # 3 changes while the receiver is down
            run(status)
        assert len(rx.events) == 1
        pending = json.loads(box.read_text())["pending"]
        assert len(pending) == 3 and stat.S_IMODE(box.stat().st_mode) == 0o600
        raw = box.read_text()
        assert "secret-in-query" not in raw and "tkt-Qv7zP2" not in raw and SECRET not in raw
        assert "kept in" in capsys.readouterr().err
        rx.down = False
        run("fail")  # no change itself: delivers the backlog, oldest first
        assert not box.exists()
        ids = [e for e, _ in rx.events]
        assert len(ids) == 4 and len(set(ids)) == 4 and ids[1:] == [p["event_id"] for p in pending]
        texts = [json.dumps(b) for _, b in rx.events]
        assert "CRITICAL" in texts[1] and "was OK" in texts[1] and "OK (was CRITICAL)" in texts[2]
        run("fail")
        assert len(rx.events) == 4  # nothing new, nothing re-sent
        assert rx.refused == []
    finally:
        rx.close()


def test_a_400_is_final_and_logged_not_retried_forever(tmp_path, capsys):
    rx = StrictReceiver("slack")
    try:
        c = CheckSettings(history_db=str(tmp_path / "h.sqlite3"), webhook=rx.url, webhook_format="json",
                          webhook_headers=("X-Ticket-Token: tkt-Qv7zP2",), webhook_secret=SECRET)
        after_run.after_run(report("fail"), 2, c, time.monotonic() + 0.5)
        assert rx.refused == ["no_text"]
        err = capsys.readouterr().err
        assert "refused" in err and "400" in err and "no_text" in err and "--webhook-format" in err
        assert not outbox.path_for(tmp_path / "h.sqlite3").exists()
        after_run.after_run(report("fail"), 2, replace(c, webhook_format="slack"), time.monotonic() + 0.5)
        assert rx.refused == ["no_text"] and rx.events == []  # no change, and the refused one is gone
    finally:
        rx.close()


def test_two_rooms_alternating_send_no_false_changes(tmp_path):
    rx = StrictReceiver("slack")
    try:
        c = CheckSettings(history_db=str(tmp_path / "h.sqlite3"), webhook=rx.url, webhook_format="slack",
                          webhook_headers=("X-Ticket-Token: tkt-Qv7zP2",), webhook_secret=SECRET)
        for _ in range(3):
            after_run.after_run(report("fail", "198.51.100.20"), 2, c, time.monotonic() + 0.5)
            after_run.after_run(report("pass", "198.51.100.21"), 0, c, time.monotonic() + 0.5)
        assert len(rx.events) == 2  # each room's first run only
    finally:
        rx.close()


def test_the_verdict_is_on_stdout_while_a_stalled_webhook_still_waits(tmp_path):
    """A receiver that takes the POST and then says nothing: the check prints its verdict
    first and delivers after (retries bounded by its deadline), so the person at the screen,
    or the scheduler reading stdout, never waits on a chat server. The receiver here holds the
    request until the verdict is on stdout (at most 60 s): with the webhook sent before the
    verdict (the old order), stdout stays empty for the check's whole 90 s deadline."""
    import subprocess
    import sys

    posted, release, bodies = threading.Event(), threading.Event(), []

    class Stall(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            posted.set()
            release.wait(60)
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Stall)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    proc = subprocess.Popen([sys.executable, "-m", "roomprobe", "check", "--only", "interfaces",
                             "--timeout", "90", "--no-color", "--webhook", url,
                             "--history-db", str(tmp_path / "h.sqlite3")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    first_line: list[str] = []
    seen = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        first_line.append(proc.stdout.readline())
        seen.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert posted.wait(60), "the check never sent its webhook"
        seen.wait(60)
        stalled_when_printed = not release.is_set()
        assert seen.is_set() and stalled_when_printed, "the verdict waited for the webhook"
        assert first_line[0].split()[0] in ("PASS", "WARN", "FAIL", "UNKNOWN"), first_line
    finally:
        release.set()
        out, err = proc.communicate(timeout=120)
        server.shutdown()
        server.server_close()
    assert proc.returncode in (0, 1, 2, 3), err
    assert "warning" not in err, err  # the delivery, once released, succeeded
    assert len(bodies) == 1 and bodies[0]["report"]["status"] == first_line[0].split()[0].lower()
