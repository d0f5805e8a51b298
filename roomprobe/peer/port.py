"""The port of the roomprobe-to-roomprobe peer protocol: one number, defined once.

``roomprobe serve`` listens on it (the bandwidth test's HTTP on TCP, the call-quality reflector
on UDP, the same number) and ``check --peer ADDR`` or a sweep's agent address uses it when ADDR
names no port. Its own module, imported by probes, fleet and commands alike, so the two ends can
never disagree on the default.
"""

from __future__ import annotations

PEER_PORT = 9095
