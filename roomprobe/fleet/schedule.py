"""Rendering the OS scheduler's files for a periodic ``roomprobe check`` (pure: no side effects).

Each OS gets its native scheduler, because that is what the room's admins already know how to
inspect, and it keeps running with no roomprobe daemon: a systemd timer + service on Linux, a
Task Scheduler task (XML) on Windows, a launchd job (plist) on macOS. The templates live in the
repository's ``packaging/schedule/`` (installed as ``roomprobe.schedule_templates``).

Splay, so a fleet of hundreds of rooms does not hit the network at the same second:

* every machine draws its own fixed offset in [0, every) at install time (first run / start
  boundary / calendar minute), and
* where the scheduler supports it, each run is delayed by a fresh random 0..splay
  (systemd ``RandomizedDelaySec``, Task Scheduler ``RandomDelay``).
"""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib.resources import files
from string import Template
from xml.sax.saxutils import escape

from roomprobe.core.errors import UsageError
from roomprobe.core.selfexec import module_argv

PLATFORMS = ("linux", "windows", "macos")
TEMPLATES = "roomprobe.schedule_templates"
UNIT = "roomprobe-check"
LAUNCHD_LABEL = "com.roomprobe.check"
MIN_EVERY_S, MAX_EVERY_S = 60, 86400
META_RE = re.compile(r"roomprobe-schedule: (\{.*?\})(?: -->)?\s*$", re.M)


def current_platform() -> str:
    if sys.platform.startswith("win"):
        return "windows"
    if sys.platform == "darwin":
        return "macos"
    return "linux"


_DUR = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_DUR_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "": 60}


def parse_duration(text: str, what: str) -> int:
    """``15m``, ``1h``, ``900s``; a bare number means minutes."""
    m = _DUR.match(str(text))
    if not m:
        raise UsageError(f"{what} {text!r}: give a duration like 15m, 1h or 900s")
    return int(m.group(1)) * _DUR_S[m.group(2)]


@dataclass
class Spec:
    """What to schedule. ``command`` is the full argv (program first)."""

    platform: str
    every_s: int
    splay_s: int
    offset_s: int
    command: list[str]
    run_as: str | None = None
    time_limit_s: int = 600
    log: str = "/Library/Logs/roomprobe/roomprobe-check.log"  # launchd only: see launchd_log()
    env_file: str = "/etc/roomprobe/environment"
    extra: dict[str, str] = field(default_factory=dict)

    def meta_xml(self) -> str:
        """The meta JSON made safe inside an XML comment (no "--", "<", ">" or "&")."""
        out = self.meta()
        for ch in "-<>&":
            out = out.replace(ch, f"\\u{ord(ch):04x}")
        return out

    def meta(self) -> str:
        return json.dumps({"every_s": self.every_s, "splay_s": self.splay_s, "offset_s": self.offset_s,
                           "run_as": self.run_as, "command": self.command}, separators=(",", ":"))


def make_spec(platform: str, every: str, splay: str | None, args: list[str], *, run_as: str | None = None,
              exe: list[str] | None = None, rng: random.Random | None = None,
              log: str | None = None) -> Spec:
    """Check the inputs and draw this machine's offset."""
    if platform not in PLATFORMS:
        raise UsageError(f"--platform {platform!r}: choose one of {', '.join(PLATFORMS)}")
    every_s = parse_duration(every, "--every")
    if not MIN_EVERY_S <= every_s <= MAX_EVERY_S:
        raise UsageError(f"--every {every}: choose between 1m and 24h")
    splay_s = parse_duration(splay, "--splay") if splay is not None else min(300, every_s // 2)
    if not 0 <= splay_s < every_s:
        raise UsageError(f"--splay {splay}: must be shorter than --every ({every_s}s)")
    offset_s = (rng or random.SystemRandom()).randrange(every_s)
    command = (exe or default_exe(platform)) + ["check", *quick_args(args)]
    return Spec(platform, every_s, splay_s, offset_s, command, run_as,
                time_limit_s=max(120, min(every_s, 1800)), log=log or launchd_log(daemon=True))


DAEMON_LOG_DIR = "/Library/Logs/roomprobe"


def launchd_log(daemon: bool, home: str | None = None) -> str:
    """Where a launchd job's output goes: the system log folder for a daemon, the user's for an agent.

    Why not /tmp: it is world-writable and shared by every account (another user can create the
    file first, or read what the check printed), and it is emptied at reboot. Console.app shows
    both Logs folders. launchd does not create the folder: ``schedule install`` does.
    """
    if daemon:
        return f"{DAEMON_LOG_DIR}/roomprobe-check.log"
    return f"{home or os.path.expanduser('~')}/Library/Logs/roomprobe/roomprobe-check.log"


SECRET_FLAGS = ("--webhook", "--peer-token")


def has_secret(spec: Spec) -> bool:
    """Does the scheduled command carry a secret (a webhook URL, a token, a URL with credentials
    or a query string)? Then its files are written owner-only (0600): unit files, task XML and
    plists are world-readable by default, and a webhook URL is itself the credential."""
    from roomprobe.core.redact import redact_text

    for arg in spec.command:
        if any(arg == f or arg.startswith(f + "=") for f in SECRET_FLAGS) or redact_text(arg) != arg:
            return True
    return False


def file_mode(spec: Spec) -> int:
    """0600 when the files hold a secret (see :func:`has_secret`), else 0644."""
    return 0o600 if has_secret(spec) else 0o644


BANDWIDTH_CHOICES = ("--bandwidth", "--no-bandwidth", "--peer", "--only")


def quick_args(args: list[str]) -> list[str]:
    """A scheduled check skips the bandwidth test unless the args ask about it.

    Why: the test saturates the link for up to 10 s; every 15 minutes on every room PC that is
    traffic the meetings feel, and longer than a monitoring agent's usual 10 s timeout. Giving
    --bandwidth, --no-bandwidth, --peer or --only keeps the caller's choice.
    """
    if any(a == flag or a.startswith(flag + "=") for a in args for flag in BANDWIDTH_CHOICES):
        return list(args)
    return ["--no-bandwidth", *args]


def default_exe(platform: str | None = None) -> list[str]:
    """How the scheduler should start roomprobe: the frozen binary, the script, or python -m.

    For a Windows task on Windows the windowless twin is preferred when it exists (the
    ``roomprobe-w.exe`` build next to this one, the ``roomprobe-w`` gui-script, ``pythonw.exe``):
    a console program run in the room user's session flashes a window on the room's display.
    """
    windowless = (platform or current_platform()) == "windows" and sys.platform == "win32"
    if getattr(sys, "frozen", False):
        exe = os.path.abspath(sys.executable)
        twin = os.path.join(os.path.dirname(exe), "roomprobe-w.exe")
        return [twin if windowless and os.path.isfile(twin) else exe]
    script = shutil.which("roomprobe-w") if windowless else None
    script = script or shutil.which("roomprobe")
    if script:
        return [os.path.abspath(script)]
    python = sys.executable
    if windowless:
        pythonw = os.path.join(os.path.dirname(python), "pythonw.exe")
        python = pythonw if os.path.isfile(pythonw) else python
    return module_argv(python)  # -P/-I: never a roomprobe/ folder in the unit's working directory


def _template(name: str) -> Template:
    return Template(files(TEMPLATES).joinpath(name).read_text("utf-8"))


def _systemd_quote(arg: str) -> str:
    """One ExecStart word: double-quoted when needed; %% and $$ so systemd expands nothing."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if arg and not re.search(r'[\s"\'\\;]', arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _iso_duration(seconds: int) -> str:
    h, rem = divmod(int(seconds), 3600)
    m, s = divmod(rem, 60)
    return "PT" + (f"{h}H" if h else "") + (f"{m}M" if m else "") + (f"{s}S" if s or not (h or m) else "")


def _windows_args(args: list[str]) -> str:
    """Quote for the Windows command line (CommandLineToArgvW rules, via subprocess's helper)."""
    import subprocess

    return subprocess.list2cmdline(args)


def render(spec: Spec) -> dict[str, str]:
    """File name -> content, for ``spec.platform``."""
    if spec.platform == "linux":
        run_as = (f"User={spec.run_as}" if spec.run_as
                  else "# Runs as the unit's owner: root for a system unit, you for a --user unit.")
        svc = _template(f"{UNIT}.service").substitute(
            meta=spec.meta(), run_as=run_as, env_file=spec.env_file,
            exec_start=" ".join(_systemd_quote(a) for a in spec.command), time_limit_s=spec.time_limit_s)
        tmr = _template(f"{UNIT}.timer").substitute(
            meta=spec.meta(), every_s=spec.every_s, splay_s=spec.splay_s, first_s=60 + spec.offset_s)
        return {f"{UNIT}.service": svc, f"{UNIT}.timer": tmr}
    if spec.platform == "windows":
        if spec.run_as:
            principal = (f"      <UserId>{escape(spec.run_as)}</UserId>\n"
                         "      <LogonType>InteractiveToken</LogonType>\n"
                         "      <RunLevel>LeastPrivilege</RunLevel>")
        else:
            principal = "      <UserId>S-1-5-18</UserId>\n      <RunLevel>HighestAvailable</RunLevel>"
        # Hidden: the task is left out of Task Scheduler's default list for the room's user (admins
        # see it with View > Show Hidden Tasks). Only a --run-as task runs on the room's desktop.
        hidden = "true" if spec.run_as else "false"
        start = (datetime(2026, 1, 1) + timedelta(seconds=spec.offset_s)).isoformat()
        xml = _template(f"{UNIT}.xml").substitute(
            meta=spec.meta_xml(), every_s=spec.every_s, splay_s=spec.splay_s, start_boundary=start,
            every_iso=_iso_duration(spec.every_s), splay_iso=_iso_duration(spec.splay_s),
            principal=principal, hidden=hidden, time_limit_iso=_iso_duration(spec.time_limit_s),
            command=escape(spec.command[0]), arguments=escape(_windows_args(spec.command[1:])))
        return {f"{UNIT}.xml": xml}
    if spec.platform == "macos":
        prog = "\n".join(f"    <string>{escape(a)}</string>" for a in spec.command)
        run_as = (f"  <key>UserName</key>\n  <string>{escape(spec.run_as)}</string>" if spec.run_as else "")
        plist = _template(f"{LAUNCHD_LABEL}.plist").substitute(
            meta=spec.meta_xml(), program_arguments=prog,
            schedule=_launchd_schedule(spec), log=escape(spec.log), run_as=run_as)
        return {f"{LAUNCHD_LABEL}.plist": plist}
    raise UsageError(f"unknown platform {spec.platform!r}")


def _launchd_schedule(spec: Spec) -> str:
    """launchd has no random delay: run at this machine's own calendar minutes when the interval
    divides an hour or a day (a fixed per-machine splay), else every N seconds from load."""
    every_m, off_m = spec.every_s // 60, spec.offset_s // 60
    if spec.every_s % 60 == 0 and 60 % every_m == 0:
        minutes = [(off_m + i * every_m) % 60 for i in range(60 // every_m)]
        items = [f"    <dict><key>Minute</key><integer>{m}</integer></dict>" for m in sorted(minutes)]
    elif spec.every_s % 3600 == 0 and 24 % (spec.every_s // 3600) == 0:
        step = spec.every_s // 3600
        items = [f"    <dict><key>Hour</key><integer>{(off_m // 60 + i * step) % 24}</integer>"
                 f"<key>Minute</key><integer>{off_m % 60}</integer></dict>" for i in range(24 // step)]
    else:
        return f"  <key>StartInterval</key>\n  <integer>{spec.every_s}</integer>"
    return "  <key>StartCalendarInterval</key>\n  <array>\n" + "\n".join(items) + "\n  </array>"


def read_meta(text: str) -> dict[str, object] | None:
    """The spec a rendered file was made from (its ``roomprobe-schedule:`` comment)."""
    m = META_RE.search(text)
    if not m:
        return None
    try:
        return json.loads(m.group(1))
    except ValueError:
        return None


def split_args(text: str | None) -> list[str]:
    return shlex.split(text) if text else []

