"""roomprobe's built-in probes, one module each (installed as ``roomprobe.probes``).

Each module exposes ``PROBE`` (a ``roomprobe.probe.Probe``) and is registered under the
``roomprobe.probes`` entry-point group in pyproject.toml.
"""
