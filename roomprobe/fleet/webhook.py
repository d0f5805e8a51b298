"""Webhook: POST the report to a URL when the room's state changes.

Formats (``--webhook-format``): ``json`` (roomprobe's own payload: the change on top, then the
whole report), ``slack`` (an incoming-webhook message: ``text`` plus ``blocks``; Slack refuses a
message without ``text`` with 400 no_text), ``teams`` (a message carrying one Adaptive Card, as
Teams workflows / incoming webhooks require). Optional: ``--webhook-header 'Name: value'`` for a
ticket system's auth, and ``--webhook-secret`` (or ``$ROOMPROBE_WEBHOOK_SECRET``) to sign each
POST: ``X-Roomprobe-Signature: sha256=HEX`` where HEX is HMAC-SHA256(secret, TIMESTAMP + "." +
body) and TIMESTAMP is the ``X-Roomprobe-Timestamp`` header, so a receiver can refuse replays.

Why only on a change: a fleet of hundreds of rooms checking every 15 minutes would otherwise
flood the receiving chat or ticket system with "still fine". Why bounded: a scheduled check
must end; delivery (every attempt, every back-off sleep) stops at a hard deadline, and a
receiver that is down costs at most that, never a hung check.

The POST goes through the system proxy for that URL (roomprobe.proxy.resolver.proxy_for), like
everything else roomprobe sends.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import random
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from roomprobe.core.errors import UsageError
from roomprobe.core.redact import redact_text
from roomprobe.core.threads import start_guarded

if TYPE_CHECKING:
    from roomprobe.report.model import Report

ATTEMPTS = 4
BASE_DELAY_S = 0.5
MAX_DELAY_S = 8.0
FORMATS = ("json", "slack", "teams")
STATE_WORDS = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}
MAX_FINDINGS_LISTED = 8
_HEADER_NAME = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_RESERVED = {"content-type", "content-length", "host", "x-roomprobe-signature", "x-roomprobe-timestamp",
             "x-roomprobe-event-id"}


def validate_url(url: str) -> None:
    """Only http(s) URLs with a host: anything else is a usage error before the check runs.

    The message never quotes the URL: a webhook's path is its secret (Slack, Teams), whatever
    the scheme it was typed with, and the error lands in service logs."""
    try:
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname
    except ValueError:
        scheme, host = "", None
    if scheme not in ("http", "https") or not host:
        what = (f"a {scheme}:// URL" if scheme.isascii() and scheme.isalnum() else "no http(s) URL") \
            if scheme not in ("http", "https") else "a URL without a host"
        raise UsageError(f"--webhook is {what} (not shown: a webhook URL is a secret); give an "
                         "http:// or https:// URL, e.g. --webhook https://hooks.example.com/roomprobe")


def parse_header(text: str) -> tuple[str, str]:
    """``Name: value`` -> (name, value); a bad one is a usage error (its value is never echoed)."""
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not name or set(name) - _HEADER_NAME or any(c in value for c in "\r\n"):
        raise UsageError(f"--webhook-header {name[:40]!r}...: give 'Name: value', "
                         "e.g. --webhook-header 'Authorization: Bearer TOKEN'")
    if name.lower() in _RESERVED:
        raise UsageError(f"--webhook-header {name}: roomprobe sets this header itself; choose another")
    return name, value


def room_title(report: Report) -> str:
    """How a message names the room: --room-name, else the checked address, else this host."""
    return str(report.room_name or report.targets.room or (report.host or {}).get("hostname")
               or "this room")


def headline(report: Report, exit_code: int, previous: str | None) -> str:
    """One line for a chat: "Room X: CRITICAL (was OK) - first finding"."""
    word = STATE_WORDS.get(exit_code, "UNKNOWN")
    was = ""
    if previous:
        try:
            was = f" (was {STATE_WORDS.get(int(previous.split('/')[-1]), previous)})"
        except ValueError:
            was = f" (was {previous})"
    worst = next((f for sev in ("fail", "warn") for f in report.findings if f.severity == sev), None)
    tail = f" - {worst.message}" if worst else (" - all checks passed" if exit_code == 0 else "")
    return f"Room {room_title(report)}: {word}{was}{tail}"


def render(fmt: str, report: Report, exit_code: int, previous: str | None,
           event_id: str) -> dict[str, Any]:
    """The body for ``fmt`` (json | slack | teams)."""
    if fmt == "json":
        return {**summary(report, exit_code, previous), "event_id": event_id}
    title = headline(report, exit_code, previous)
    lines = [f"{f.severity.value.upper()}: {f.message}" for f in report.findings
             if f.severity in ("fail", "warn")][:MAX_FINDINGS_LISTED]
    codes = [f"{d.code}" for d in report.diagnosis if d.code][:3]
    facts = [("Status", STATE_WORDS.get(exit_code, "UNKNOWN")), ("Previous", previous or "first run"),
             ("Host", str((report.host or {}).get("hostname") or "")),
             ("Started", str(report.started_at or "")),
             ("Likely codes", ", ".join(codes) or "none")]
    if fmt == "slack":
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"[:2000]}
                                           for k, v in facts]}]
        if lines:
            blocks.append({"type": "section",
                           "text": {"type": "mrkdwn", "text": "\n".join(lines)[:3000]}})
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"roomprobe {report.roomprobe_version} event {event_id}"}]})
        return {"text": title[:3000], "blocks": blocks}
    card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
            "version": "1.4", "body": [
                {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": True,
                 "color": {0: "Good", 1: "Warning"}.get(exit_code, "Attention")},
                {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in facts]},
                *({"type": "TextBlock", "text": line, "wrap": True} for line in lines),
                {"type": "TextBlock", "text": f"event {event_id}", "isSubtle": True, "size": "Small"}]}
    return {"type": "message", "summary": title[:150], "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=HEX`` of HMAC-SHA256(secret, timestamp + "." + body)."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def summary(report: Report, exit_code: int, previous: str | None) -> dict[str, Any]:
    """The payload: the state change on top, then the whole report (already redacted)."""
    return {
        "event": "roomprobe.state-change",
        "hostname": report.host.get("hostname"),
        "status": report.status,
        "previous_status": previous,
        "exit_code": exit_code,
        "started_at": report.started_at,
        "findings": [{"id": f.id, "severity": f.severity.value, "message": f.message}
                     for f in report.findings],
        "report": report.to_dict(),
    }


@dataclass
class Delivery:
    """What happened to one webhook delivery (for the log line and the tests)."""

    delivered: bool = False
    attempts: list[dict[str, Any]] = field(default_factory=list)
    gave_up: str | None = None  # "deadline" | "attempts" | "rejected"


def backoff(attempt: int, rng: random.Random | None = None) -> float:
    """Full-jitter exponential back-off: uniform in [0, min(MAX, BASE * 2**attempt)]."""
    r = rng or random
    return r.uniform(0, min(MAX_DELAY_S, BASE_DELAY_S * (2 ** attempt)))


def post(url: str, payload: dict[str, Any], deadline: float, *, attempts: int = ATTEMPTS,
         rng: random.Random | None = None, headers: dict[str, str] | None = None,
         secret: str | None = None, event_id: str | None = None) -> Delivery:
    """POST with bounded retries; nothing here runs past ``deadline`` (time.monotonic()).

    Retries network errors, timeouts, 408, 429 and 5xx; any other 4xx is final (the receiver
    said no, and asking again will not change its mind).
    """
    from roomprobe.proxy.resolver import proxy_for

    body = json.dumps(payload).encode("utf-8")
    proxy = proxy_for(url)
    if proxy:  # urllib would cut a raw password at its first / or #: hand it our reading
        from roomprobe.core.proxyurl import ProxyURLError, parse_proxy_url

        try:
            proxy = parse_proxy_url(proxy).canonical()
        except ProxyURLError:
            proxy = None  # proxy_for already refuses those; belt and braces
    from roomprobe.net import tlstrust

    handlers: list[Any] = [urllib.request.ProxyHandler({urlsplit(url).scheme: proxy} if proxy else {}),
                           urllib.request.HTTPSHandler(context=tlstrust.client_context())]
    opener = urllib.request.build_opener(*handlers)
    out = Delivery()
    for i in range(attempts):
        left = deadline - time.monotonic()
        if left <= 0.05:
            out.gave_up = "deadline"
            return out
        hdrs = {"User-Agent": "roomprobe", **(headers or {}), "Content-Type": "application/json"}
        if event_id:
            hdrs["X-Roomprobe-Event-Id"] = event_id
        if secret:
            stamp = str(int(time.time()))
            hdrs["X-Roomprobe-Timestamp"] = stamp
            hdrs["X-Roomprobe-Signature"] = sign(secret, stamp, body)
        req = urllib.request.Request(url, data=body, method="POST", headers=hdrs)
        t0 = time.monotonic()
        code, err = _attempt(opener, req, left)
        out.attempts.append({"status": code, "error": err, "ms": round((time.monotonic() - t0) * 1000, 1)})
        if code is not None and 200 <= code < 300:
            out.delivered = True
            return out
        if code is not None and 400 <= code < 500 and code not in (408, 429):
            out.gave_up = "rejected"
            return out
        if i + 1 < attempts:
            delay = backoff(i, rng)
            if time.monotonic() + delay >= deadline:
                out.gave_up = "deadline"
                return out
            time.sleep(delay)
    out.gave_up = "attempts"
    return out


def _attempt(opener: urllib.request.OpenerDirector, req: urllib.request.Request,
             left: float) -> tuple[int | None, str | None]:
    """One POST, abandoned at ``left`` seconds even if the server trickles bytes (the socket
    timeout alone bounds each read, not the whole exchange). Returns (HTTP status, error)."""
    def go() -> tuple[int, str | None]:
        try:
            with opener.open(req, timeout=left) as resp:
                return int(resp.status), None
        except urllib.error.HTTPError as exc:
            # The receiver's reason (Slack: "no_text", "invalid_blocks"), bounded and one line.
            reason = None
            with contextlib.suppress(OSError, ValueError):
                reason = " ".join(exc.read(200).decode("utf-8", "replace").split())[:120] or None
            return int(exc.code), reason

    worker = start_guarded(go, "roomprobe-webhook")
    worker.join(left)
    if worker.is_alive():
        return None, "timeout: no complete answer before the deadline"
    if worker.error is not None:  # network trouble, or a bad proxy value (ALL_PROXY=$'\x97')
        reason = getattr(worker.error, "reason", worker.error)
        return None, redact_text(f"{type(reason).__name__}: {reason}")[:300]
    code, reason = worker.result
    return code, redact_text(reason) if reason else None
