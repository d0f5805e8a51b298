"""The report and everything that renders it: the typed model, the one builder, the formats.

Lives here: ``model`` (the typed Report; dicts only at the JSON edge), ``build`` (the one
builder for check, path and each sweep room: status order, exit code, diagnosis, the JSON
Schema in ``schema/``), one module per format (``text``, ``jsonout``, ``nagios``, ``markdown``,
``html``), ``ticket`` (reading a saved report, the evidence rows a ticket shows), ``pathview``
(the path probe's hop table) and ``measures`` (the measured values metrics and perfdata share).
It reads results only: it never runs a probe or asks the OS (the command gathers the evidence
pack with ``roomprobe.host.evidence``).

May import: ``roomprobe.core``, ``roomprobe.diagnose`` and ``roomprobe.report``.
"""
