"""Running roomprobe unattended and across many rooms: history, metrics, alerts, schedules, sweeps.

Lives here: ``after_run`` (what a check does after its report: ``record`` history and the
textfile, then ``deliver`` the webhook after the verdict is printed), ``history`` (SQLite history
with retention; ``history_out`` prints it), ``metrics`` (Prometheus textfile), ``webhook`` (+
``outbox``: state-change alerts), ``schedule`` (systemd / Task Scheduler / launchd units),
``deploy`` (the machine config a scheduled check reads), ``sweep`` (many rooms at once; its
formats ``sweep_text``, ``sweep_json``, ``sweep_csv``, ``sweep_html`` on ``sweep_out``),
``exporter`` (``roomprobe exporter``: /probe for Prometheus, with ``exporter_probe``,
``exporter_modules``, ``webconfig`` and ``sd``). The peer it talks to (serve, its agent and
reflector) lives in ``roomprobe.peer``.

May import: every room but ``roomprobe.probes`` and ``roomprobe.commands``.
"""
