"""The probe core: the contract every probe follows, the runner, the registry, targets, settings.

Lives here: ``probe`` (Probe, Context, Result, Finding, Status), ``runner`` (threads, timeouts,
the one deadline), ``registry`` (the ``roomprobe.probes`` entry points), ``targets`` (who we
test against), ``settings`` (defaults <- file <- ``--set`` <- flags, typed and validated in
one place), ``errors`` (exit codes, UsageError), ``fsutil`` (atomic writes), ``redact``
(secrets out of everything we show or store), ``selfexec`` (the isolated command line of a
child that is roomprobe itself), ``oscmd`` (one way to run an OS command), ``threads`` (every
background thread guarded; the one "run these at once, up to a deadline" helper), ``proxyurl``
(the one proxy URL parser) and ``output`` (the Terminal made once by the CLI, and the Format
contract every output format follows).

May import: the standard library and ``roomprobe.core`` only. Everything else builds on it.
"""
