"""Running roomprobe unattended across many rooms: history, metrics, alerts, schedules, the peer.

Lives here: ``after_run`` (what a check does after its report: history, textfile, webhook),
``history`` (SQLite history with retention), ``metrics`` (Prometheus textfile), ``webhook``
(state-change alerts), ``schedule`` (systemd / Task Scheduler / launchd units), ``serve``
(the ``roomprobe serve`` peer for LAN measurements), ``sweep``/``agent`` (many rooms at once),
``exporter`` (``roomprobe exporter``: /probe for Prometheus, with ``exporter_probe``,
``exporter_modules``, ``webconfig`` and ``sd``),
``servetls`` (serve --tls: its certificate).

May import: ``roomprobe.core``, ``roomprobe.net``, ``roomprobe.diagnose``, ``roomprobe.report``
and ``roomprobe.fleet``. Never commands.
"""
