"""The CLI's subcommands, one module each (``check``, ``probes``, ``explain``, ``report``, ...).

They parse flags, build the typed settings, call the probes through the runner and hand the
results to diagnose, report and fleet. ``roomprobe.cli`` imports them lazily by name.

May import: anything in roomprobe (this is the top of the arrows). Nothing imports commands
except ``roomprobe.cli``.
"""
