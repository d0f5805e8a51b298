"""sweep --deep in the lab: two rooms run ``roomprobe serve --agent``, one room runs nothing on
its peer port, one runs a plain ``serve`` (no --agent). The agents' checks use
``--deep-only interfaces,subnet,controller-port`` so nothing leaves the lab.

Asserted per room: the agent's report kept under ``deep`` is the room's own check (its probes,
run in the room's namespace, with the room's controller), its findings joined the room's, the
status is the worse of the two; and the rooms without an agent are ``unknown`` for the deep
part with the reason (refused, not-an-agent), never PASS.
"""

from __future__ import annotations

import json
import subprocess
from html.parser import HTMLParser

import pytest

pytestmark = pytest.mark.lab

TOKEN = "lab-agent-token-1"
RANK = {"fail": 0, "unknown": 1, "warn": 2, "pass": 3}


def start_serve(host, *extra: str) -> subprocess.Popen:
    return host.serve(TOKEN, *extra)[0]


@pytest.fixture
def deep(lab, tmp_path):
    tech = lab.add_host("tech", "lan", 10)
    ctrl = lab.add_host("ctrl", "lan", 30)
    zoom = lab.add_host("roomz", "lan", 21)  # agent; a process named ZoomRooms listens on 9090
    bare = lab.add_host("roomb", "lan", 22)  # agent; nothing on 9090: the room's check sees it
    none = lab.add_host("roomn", "lan", 23)  # no agent at all: its peer port is refused
    plain = lab.add_host("roomp", "lan", 24)  # a plain serve, without --agent
    zoom.listen(9090)  # serve --port 9090 would be a python process: the room's check says so
    start_serve(zoom, "--agent")
    start_serve(bare, "--agent")
    start_serve(plain)
    inv = tmp_path / "rooms.csv"
    inv.write_text("name,address,controller,peer\n"
                   f"Zoom up,{zoom.addr},{ctrl.addr},{zoom.addr}\n"
                   f"Zoom down,{bare.addr},{ctrl.addr},{bare.addr}:9095\n"
                   f"No agent,{none.addr},{ctrl.addr},{none.addr}\n"
                   f"Plain serve,{plain.addr},,{plain.addr}\n")
    page = tmp_path / "rooms.html"
    run = tech.roomprobe("sweep", str(inv), "--deep", "--deep-only",
                         "interfaces,subnet,controller-port", "--deep-timeout", "5", "--timeout", "2",
                         "--format", "json", "--html", str(page), env={"ROOMPROBE_PEER_TOKEN": TOKEN},
                         timeout=120)
    data = json.loads(run.stdout)
    text = tech.roomprobe("sweep", str(inv), "--deep", "--peer-token", TOKEN, "--deep-only",
                          "interfaces", timeout=120)
    wrong = tech.roomprobe("sweep", str(inv), "--deep", "--peer-token",
                           "not-the-token-0", "--deep-only", "interfaces", "--format", "json",
                           timeout=120)
    return {"run": run, "data": data, "text": text, "wrong": wrong, "html": page.read_text(),
            "rooms": {r["room_name"]: r for r in data["rooms"]},
            "addr": {"zoom": zoom.addr, "bare": bare.addr, "ctrl": ctrl.addr}}


def test_agents_reports_are_the_rooms_own_checks_merged_in(deep):
    import jsonschema

    from roomprobe.report.build import load_schema

    run, rooms = deep["run"], deep["rooms"]
    assert "Traceback" not in run.stderr
    schema = load_schema()
    for rep in rooms.values():  # merged reports stay v1
        jsonschema.validate(rep, schema)
    from roomprobe.report.build import schema_validator

    schema_validator("sweep-v1").validate(deep["data"])  # and the whole output is sweep v1
    schema_validator("sweep-v1").validate(json.loads(deep["wrong"].stdout))
    for name, addr in (("Zoom up", deep["addr"]["zoom"]), ("Zoom down", deep["addr"]["bare"])):
        rep = rooms[name]
        d = rep["deep"]
        assert d["answered"] is True and d["reason"] == "answered", d
        own = d["report"]
        assert own["schema"] == "roomprobe/report/v1"
        assert [p["id"] for p in own["probes"]] == ["interfaces", "subnet", "controller-port"]
        assert own["targets"]["controller"] == deep["addr"]["ctrl"]  # the inventory's controller
        # measured in the room's namespace: its interfaces carry the room's address
        assert addr in json.dumps(own["probes"][0]["evidence"])
        # merged: every finding of the room's own check is in the room's findings, tagged
        agent_findings = [f for f in rep["findings"] if f["evidence"].get("via") == "agent"]
        assert [f["id"] for f in agent_findings] == [f["id"] for f in own["findings"]]
        # the status is the worse of the sweep's own probes and the room's check
        sweep_part = [p["status"] for p in rep["probes"] if p["id"] != "deep"]
        deep_probe = next(p for p in rep["probes"] if p["id"] == "deep")
        assert deep_probe["status"] == own["status"]
        worst = min([{"error": "unknown", "skip": "pass"}.get(s, s) for s in sweep_part]
                    + [own["status"]], key=RANK.__getitem__)
        assert rep["status"] == worst


def test_the_rooms_own_check_sees_what_the_sweep_cannot(deep):
    """Room 'Zoom down': the sweep sees 9090 refused; the room's own check names why (nothing
    listens on 9090 there) as its own controller-port finding, and the room fails."""
    rep = deep["rooms"]["Zoom down"]
    own = {p["id"]: p for p in rep["deep"]["report"]["probes"]}
    assert rep["sweep"]["state"] == "refused"
    assert own["controller-port"]["status"] == "fail", own["controller-port"]
    assert any(f["evidence"].get("via") == "agent" and f["probe"] == "controller-port" for f in rep["findings"])
    assert rep["status"] == "fail" and rep["sweep"]["likely_code"]
    up = deep["rooms"]["Zoom up"]
    assert up["sweep"]["state"] == "open"
    cp = {p["id"]: p for p in up["deep"]["report"]["probes"]}["controller-port"]
    assert cp["status"] == "pass", json.dumps(cp)[:1500]  # ZoomRooms holds 9090, on the room


def test_rooms_without_an_agent_are_unknown_for_the_deep_part_never_pass(deep):
    rooms = deep["rooms"]
    for name, reason in (("No agent", "refused"), ("Plain serve", "not-an-agent")):
        rep = rooms[name]
        assert rep["deep"] == {**rep["deep"], "answered": False, "status": "unknown", "reason": reason}
        assert rep["deep"]["report"] is None
        assert next(p for p in rep["probes"] if p["id"] == "deep")["status"] == "error"
        assert rep["status"] in ("unknown", "fail") and rep["complete"] is False
    # "Plain serve" is up and its 9090 is only refused by the sweep: without the deep part it
    # would be a plain fail; "No agent" likewise. Neither may read PASS anywhere.
    assert deep["data"]["summary"]["by_deep"] == {"answered": 2, "not-an-agent": 1, "refused": 1}
    assert deep["run"].rc == 2  # the worst room fails


def test_text_table_names_the_deep_part_per_room(deep):
    out = deep["text"].stdout
    assert "DEEP" in out.splitlines()[0]
    line = {name: ln for ln in out.splitlines()[1:5]
            for name in ("Zoom up", "Zoom down", "No agent", "Plain serve") if f"  {name}  " in ln}
    assert "unknown (refused)" in line["No agent"]
    assert "unknown (not-an-agent)" in line["Plain serve"]
    assert "--deep: 2 of 4 rooms' agents answered" in out


class _Rows(HTMLParser):
    """The sweep page's header cells and each room's first row, as text."""

    def __init__(self) -> None:
        super().__init__()
        self.head: list[str] = []
        self.rows: list[list[str]] = []
        self._cell: str | None = None
        self._where = ""

    def handle_starttag(self, tag, attrs):
        if tag == "thead":
            self._where = "head"
        elif tag == "tbody":
            self._where = "body"
            self.rows.append([])
        elif tag in ("th", "td") and dict(attrs).get("colspan") is None:
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self._cell is not None:
            (self.head if self._where == "head" else self.rows[-1]).append(self._cell.strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def test_html_page_has_a_deep_column(deep):
    page = _Rows()
    page.feed(deep["html"])
    assert "Deep" in page.head, page.head
    col, room = page.head.index("Deep"), page.head.index("Room")
    cells = {r[room]: r[col] for r in page.rows}
    assert cells["No agent"] == "unknown (refused)" and cells["Plain serve"] == "unknown (not-an-agent)"
    assert cells["Zoom down"] == deep["rooms"]["Zoom down"]["deep"]["status"] == "fail", cells
    assert cells["Zoom up"] == deep["rooms"]["Zoom up"]["deep"]["status"], cells


def test_a_wrong_token_is_named_per_room(deep):
    data = json.loads(deep["wrong"].stdout)
    rooms = {r["targets"]["room"]: r for r in data["rooms"]}
    z = rooms[deep["addr"]["zoom"]]
    assert z["deep"]["reason"] == "wrong-token" and z["status"] != "pass"
    assert "not-the-token-0" not in deep["wrong"].stdout  # the token is never printed
