"""roomprobe's built-in probes, one module each (installed as ``roomprobe.probes``).

Each module exposes ``PROBE`` (a ``roomprobe.core.probe.Probe``) and is registered under the
``roomprobe.probes`` entry-point group in pyproject.toml.

May import: ``roomprobe.core`` and ``roomprobe.net`` (and a sibling probe's helpers, sparingly).
Never diagnose, report, fleet or commands: a probe measures and concludes; others read results.
"""
