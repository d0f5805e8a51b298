"""Prometheus service discovery from the sweep inventory: file_sd JSON and the exporter's /sd.

Why: with a thousand rooms the inventory is the one list of rooms; Prometheus should read it,
not a second list typed into prometheus.yml. ``sweep --sd-file PATH`` writes it for
``file_sd_configs`` (atomically: Prometheus watches the file and must never read half of it);
the exporter serves the same JSON at ``/sd`` for ``http_sd_configs``.

One entry per room: the target is ``ADDR:PORT`` (what ``/probe?target=`` takes), the labels
the room's ``room`` (its name, else its address: the label the metrics carry), ``site`` and
``controller`` (the inventory's first), each only when known. Rooms with an agent (the
inventory's ``peer``) also carry ``__meta_roomprobe_agent="true"``: a scrape config keeps or
drops them for the ``room-agent`` module (relabelling removes ``__meta_`` labels afterwards).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any


def target_of(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def groups(rooms: Sequence[Any]) -> list[dict[str, Any]]:
    """file_sd / http_sd target groups for sweep.Room rows, in inventory order."""
    out = []
    for r in rooms:
        labels = {"room": r.name or r.address}
        if getattr(r, "site", None):
            labels["site"] = r.site
        if r.controllers:
            labels["controller"] = r.controllers[0]
        if r.peer:
            labels["__meta_roomprobe_agent"] = "true"
        out.append({"targets": [target_of(r.address, r.port)], "labels": labels})
    return out


def to_json(rooms: Sequence[Any]) -> str:
    return json.dumps(groups(rooms), indent=2) + "\n"


def write(path: str | os.PathLike[str], rooms: Sequence[Any]) -> None:
    """Atomically replace ``path`` with the rooms' file_sd JSON; errors are one line."""
    from roomprobe.core.errors import UsageError
    from roomprobe.core.fsutil import atomic_write_text

    if not str(path).lower().endswith((".json", ".yml", ".yaml")):
        raise UsageError(f"--sd-file {path}: Prometheus' file_sd reads only *.json, *.yml and "
                         "*.yaml files; name it e.g. rooms.json")
    try:
        atomic_write_text(path, to_json(rooms))
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}; point --sd-file at a "
                         "directory Prometheus reads") from None
