"""Fleet exports in the lab: a room whose Zoom Rooms listener dies and comes back, seen from
the controller, through the history ("what changed") and the Prometheus textfile."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.lab


def test_history_and_textfile_follow_a_fault_and_its_fix(lab, tmp_path):
    room = lab.add_host("room", "lan", 20)
    ctrl = lab.add_host("ctrl", "lan", 30)
    db, prom = str(tmp_path / "h.sqlite3"), tmp_path / "roomprobe.prom"
    flags = ["--room", room.addr, "--format", "json", "--history-db", db, "--prometheus-textfile", str(prom)]

    listener = room.listen(9090, comm="ZoomRooms")
    healthy = ctrl.roomprobe("check", *flags)
    assert healthy.rc == 0, healthy.stdout + healthy.stderr
    fam = {f.name: f.samples for f in text_string_to_metric_families(prom.read_text())}
    [lat] = fam["roomprobe_controller_port_connect_seconds"]
    measured_ms = healthy.probe("controller-port")["evidence"]["ms"]
    assert lat.value == pytest.approx(measured_ms / 1000)
    assert lat.labels["room"] == room.addr and lat.labels["target"] == room.addr

    listener.kill()
    listener.wait()
    broken = ctrl.roomprobe("check", *flags)
    assert broken.rc == 2 and broken.probe("controller-port")["evidence"]["state"] == "refused"
    assert "port-refused" in broken.finding_ids(), broken.finding_ids()
    fam = {f.name: f.samples for f in text_string_to_metric_families(prom.read_text())}
    assert [s.value for s in fam["roomprobe_exit_code"]] == [2.0]
    status = {s.labels["status"]: s.value for s in fam["roomprobe_probe_status"]
              if s.labels["probe"] == "controller-port"}
    assert status["fail"] == 1.0 and status["pass"] == 0.0

    out = ctrl.run(["env", "ROOMPROBE_CONFIG=/dev/null", *_py(), "history", "--history-db", db,
                    "--format", "json"])
    changes = json.loads(out.stdout)["changes"]
    new = {f["id"] for f in changes["new"]}
    assert new == broken.finding_ids() and new, changes
    assert changes["baseline"]["status"] == "pass" and changes["unhealthy_since"] == broken.report["started_at"]

    room.listen(9090, comm="ZoomRooms")
    fixed = ctrl.roomprobe("check", *flags)
    assert fixed.rc == 0
    out = ctrl.run(["env", "ROOMPROBE_CONFIG=/dev/null", *_py(), "history", "--history-db", db])
    assert "cleared" in out.stdout and all(f in out.stdout for f in new), out.stdout


def _py() -> list[str]:
    import sys

    return [sys.executable, "-m", "roomprobe"]
