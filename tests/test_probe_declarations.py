"""The built-in probes' declarations: what ``roomprobe probes`` shows of each (title, needs,
timeout, defaults, description) is the published text. The descriptions now come from each probe
module's docstring (its second paragraph, ``core.probe.described``), so an edit there changes
what users read: this compares them with the saved declarations (tests/data/), taken from
``roomprobe probes --format json`` before the declarations were shortened."""

from __future__ import annotations

import json
from pathlib import Path

from roomprobe.core.probe import described
from roomprobe.core.registry import load_probes

SAVED = json.loads((Path(__file__).parent / "data" / "probe_declarations.json").read_text(encoding="utf-8"))


def test_every_builtin_probe_declares_what_it_always_did():
    seen = {p.id: {"title": p.title, "needs": list(p.needs), "timeout_s": p.timeout_s,
                   "default_enabled": p.default_enabled, "long_running": p.long_running,
                   "description": p.description}
            for p in load_probes().values() if p.id in SAVED}
    assert seen == SAVED


def test_described_takes_the_paragraph_after_the_question():
    doc = "dns: can this room resolve?\n\nResolves names\n  through each resolver.\n\nHow: ...\n"
    assert described(doc) == "Resolves names through each resolver."
    assert described("only a question") == "" and described(None) == ""
