"""The Grafana dashboard is valid JSON and asks only for metrics roomprobe writes.

A dashboard that names a metric nobody emits shows "No data" forever and nobody notices; so
every ``roomprobe_*`` name in a panel query must be one that metrics.py (or the per-probe
extractors it calls) can write, and the queries must parse as PromQL when promtool is there.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from reportkit import as_report

REPO = Path(__file__).resolve().parent.parent
DASHBOARD = REPO / "packaging" / "monitoring" / "grafana-dashboard.json"


def emitted() -> set[str]:
    """Every metric name the textfile writer can produce: its own add(...) calls and the
    measures' yields, read from the source (a name built at run time would be missed here)."""
    src = (REPO / "roomprobe/fleet/metrics.py").read_text()
    names = set(re.findall(r'add\(\s*"([a-z_]+)"', src))
    names |= set(re.findall(r'yield \(\s*"([a-z_]+)"', (REPO / "roomprobe/report/measures.py").read_text()))
    return {f"roomprobe_{n}" for n in names}


def exprs(dash: dict) -> list[str]:
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])] + [
        v["definition"] for v in dash["templating"]["list"] if "definition" in v]


def test_dashboard_is_json_and_only_uses_emitted_metrics():
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] and dash["title"] and dash["panels"]
    names = emitted()
    assert {"roomprobe_exit_code", "roomprobe_likely_code", "roomprobe_bandwidth_bytes_per_second"} <= names
    used = {m for e in exprs(dash) for m in re.findall(r"\broomprobe_[a-z_]+", e)}
    assert used and used <= names, sorted(used - names)
    # what the issue asks the dashboard to show
    assert "roomprobe_likely_code" in used and "roomprobe_bandwidth_bytes_per_second" in used
    assert any("rtt_seconds" in m for m in used)
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))


def test_likely_code_is_written_for_a_failing_room():
    from roomprobe.fleet.metrics import render

    report = {"targets": {"room": "10.0.0.20", "role": "controller-side"}, "probes": [],
              "findings": [{"id": "port-refused", "severity": "fail"}], "complete": True,
              "diagnosis": [{"product": "zoom-rooms", "code": 2002}], "started_at": "2026-01-01T00:00:00Z"}
    text = render(as_report(report), 2)
    assert re.search(r'roomprobe_likely_code\{[^}]*code="2002"[^}]*room="10.0.0.20"[^}]*\} 1\.0', text), text
    healthy = render(as_report({**report, "findings": [], "diagnosis": []}), 0)
    assert "roomprobe_likely_code{" not in healthy


def test_dashboard_queries_parse_as_promql(tmp_path):
    import shutil
    import subprocess

    import pytest

    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    queries = [e for e in exprs(json.loads(DASHBOARD.read_text())) if not e.startswith("label_values")]
    rules = tmp_path / "dash.rules.yml"
    rules.write_text("groups:\n  - name: dashboard\n    rules:\n" + "".join(
        f"      - record: dashboard:q{i}\n        expr: {json.dumps(q)}\n" for i, q in enumerate(queries)))
    r = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
