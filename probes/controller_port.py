"""controller-port: can the controller open TCP 9090 (configurable) to the room?

From the controller side: is room:9090 open/refused/filtered/unreachable. On the room: who listens
on 9090, and is it reachable on the LAN address.

Checks, from the controller side (``--room ADDR``): a TCP connect to room:9090
(roomprobe/net/tcpconnect.py classifies it), then half a second's watch of the open connection.
  open        the room accepts and holds the connection: the path works
  open, then reset/closed by the peer   the handshake completed (the port is open, as nmap says),
              but the service dropped the connection at once: WARN (port-open-dropped)
  refused     the host answered with a reset: up, but nothing listens (Zoom Rooms not running)
  filtered    no answer at all: a firewall or security software drops it; or a firewall REJECTS
              it with ICMP (admin-/host-/net-prohibited, or a port-unreachable, which no TCP
              stack sends for a closed port): port-rejected, naming the ICMP and its sender
  unreachable no route, or the room does not answer ARP: host down or isolated
Checks, on the room (``--controller ADDR``, or ``--room`` one of our own addresses): is anything
listening on 9090, which process owns it (a process other than Zoom Rooms is a port conflict),
is it bound to loopback only, and does a connection to our own LAN address on 9090 succeed.
How: plain sockets and psutil. A timed-out connect is told apart from a dead host by the OS
neighbour table: no ARP answer for an on-link peer means unreachable, not filtered.
Concludes: anything but open/listening-by-Zoom-Rooms is a failure with its own finding.
PASS proves, controller side: the room completed a TCP handshake on the port (``open``) and
did not reset or close it within the watch.
Room side: a process listens on the port on a non-loopback address (psutil), is not a known
other program, and, when this room's LAN address is known, a connection to it was accepted;
it does not prove the network path from the controller (run from the controller side for that).
The connect waits ``connect_timeout``, planned inside the time left (``Context.plan``), and
silence for that whole wait is ``filtered`` with the seconds waited (docs/probes.md).
Not measured is ``error``, never PASS: a connect the deadline left too short a wait to judge
(``silence_measured``: silence that short proves nothing), this host's own firewall refusing
to send (EPERM: the path was never tried), or no way to see the listeners or to connect.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from roomprobe.core.probe import Context, Finding, Probe, Result, Severity, Status, described, silence_measured
from roomprobe.host import osnet
from roomprobe.net.portfindings import CONTROLLER, open_dropped_finding, port_finding
from roomprobe.net.tcpconnect import AFTER_WORDS, LOCAL_BLOCK, WATCH_S, arp_proves_reject, connect_state


@dataclass(frozen=True)
class Options:
    """The controller-port probe's options: ``[probes.controller-port]`` in the config file, ``--set``."""

    connect_timeout: float = 2.5
    # Process names of the Zoom Rooms app (Windows, macOS); matched case-insensitively.
    zoom_rooms_processes: tuple[str, ...] = ("ZoomRooms.exe", "ZoomRooms", "ZoomPresence", "Zoom Rooms")

def tcp_state(addr: str, port: int, timeout: float, watch: float = 0.0) -> dict[str, Any]:
    """Connect once; classify as open | refused | filtered | unreachable, with timing and errno
    (and, with ``watch``, whether the peer reset or closed the open connection at once)."""
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    return connect_state(family, (addr, port), timeout, watch)


def _controller_side(ctx: Context, room: str, port: int) -> Result:
    wanted = float(ctx.options.connect_timeout)
    wait = ctx.plan(wanted)  # inside the time left, so silence is waited out and concluded on
    attempt = tcp_state(room, port, wait, watch=ctx.budget(WATCH_S))
    evidence: dict[str, Any] = {"side": "controller", "room": room, "port": port, **attempt,
                                "timeout_s": wanted, "waited_s": round(wait, 2)}
    on_link = osnet.interface_for_peer(room)
    evidence["on_link"] = on_link is not None
    if attempt["state"] == "unreachable" and on_link is not None and "icmp" not in attempt:
        # The OS said EHOSTUNREACH and cannot tell us which ICMP (no error queue here): an
        # ARP answer in the neighbour table proves the room is there, so it was a reject.
        neigh = osnet.neighbor(room)
        evidence["neighbor"] = neigh
        evidence.update(arp_proves_reject(attempt["error"], neigh) or {})
    if attempt["state"] == "filtered" and attempt["error"] == "timeout" and on_link is not None:
        neigh = osnet.neighbor(room)
        evidence["neighbor"] = neigh
        if neigh is not None and neigh.get("state") == "none":
            # A SYN to an on-link room that left this host would have made the OS ask ARP: no
            # neighbour entry at all means nothing was sent (a local firewall dropped it).
            return Result.unmeasured(
                "blocked-locally", f"no packet to {room}:{port} left this host (the OS never "
                "asked ARP for the room): this host's firewall drops it, so the path to the room "
                f"was not tested: allow outbound TCP {port} here and run again", evidence)
        if neigh is not None and not neigh.get("mac"):
            evidence.update(state="unreachable", why="no ARP answer from the room")
    if attempt["state"] == "error" and attempt["error"] in LOCAL_BLOCK:
        return Result.unmeasured(
            "blocked-locally", f"this host's firewall refused to send to {room}:{port} "
            f"({attempt['error']}), so the path to the room was not tested: allow outbound TCP "
            f"{port} here and run again", evidence)
    if attempt["state"] == "error":
        return Result.unmeasured("connect-error", f"connect to {room}:{port} failed: "
                                 f"{attempt['error']}", evidence)
    state = evidence["state"]
    if state == "filtered" and attempt["error"] == "timeout" and not silence_measured(wait, wanted):
        return Result.unmeasured(
            "deadline", f"no answer from {room}:{port} in {wait:.2f} s, but the deadline left "
            f"too short a wait to judge silence (controller-port.connect_timeout {wanted} s): "
            "run with a longer --timeout", evidence)
    after = attempt.get("after")
    if state == "open" and after in ("reset", "closed"):
        said = AFTER_WORDS[after]
        return Result(Status.WARN, "port-open-dropped", f"{room}:{port} is {said} "
                      f"({attempt['ms']} ms)", evidence,
                      [open_dropped_finding(room, port, after, attempt.get("error"), CONTROLLER)])
    if state == "open":
        return Result.passed("open", f"{room}:{port} is open ({attempt['ms']} ms)", evidence,
                             {"handshake": "completed", "room": room, "port": port,
                              "ms": attempt["ms"], "held_s": attempt.get("watched_s")})
    rejected = evidence.get("rejected")
    silent = {"timeout": f"no answer for {wait:.2f} s", None: ""}
    why = evidence.get("why") or evidence.get("detail") or silent.get(attempt["error"], attempt["error"])
    finding = port_finding("rejected" if rejected else state, room, port, why,
                           {"room": room, "port": port, "state": state, "error": attempt["error"],
                            **({"rejected": rejected, "icmp": evidence.get("icmp")} if rejected
                               else {})}, CONTROLLER)
    return Result(Status.FAIL, finding.id, f"{room}:{port} is {state} ({why or attempt['ms']})",
                  evidence, [finding])


def listeners(port: int) -> list[dict[str, Any]]:
    """TCP sockets listening on ``port``: address and owning process (when the OS tells us)."""
    import psutil

    out = []
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status != psutil.CONN_LISTEN or not conn.laddr or conn.laddr.port != port:
            continue
        name = None
        if conn.pid:
            try:
                name = psutil.Process(conn.pid).name()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                name = None
        out.append({"address": conn.laddr.ip, "pid": conn.pid, "process": name})
    return out


def _is_zoom_rooms(name: str | None, names: list[str]) -> bool | None:
    if name is None:
        return None
    return any(name.lower() == n.lower() or name.lower().startswith(n.lower().removesuffix(".exe"))
               for n in names)


def _room_side(ctx: Context, port: int) -> Result:
    lan = ctx.targets.room if ctx.targets.room else (
        osnet.source_address(ctx.targets.controller) if ctx.targets.controller else None)
    evidence: dict[str, Any] = {"side": "room", "port": port, "lan_address": lan}
    try:
        socks = listeners(port)
        evidence["listeners"] = socks
    except Exception as exc:  # psutil.AccessDenied on macOS without root, and the like
        socks = None
        evidence["listeners_error"] = f"{type(exc).__name__}: {exc}"
    if lan:
        wait = ctx.budget(1.0)
        evidence["self_connect"] = {**tcp_state(lan, port, wait), "waited_s": round(wait, 2)}
        if evidence["self_connect"]["state"] == "filtered" and wait < 0.99:
            evidence["self_connect"]["cut_short"] = True

    findings: list[Finding] = []
    if socks == [] or (socks is None and evidence.get("self_connect", {}).get("state") == "refused"):
        evidence["state"] = "not-listening"
        return Result(Status.FAIL, "port-not-listening", f"nothing listens on TCP {port}", evidence, [
            Finding("port-not-listening", Severity.FAIL,
                    f"Nothing on this room listens on TCP {port}: the controller cannot connect.",
                    {"port": port},
                    hint="Start the Zoom Rooms app (it listens on this port once signed in).")])
    evidence["state"] = "listening"
    names = list(ctx.options.zoom_rooms_processes)
    owners = {(s["pid"], s["process"]) for s in socks or []}
    others = [{"pid": pid, "process": name} for pid, name in owners
              if _is_zoom_rooms(name, names) is False]
    if others:
        who = ", ".join(f"{o['process']} (pid {o['pid']})" for o in others)
        findings.append(Finding(
            "port-conflict", Severity.FAIL,
            f"TCP {port} is held by {who}, not by Zoom Rooms: a port conflict.",
            {"port": port, "holders": others, "zoom_rooms_processes": names},
            hint=f"Stop or reconfigure {who} so that Zoom Rooms can listen on {port}, then "
                 "restart Zoom Rooms."))
    if socks and all(_is_loopback(s["address"]) for s in socks):
        findings.append(Finding(
            "port-loopback-only", Severity.FAIL,
            f"TCP {port} listens only on loopback ({', '.join(s['address'] for s in socks)}): "
            "the controller cannot reach it over the network.",
            {"port": port, "addresses": [s["address"] for s in socks]},
            hint="Check the room's proxy/VPN settings (a room that shows as 127.0.0.1) and "
                 "restart Zoom Rooms."))
    selfc = evidence.get("self_connect", {}).get("state")
    self_error = evidence.get("self_connect", {}).get("error")
    if selfc == "error" and self_error in LOCAL_BLOCK:
        selfc = "filtered"  # this host's own firewall refuses the connection: a block
    unmeasured = bool(evidence.get("self_connect", {}).get("cut_short") or selfc == "error"
                      or (socks is None and selfc is None))
    if selfc and selfc != "open" and not findings and not unmeasured:
        fid = {"refused": "port-refused", "filtered": "port-filtered"}.get(selfc, "port-unreachable")
        findings.append(Finding(
            fid, Severity.FAIL,
            f"A connection to this room's own address {lan}:{port} is {selfc}: local security "
            "software or the host firewall blocks it.", {"port": port, "lan_address": lan,
                                                          "state": selfc},
            hint=f"Allow inbound TCP {port} for Zoom Rooms in the firewall/security software."))
    owner = ", ".join(sorted({str(s["process"]) for s in socks or []})) or "unknown process"
    if findings:
        return Result(Status.FAIL, findings[0].id, f"TCP {port}: {findings[0].message}", evidence,
                      findings)
    if unmeasured:
        why = ("the deadline cut the connection to our own address short" if selfc == "filtered"
               else f"connecting to our own address failed ({self_error})" if selfc == "error"
               else "the listening sockets could not be read and no LAN address to connect to")
        return Result.unmeasured("not-measured", f"could not tell whether TCP {port} accepts "
                                 f"connections: {why}", evidence)
    note = "" if selfc is None else f"; {lan}:{port} {selfc} from here"
    proof: dict[str, Any] = {"listeners": [s["address"] for s in socks or []
                                           if not _is_loopback(s["address"])]}
    if selfc == "open":
        proof["self_connect"] = f"{lan}:{port} accepted"
    return Result.passed("listening", f"TCP {port} is listening ({owner}){note}", evidence, proof)


def _is_loopback(addr: str) -> bool:
    return addr.startswith("127.") or addr == "::1"


def run(ctx: Context) -> Result:
    port = ctx.targets.port
    if ctx.targets.role == "controller-side":
        assert ctx.targets.room is not None
        return _controller_side(ctx, ctx.targets.room, port)
    return _room_side(ctx, port)


PROBE = Probe("controller-port", "Controller to room on TCP 9090", run, needs=("role",), timeout_s=3.5,
              options=Options, description=described(__doc__))
