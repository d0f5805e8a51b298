"""The machine config a fleet deploys with the schedule: settings and secrets off the command line.

Why a file: an installer's command line (``msiexec ... WEBHOOKURL=...``), a scheduled task's
arguments and a launchd plist are readable by every local user and land in install logs and
MDM consoles. So an installer hands us *paths*: a config file to deploy (``--config-from``) and a
file holding the webhook URL (``--webhook-file``). We validate both as ``check`` would, merge the
URL into the config, and write one file the scheduled check reads with ``--config``:

* Windows: ``%ProgramData%\\roomprobe\\config.toml``, its ACL cut to SYSTEM and Administrators
  (by well-known SID, so a German or Japanese Windows, whose group names differ, works too);
* macOS: ``/Library/Application Support/roomprobe/config.toml``; Linux: ``/etc/roomprobe/config.toml``;
  both mode 0600 (the check runs as root there, or as the ``--run-as`` account, who gets the file).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from roomprobe.core.errors import UsageError

CONFIG_NAME = "config.toml"
MAX_URL_FILE = 8192
# SYSTEM and BUILTIN\Administrators: SIDs, never names (names are localised).
WINDOWS_ADMIN_SIDS = ("*S-1-5-18", "*S-1-5-32-544")


def machine_config_dir(platform: str) -> Path:
    """Where the fleet's machine config lives on ``platform`` (readable by the scheduled check)."""
    if platform == "windows":
        return Path(os.environ.get("PROGRAMDATA") or r"C:\ProgramData") / "roomprobe"
    if platform == "macos":
        return Path("/Library/Application Support/roomprobe")
    return Path("/etc/roomprobe")


def read_webhook_file(path: str) -> str:
    """The webhook URL from a file an installer was given: one line, bounded, checked as ``check`` does."""
    from roomprobe.core.fsutil import read_bounded

    text = read_bounded(Path(path), MAX_URL_FILE, "webhook file").decode("utf-8-sig", "replace")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if len(lines) != 1:
        raise UsageError(f"--webhook-file {path}: expected the webhook URL on one line, found {len(lines)} "
                         "lines; put only the URL in the file")
    return lines[0]


def build_config(config_from: str | None, webhook_url: str | None) -> dict[str, Any]:
    """The deployed config: ``config_from`` as ``check`` would read it, plus the webhook URL.

    Everything is validated here (unknown keys, types, the URL's scheme) so an installer fails at
    install time with one line, not every 15 minutes in a log nobody reads.
    """
    from roomprobe.core import settings as st

    data: dict[str, Any] = {}
    if config_from:
        cfg = st.load(Path(config_from))
        data = {"check": dict(cfg.check), "probes": {k: dict(v) for k, v in cfg.probes.items()}}
    if webhook_url:
        from roomprobe.fleet.webhook import validate_url

        validate_url(webhook_url)
        data.setdefault("check", {})["webhook"] = webhook_url
    return {k: v for k, v in data.items() if v}


def write_config(directory: Path, data: dict[str, Any], *, live_windows: bool) -> Path:
    """Write ``data`` as TOML into ``directory`` atomically, readable by its owner (and admins) only."""
    import tomli_w

    from roomprobe.core.fsutil import atomic_write_text

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CONFIG_NAME
    atomic_write_text(path, tomli_w.dumps(data), mode=0o600)
    if live_windows:
        restrict_to_admins(path)
    return path


def restrict_to_admins(path: Path) -> None:
    """Windows: drop inherited ACEs (ProgramData lets Users read) and grant SYSTEM + Administrators."""
    if sys.platform != "win32":
        return
    cmd = ["icacls", str(path), "/inheritance:r", "/grant:r", *[f"{sid}:F" for sid in WINDOWS_ADMIN_SIDS]]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"cannot protect {path} ({exc}); delete it, it may hold a secret") from None
    if done.returncode != 0:
        raise UsageError(f"cannot protect {path} (icacls exit {done.returncode}); delete it, it may hold a secret")
