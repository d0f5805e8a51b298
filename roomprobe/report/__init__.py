"""The report and everything that renders it: build, schema, text, markdown, html, ticket.

Lives here: ``build`` (the report dict from probe runs, its JSON Schema in ``schema/``, exit
codes), ``text``/``markdown``/``html`` (renderers), ``ticket`` (reading a saved report, the
evidence rows a ticket shows), ``evidence`` (the ticket's evidence pack: room name, app
version, time zone, window). It reads results only: it never runs a probe.

May import: ``roomprobe.core``, ``roomprobe.diagnose`` and ``roomprobe.report``.
"""
