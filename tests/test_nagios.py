"""``--format nagios`` under hostile text: what Nagios parses must not depend on a room's name.

Nagios core splits plugin output at the first ``|`` of the first line and at the first ``|`` of
the long output (everything after it is perfdata), and at newlines; the plugin guidelines say a
perfdata label is single-quoted, writes ``'`` as ``''`` and holds no ``=``. Room names come from
an inventory or ``--room-name`` and messages quote servers, so these tests feed names with ``|``,
``;``, ``=``, quotes, newlines, control and non-ASCII characters and parse the result as Nagios
does.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from reportkit import as_report

from roomprobe.report import nagios

# One perfdata item per the guidelines: 'label'=value[UOM];[warn];[crit];[min];[max]
_PERF_ITEM = re.compile(r"'((?:[^'=]|'')+)'=(-?[0-9.]+)([a-zA-Z%]*)((?:;[-0-9.:~@]*){0,4})")
HOSTILE = st.text(alphabet=st.one_of(st.sampled_from(list("|;='\"\n\r\t \x00\x1b\u2028é漢🙂")),
                                     st.characters()), min_size=1, max_size=24)


def _report(name: str, probe_id: str = "dns"):  # type: ignore[no-untyped-def]
    return as_report({"room_name": name, "targets": {"room": "10.0.0.5"}, "duration_s": 1.5,
            "probes": [{"id": probe_id, "status": "fail", "duration_s": 0.2,
                        "summary": f"resolver {name} said no", "evidence": {}},
                       {"id": "subnet", "status": "pass", "duration_s": 0.1, "summary": "ok | fine"}],
            "findings": [{"severity": "fail", "message": f"room {name} is unhappy | very"}]})


def nagios_parse(out: str) -> tuple[str, list[str], str]:
    """(status line text, long-output lines, perfdata) the way Nagios core splits them."""
    lines = out.rstrip("\n").split("\n")
    first, _, perf = lines[0].partition("|")
    long_text, _, long_perf = "\n".join(lines[1:]).partition("|")
    return first.strip(), long_text.split("\n"), " ".join(p for p in (perf, long_perf) if p)


def perf_items(perf: str) -> list[tuple[str, str]]:
    """Every item of a perfdata string, or an AssertionError naming what does not parse."""
    items, pos, perf = [], 0, " ".join(perf.split())
    while pos < len(perf):
        m = _PERF_ITEM.match(perf, pos)
        assert m, f"not perfdata per the guidelines at {perf[pos:pos + 40]!r}"
        items.append((m.group(1).replace("''", "'"), m.group(2)))
        pos = m.end()
        assert pos == len(perf) or perf[pos] == " ", perf[pos:pos + 40]
        pos += 1
    return items


@settings(max_examples=150, deadline=None)
@given(name=HOSTILE)
def test_hostile_room_names_do_not_move_nagios_splits(name):
    out = nagios.render_nagios(_report(name), 2)
    assert all(c == "\n" or c.isprintable() for c in out), repr(out)
    first, long_lines, perf = nagios_parse(out)
    assert out.split("\n")[0] == first and "|" not in first  # perfdata lives in the long part
    assert first.startswith("CRITICAL - ") and len(first) < 80
    assert out.count("|") == 1  # the one separator we wrote
    assert len(long_lines) == 3  # the finding and two probes: no line was split by the name
    labels = [label for label, _ in perf_items(perf)]
    assert labels == ["duration", "dns_time", "subnet_time"]
    visible = " ".join(name.replace("|", "/").split())
    if visible.isprintable() and len(visible) <= 10:
        assert visible in first  # the name is still there, readable


@settings(max_examples=150, deadline=None)
@given(pid=HOSTILE)
def test_perfdata_labels_follow_the_guidelines(pid):
    out = nagios.render_nagios(_report("Room", probe_id=pid), 2)
    _, _, perf = nagios_parse(out)
    items = perf_items(perf)
    assert len(items) == 3
    label = items[1][0]
    assert "=" not in label and "|" not in label and label.endswith("_time")
    assert all(c.isprintable() and not c.isspace() for c in label)


def test_examples_by_hand():
    out = nagios.render_nagios(_report("Board|Room;A='x'\nB"), 2)
    assert out.splitlines()[0] == "CRITICAL - Board/Room;A='x' B: room Board/Room;A='x' B is unhappy / very"
    assert nagios._label("it's=a|b c") == "it''s_a/b_c"
    assert "|" not in nagios.usage_line("--room 'a|b'\nis not an address")
