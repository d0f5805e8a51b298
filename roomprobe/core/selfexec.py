"""The command line of a child that is roomprobe itself (the agent's check, the PAC worker).

Why one helper: ``python -m roomprobe`` puts the working directory first on ``sys.path``, so a
``roomprobe/`` folder wherever the parent was started (a checkout, a shared folder, a user's
download directory) is imported and run in the child instead of the installed package: code
execution for whoever can write there, and a checkout shadowing an installed package (every
agent request failed 502). Every child we spawn goes through :func:`self_argv`:

- a frozen (PyInstaller) binary is started as itself: ``sys.executable`` *is* roomprobe;
- otherwise ``python -I`` (isolated: no working directory or script directory on ``sys.path``,
  no ``PYTHON*`` variables, no user site) runs ``roomprobe.cli.main``, after putting back only
  the parent's own import path: its ``sys.path`` without the unsafe first entry, without the
  working directory and without relative entries. So a child imports exactly the roomprobe the
  parent runs (an editable install, a ``--user`` install, a ``PYTHONPATH`` the operator set) and
  never a folder it merely happens to be started in.

Helper roles (``--pac-worker``) are reached through ``roomprobe.cli.main`` like the frozen build.
"""

from __future__ import annotations

import json
import os
import sys

# Runs in the child under ``python -I -c``: argv[1] is the JSON list of import directories.
_BOOT = ("import sys, json; sys.path[:0] = [p for p in json.loads(sys.argv.pop(1)) "
         "if p not in sys.path]; from roomprobe.cli import main; main()")


def _package_root() -> str:
    """The directory holding the ``roomprobe`` package this process runs."""
    here = os.path.dirname(os.path.abspath(__file__))  # .../roomprobe/core
    return os.path.dirname(os.path.dirname(here))


def import_path() -> list[str]:
    """The parent's import directories that are safe to hand a child (absolute, not the cwd).

    ``sys.path[0]`` is the script's or the working directory unless the parent itself was
    started isolated (``-I``/``-P``): it is left out. The directory of the running package is
    always kept, so a parent started from an uninstalled checkout still finds itself."""
    entries = list(sys.path)
    safe_start = bool(getattr(sys.flags, "safe_path", False)) or bool(sys.flags.isolated)
    if entries and not safe_start:
        entries = entries[1:]
    try:
        cwd = os.path.normcase(os.path.abspath(os.getcwd()))
    except OSError:  # the working directory was removed: nothing of it can be on the path
        cwd = ""
    root = _package_root()
    out = [root]
    for p in entries:
        if not p or not os.path.isabs(p) or os.path.normcase(os.path.abspath(p)) == cwd:
            continue
        if p not in out:
            out.append(p)
    return out


def self_argv(*args: str) -> list[str]:
    """``roomprobe ARGS`` as a child process, isolated from the working directory."""
    if getattr(sys, "frozen", False):
        return [sys.executable, *args]
    return [sys.executable, "-I", "-c", _BOOT, json.dumps(import_path()), *args]


def module_argv(python: str) -> list[str]:
    """``PYTHON -m roomprobe`` for a command line that others start later (a scheduler's unit),
    still without the working directory on ``sys.path``.

    The line is written into systemd units, crontabs, launchd plists and Task Scheduler XML, so
    it stays readable where it can. Python 3.11+ has ``-P`` (only the unsafe path entry is
    dropped; the user site and PYTHONPATH stay). On 3.10 ``-I`` is used when an isolated
    interpreter finds this same package (a site-packages install, or an editable install whose
    finder lives there); otherwise (a ``--user`` install, a checkout on PYTHONPATH) the
    bootstrap of :func:`self_argv`, which is less readable but never imports the working
    directory (a plain ``-m`` would run a ``roomprobe/`` folder in the scheduler's directory)."""
    if sys.version_info >= (3, 11):
        return [python, "-P", "-m", "roomprobe"]
    if _isolated_finds_this_package(python):
        return [python, "-I", "-m", "roomprobe"]
    return [python, "-I", "-c", _BOOT, json.dumps(import_path())]


def _isolated_finds_this_package(python: str) -> bool:
    """Does ``python -I`` import the roomprobe this process runs? (asked once, at install time)"""
    import subprocess
    import tempfile

    probe = "import os, roomprobe; print(os.path.dirname(os.path.dirname(os.path.abspath(roomprobe.__file__))))"
    try:
        with tempfile.TemporaryDirectory() as empty:  # no roomprobe/ where it starts
            out = subprocess.run([python, "-I", "-c", probe], cwd=empty, capture_output=True,
                                 text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    found = out.stdout.strip()
    return out.returncode == 0 and bool(found) and \
        os.path.normcase(os.path.realpath(found)) == os.path.normcase(os.path.realpath(_package_root()))
