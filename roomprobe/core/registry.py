"""Finds the probes: everything registered under the ``roomprobe.probes`` entry-point group.

The built-in probes are registered there by our own pyproject.toml, so a third-party package adds
a probe the same way. Probe modules are imported only when a command needs them (not for
``--help``), and each keeps its heavy imports (scapy) inside its run function.
"""

from __future__ import annotations

import sys
from importlib import import_module
from importlib.metadata import entry_points

from roomprobe.core.probe import Probe

GROUP = "roomprobe.probes"

# Used when roomprobe runs from a source tree without installed metadata.
BUILTIN = {
    "interfaces": "roomprobe.probes.interfaces:PROBE",
    "subnet": "roomprobe.probes.subnet:PROBE",
    "controller-port": "roomprobe.probes.controller_port:PROBE",
    "dns": "roomprobe.probes.dns:PROBE",
    "cloud": "roomprobe.probes.cloud:PROBE",
    "proxy": "roomprobe.probes.proxy:PROBE",
    "bandwidth": "roomprobe.probes.bandwidth:PROBE",
    "quality": "roomprobe.probes.quality:PROBE",
    "wifi": "roomprobe.probes.wifi:PROBE",
    "path": "roomprobe.probes.path:PROBE",
}


def _load(ref: str) -> Probe:
    module, _, attr = ref.partition(":")
    return getattr(import_module(module), attr)


def load_probes() -> dict[str, Probe]:
    """All probes by id, built-ins first, in a stable order."""
    refs = dict(BUILTIN)
    for ep in entry_points(group=GROUP):
        refs.setdefault(ep.name, ep.value)
    probes: dict[str, Probe] = {}
    for name, ref in refs.items():
        try:
            probe = _load(ref)
        except Exception as exc:  # a broken plugin must not take the built-ins down with it
            print(f"roomprobe: probe {name!r} ({ref}) failed to load: {exc}", file=sys.stderr)
            continue
        if not isinstance(probe, Probe) or probe.id != name:
            print(f"roomprobe: entry point {name!r} is not a Probe with id {name!r}; ignored",
                  file=sys.stderr)
            continue
        probes[name] = probe
    return probes
