"""The webhook outbox: state changes that are not delivered yet survive until the next run.

Why: a receiver that is down when a room breaks would otherwise never hear of the outage (the
next run sees "no change" and sends nothing). Every change is first appended here, then sent;
only a delivery (2xx) or a final refusal (a 4xx other than 408/429, logged) removes it. The next
run re-sends what is left, oldest first, before its own change, so the receiver sees events in
order. Each event carries a stable ``event_id`` (also the ``X-Roomprobe-Event-Id`` header) so a
receiver can drop the duplicate that a crash between "delivered" and "removed" could cause.

The file is JSON next to the history database, written atomically with mode 0600, bounded in
size and entries (the oldest are dropped, with a warning, beyond :data:`MAX_ENTRIES`). It never
holds the webhook URL (a Slack/Teams URL is itself a secret) nor any header or signing key: an
entry is matched to the current ``--webhook`` by a SHA-256 of the URL.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

MAX_ENTRIES = 200
MAX_BYTES = 32 << 20
NAME = "webhook-outbox.json"


def path_for(history_db: Path) -> Path:
    """The outbox lives next to the history database."""
    return history_db.parent / NAME


def url_id(url: str) -> str:
    """A stable, non-reversible id for a webhook URL (the URL itself is never written)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]


def load(path: Path) -> tuple[list[dict[str, Any]], str | None]:
    """The pending entries, and a warning if the file was unreadable (then it starts empty)."""
    from roomprobe.core.fsutil import NotRegularFile, open_regular

    try:
        with open_regular(path) as fh:  # a FIFO in its place would block a plain open forever
            data = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return [], None
    except NotRegularFile as exc:
        return [], f"the webhook outbox {path} is {exc.kind}, not a file; starting a new one"
    except OSError as exc:
        return [], f"cannot read the webhook outbox {path}: {exc.strerror or exc}"
    if len(data) > MAX_BYTES:
        return [], f"the webhook outbox {path} is larger than {MAX_BYTES >> 20} MiB; ignored"
    try:
        doc = json.loads(data.decode("utf-8"))
        entries = doc["pending"]
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ValueError("pending is not a list of objects")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError) as exc:
        return [], f"the webhook outbox {path} is damaged ({exc}); starting a new one"
    return entries, None


def save(path: Path, entries: list[dict[str, Any]]) -> None:
    """Atomically replace the outbox (0600: payloads hold the room's report); empty -> removed."""
    if not entries:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    from roomprobe.core.fsutil import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"version": 1, "pending": entries}, separators=(",", ":")),
                      mode=0o600)


def add(entries: list[dict[str, Any]], entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Append; beyond MAX_ENTRIES the oldest are dropped (returned list is the new outbox)."""
    out = [*entries, entry]
    return out[-MAX_ENTRIES:]
