"""Every rendering of every golden report, byte for byte as before the typed report.

tests/data/golden/README.md says where the reports and the expected outputs come from: the
outputs were written by the dict-based renderers, before the report became typed and the
formats one registry, so any byte that differs here is a change of behaviour.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

G = Path(__file__).parent / "data" / "golden"
INPUTS = sorted((G / "in").glob("*.json"))
EXPECTED = sorted(p.name for p in (G / "out").iterdir())


def _terminal(tty: bool):  # type: ignore[no-untyped-def]
    """A terminal as cli.py hands it down: a tty (colour welcome) or a pipe."""
    import io

    from roomprobe.core.output import Terminal

    return Terminal(stdout=io.StringIO(), stderr=io.StringIO(), stdout_tty=tty, stderr_tty=tty,
                    no_color=False)


def render_report(path: Path, tmp: Path) -> dict[str, str]:
    """One saved report through every format of the registry: {output file name: text}."""
    from roomprobe.commands import formats
    from roomprobe.core.output import RenderOptions
    from roomprobe.fleet import history as hist
    from roomprobe.fleet import metrics, webhook
    from roomprobe.report import build, ticket

    name = path.stem
    rep = ticket.load_report(str(path))
    code = int(build.exit_code(rep))
    pipe, tty = _terminal(False), _terminal(True)

    def fmt(fname: str, term=pipe, **opts: bool) -> str:  # type: ignore[no-untyped-def]
        return formats.render("report", fname, rep, RenderOptions(**opts), term)

    out = {
        f"{name}.check-text": fmt("text"),
        f"{name}.check-text-color-verbose": fmt("text", tty, verbose=True),
        f"{name}.check-json": fmt("json"),
        f"{name}.check-nagios": fmt("nagios"),
        f"{name}.report-text": fmt("text", tty, color=False, evidence_pack=True),
        f"{name}.report-text-verbose": fmt("text", tty, color=False, evidence_pack=True, verbose=True),
        f"{name}.report-markdown": fmt("markdown"),
        f"{name}.report-html": fmt("html"),
        f"{name}.prom": metrics.render(rep, code),
    }
    for wfmt in ("json", "slack", "teams"):
        body = webhook.render(wfmt, rep, code, "pass/0", "evt-1")
        out[f"{name}.webhook-{wfmt}"] = json.dumps(body, indent=2) + "\n"
    db = tmp / f"{name}.sqlite3"
    conn = hist.connect(db)
    hist.record(conn, rep, code, keep_days=0)
    conn.close()
    conn = hist.connect_readonly(db)
    data = {"db": "HISTORY.sqlite3", "runs": hist.runs(conn, limit=20), "changes": hist.changes(conn)}
    conn.close()
    out[f"{name}.history-text"] = formats.render("history", "text", data, term=pipe)
    out[f"{name}.history-json"] = formats.render("history", "json", data, term=pipe)
    return out


LINK = {"interface": "eth0", "network": "198.51.100.0/25"}
ICMP = {"icmp": "host-prohibited", "icmp_type": 3, "icmp_code": 10, "from": "198.51.100.22",
        "v6": False, "target": "198.51.100.22"}


def sweep_rooms():  # type: ignore[no-untyped-def]
    """Nine rooms, one of each port verdict the sweep words (open, reset, refused, rejected by
    ICMP, silent with and without ARP, no neighbour entry, this host's EPERM, unreachable)."""
    from roomprobe.fleet import sweep as sw

    a = sw.Attempt
    rooms = [sw.Room("198.51.100.20", name="Board | Room =1", controllers=("198.51.100.30",)),
             sw.Room("198.51.100.21", name="Open"), sw.Room("198.51.100.22"), sw.Room("198.51.100.23"),
             sw.Room("198.51.100.24", controllers=("203.0.113.5",)), sw.Room("198.51.100.25"),
             sw.Room("203.0.113.40", port=9091), sw.Room("198.51.100.26"), sw.Room("198.51.100.27")]
    attempts = {
        ("198.51.100.20", 9090): a("refused", "ECONNREFUSED", 0.4, waited_s=0.01),
        ("198.51.100.30", 9090): a("open", None, 0.3, waited_s=0.01, extra={"after": None}),
        ("198.51.100.21", 9090): a("open", None, 0.5, waited_s=0.02, extra={"after": None}),
        ("198.51.100.22", 9090): a("filtered", "EHOSTUNREACH", 0.4, waited_s=0.02,
                                   extra={"icmp": ICMP, "rejected": "host-prohibited",
                                          "detail": "rejected by a firewall: ICMP host-prohibited "
                                                    "from 198.51.100.22"}),
        ("198.51.100.23", 9090): a("filtered", "timeout", 0.0, waited_s=2.5,
                                   extra={"tries": 2, "srtt_ms": 0.4, "wait_s": 0.25}),
        ("198.51.100.24", 9090): a("open", None, 0.6, waited_s=0.02, extra={"after": "reset"}),
        ("203.0.113.5", 9090): a("filtered", "timeout", 0.0, waited_s=2.5, extra={"tries": 2}),
        ("198.51.100.25", 9090): a("unreachable", "EHOSTUNREACH", 3000.0, waited_s=3.0,
                                   extra={"no_neighbour": True,
                                          "detail": "no ARP answer: this host gave up on the neighbour"}),
        ("203.0.113.40", 9091): a("error", "EPERM", 0.0, waited_s=0.0),
        ("198.51.100.26", 9090): a("filtered", "timeout", 0.0, waited_s=2.5, extra={"tries": 1}),
        ("198.51.100.27", 9090): a("unreachable", "EHOSTUNREACH", 900.0, waited_s=0.9),
    }
    on_link = {addr: (LINK if addr.startswith("198.51.100.") else None) for addr, _ in attempts}
    neigh = {"198.51.100.23": {"mac": None, "state": "failed"},
             "198.51.100.26": {"state": "none", "mac": None},
             "198.51.100.27": {"mac": "02:00:00:00:00:27", "state": "reachable"}}
    return rooms, attempts, on_link, neigh


def _deep_outcomes(rooms):  # type: ignore[no-untyped-def]
    agent_rep = json.loads((G / "in" / "loopback-fail.json").read_text())
    outcomes = {(r.address, r.port): {"answered": False, "reason": "refused", "detail": "connection refused",
                                      "agent": f"{r.address}:9095", "duration_s": 0.1} for r in rooms}
    outcomes[("198.51.100.21", 9090)] = {"answered": True, "report": agent_rep, "agent": "198.51.100.21:9095",
                                         "exit_code": 2, "duration_s": 4.5}
    outcomes[("198.51.100.20", 9090)] = {
        "answered": True, "report": {**agent_rep, "status": "pass", "complete": True, "findings": []},
        "agent": "198.51.100.20:9095", "exit_code": 0, "duration_s": 1.5}
    return outcomes


def render_sweep() -> dict[str, str]:
    """The sweep of the nine rooms, then with --deep, through every sweep format."""
    from roomprobe.commands import formats
    from roomprobe.core.output import RenderOptions
    from roomprobe.fleet import metrics
    from roomprobe.fleet import sweep as sw
    from roomprobe.fleet.sweep_out import SweepView

    rooms, attempts, on_link, neigh = sweep_rooms()
    host = json.loads((G / "in" / "loopback-skip.json").read_text())["host"]
    reports = sw.sort_worst_first([sw.room_report(r, attempts, on_link, neigh, host, 2.5,
                                                  "2026-01-01T00:00:00Z") for r in rooms])
    deep = sw.deepen(reports, _deep_outcomes(rooms))
    pipe = _terminal(False)
    out: dict[str, str] = {}
    for name, reps, took in (("sweep", reports, 3.21), ("sweep-deep", deep, 9.87)):
        view = SweepView(reps, sw.summary(reps, took), "2026-01-01T00:00:00Z")
        for fname, ext in (("text", "text"), ("json", "json"), ("csv", "csv"), ("html", "html")):
            out[f"{name}.{ext}"] = formats.render("sweep", fname, view, term=pipe)
        formats.emit("sweep", "json", view, term=pipe)  # the streamed JSON is the same document
        assert pipe.stdout.getvalue() == out[f"{name}.json"]
        pipe.stdout.truncate(0)
        pipe.stdout.seek(0)
        out[f"{name}.prom"] = metrics.render_many([(r, sw.exit_of(r)) for r in reps])
    for r in deep[:3]:
        n = f"sweep-room-{r.targets.room}"
        out[f"{n}.check-text"] = formats.render("report", "text", r, RenderOptions(verbose=True), pipe)
        out[f"{n}.check-nagios"] = formats.render("report", "nagios", r, term=pipe)
        out[f"{n}.report-markdown"] = formats.render("report", "markdown", r, term=pipe)
    return out


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("golden")
    out: dict[str, str] = {}
    for path in INPUTS:
        out.update(render_report(path, tmp))
    out.update(render_sweep())
    return out


def test_every_golden_output_is_rendered(rendered: dict[str, str]) -> None:
    assert sorted(rendered) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_rendering_is_byte_identical(rendered: dict[str, str], name: str) -> None:
    want = (G / "out" / name).read_bytes().decode("utf-8")
    assert rendered.get(name) == want, f"{name} differs from the golden output"


CP_ICMP = {"icmp": "host-prohibited", "icmp_type": 3, "icmp_code": 10, "from": "198.51.100.20", "v6": False}
CP_CASES = {
    "refused": {"state": "refused", "error": "ECONNREFUSED", "ms": 0.4},
    "filtered": {"state": "filtered", "error": "timeout", "ms": 0.0},
    "rejected": {"state": "filtered", "error": "EHOSTUNREACH", "ms": 0.4, **CP_ICMP, "rejected": "host-prohibited",
                 "detail": "rejected by a firewall: ICMP host-prohibited from 198.51.100.20"},
    "unreachable": {"state": "unreachable", "error": "EHOSTUNREACH", "ms": 3000.0, "icmp": "host-unreachable",
                    "detail": "no route"},
    "open-reset": {"state": "open", "error": None, "ms": 0.6, "after": "reset", "watched_s": 0.01},
    "open-closed": {"state": "open", "error": None, "ms": 0.6, "after": "closed", "watched_s": 0.01},
}


def test_controller_port_words_its_findings_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe's findings (worded in net/portfindings.py since the sweep shares them) for every
    verdict, as the probe worded them itself before (probe/controller-port-findings.json)."""
    import time

    from roomprobe.probes import controller_port as cp

    from roomprobe.core.probe import Context, Targets

    monkeypatch.setattr(cp.osnet, "interface_for_peer", lambda addr: None)
    got = {}
    for name, attempt in CP_CASES.items():
        monkeypatch.setattr(cp, "tcp_state", lambda *a, _att=attempt, **k: dict(_att))
        ctx = Context(targets=Targets(room="198.51.100.20", role="controller-side"), options=cp.PROBE.options(),
                      deadline=time.monotonic() + 60, privileged=False)
        r = cp._controller_side(ctx, "198.51.100.20", 9090)
        got[name] = {"status": r.status.value, "reason": r.reason,
                     "summary": r.summary.split(" (no answer for")[0],
                     "evidence": {k: v for k, v in r.evidence.items() if k not in ("waited_s", "timeout_s")},
                     "findings": [f.to_dict() for f in r.findings]}
    assert json.dumps(got, indent=2) + "\n" == (G / "probe" / "controller-port-findings.json").read_text("utf-8")
