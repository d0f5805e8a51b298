"""Errors that end a run with one clear line and a monitoring-plugin exit code."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Nagios/Icinga/Zabbix plugin convention, so schedulers can use our exit status as is."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3  # bad usage, internal error, interrupted run


class UsageError(Exception):
    """Bad input from the user: printed as one line (no traceback), exit 3.

    The message says what was wrong and what to do instead.
    """
