"""Webhook: POST the report to a URL when the room's state changes.

Why only on a change: a fleet of hundreds of rooms checking every 15 minutes would otherwise
flood the receiving chat or ticket system with "still fine". Why bounded: a scheduled check
must end; delivery (every attempt, every back-off sleep) stops at a hard deadline, and a
receiver that is down costs at most that, never a hung check.

The POST goes through the system proxy for that URL (roomprobe.net.proxies.proxy_for), like
everything else roomprobe sends.
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from roomprobe.core.errors import UsageError
from roomprobe.core.redact import redact_text
from roomprobe.core.threads import start_guarded

ATTEMPTS = 4
BASE_DELAY_S = 0.5
MAX_DELAY_S = 8.0


def validate_url(url: str) -> None:
    """Only http(s) URLs with a host: anything else is a usage error before the check runs."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--webhook {url!r}: give an http:// or https:// URL, "
                         "e.g. --webhook https://hooks.example.com/roomprobe")


def summary(report: dict[str, Any], exit_code: int, previous: str | None) -> dict[str, Any]:
    """The payload: the state change on top, then the whole report (already redacted)."""
    host = report.get("host", {})
    return {
        "event": "roomprobe.state-change",
        "hostname": host.get("hostname"),
        "status": report.get("status"),
        "previous_status": previous,
        "exit_code": exit_code,
        "started_at": report.get("started_at"),
        "findings": [{"id": f["id"], "severity": f["severity"], "message": f["message"]}
                     for f in report.get("findings", [])],
        "report": report,
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
         rng: random.Random | None = None) -> Delivery:
    """POST with bounded retries; nothing here runs past ``deadline`` (time.monotonic()).

    Retries network errors, timeouts, 408, 429 and 5xx; any other 4xx is final (the receiver
    said no, and asking again will not change its mind).
    """
    from roomprobe.net.proxies import proxy_for

    body = json.dumps(payload).encode("utf-8")
    proxy = proxy_for(url)
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
        req = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "roomprobe"})
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
    def go() -> int | None:
        try:
            with opener.open(req, timeout=left) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    worker = start_guarded(go, "roomprobe-webhook")
    worker.join(left)
    if worker.is_alive():
        return None, "timeout: no complete answer before the deadline"
    if worker.error is not None:  # network trouble, or a bad proxy value (ALL_PROXY=$'\x97')
        reason = getattr(worker.error, "reason", worker.error)
        return None, redact_text(f"{type(reason).__name__}: {reason}")[:300]
    return worker.result, None
