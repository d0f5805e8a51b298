"""What a controller-port verdict means, in words: the one wording of its findings.

tcpconnect.py judges a connect (open, refused, filtered, rejected, unreachable, open then
dropped); this module says what each verdict means for a controller and a room, and what to do.
Two callers stand in different places and say so: the controller-port probe runs on the
controller (``CONTROLLER``), the sweep runs on a third host standing where a controller would
(``SWEEP``: "from this host"). Everything else in the wording is shared, so a fix to a message
or a hint reaches both (fleet may not import probes; both may import net).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from roomprobe.core.probe import Finding, Severity


@dataclass(frozen=True)
class Vantage:
    """Where the connect was made from, as the messages put it."""

    no_answer: str  # after "gets no answer"
    rejected: str  # between "the room {peer}" and "is {why}"
    unreachable: str  # "cannot be reached {...}"
    unreachable_hint: str  # how "Check the room is powered and on the network" ends
    reaches: str  # who "reaches the port" when the room drops the session
    look: str  # how to look on the room
    refuses: str  # whom a Zoom Rooms may refuse


CONTROLLER = Vantage(
    no_answer="", rejected="", unreachable="at all",
    unreachable_hint=", the address is right, and both devices are on the same network/VLAN "
                     "without client isolation.",
    reaches="the controller", look="(run roomprobe there)", refuses="this controller (re-pair it)")
SWEEP = Vantage(
    no_answer=" from this host", rejected=", from this host,", unreachable="from this host",
    unreachable_hint=", and the address is right.",
    reaches="a controller", look="('roomprobe check' there)", refuses="this host")

# state (or "rejected") -> (finding id, message, hint); {peer} {port} {why} and the vantage's words
_FINDINGS = {
    "refused": ("port-refused", "The room {peer} is up but nothing accepts TCP {port}: Zoom Rooms "
                "is not running or not listening.",
                "Start (or restart) the Zoom Rooms app on the room PC; if it runs, look for "
                "another program holding the port (run roomprobe on the room)."),
    "filtered": ("port-filtered", "TCP {port} to the room {peer} gets no answer{v.no_answer}: a "
                 "firewall or security software on the path or on the room drops it.",
                 "Allow inbound TCP {port} on the room's firewall and security software, and "
                 "between controller and room on the network."),
    "rejected": ("port-rejected", "TCP {port} to the room {peer}{v.rejected} is {why}.",
                 "Allow inbound TCP {port} on the room's firewall (firewalld, iptables, Windows "
                 "Firewall, security software) and on any firewall between controller and room; "
                 "the ICMP's sender is the device that rejects it (a firewall on the way can also "
                 "send it in the room's name)."),
    "unreachable": ("port-unreachable", "The room {peer} cannot be reached {v.unreachable} ({why}).",
                    "Check the room is powered and on the network{v.unreachable_hint}"),
}


def port_finding(kind: str, peer: str, port: int, why: str, evidence: dict[str, Any],
                 vantage: Vantage, probe: str = "") -> Finding:
    """The FAIL finding of a closed port: ``kind`` is refused | filtered | rejected | unreachable."""
    fid, msg, hint = _FINDINGS[kind]
    words = {"peer": peer, "port": port, "why": why, "v": vantage}
    return Finding(fid, Severity.FAIL, msg.format(**words), evidence, hint=hint.format(**words),
                   probe=probe)


def open_dropped_finding(peer: str, port: int, after: str, error: str | None, vantage: Vantage,
                         probe: str = "") -> Finding:
    """The WARN finding of a port that completed the handshake, then reset or closed at once."""
    return Finding(
        "port-open-dropped", Severity.WARN,
        f"TCP {port} on the room {peer} is open (the handshake completed) but the connection was "
        f"{after} at once by the room or something in its name: {vantage.reaches} reaches the "
        "port, yet its session with Zoom Rooms would drop the same way.",
        {"room": peer, "port": port, "state": "open", "after": after, "error": error},
        hint=f"Look on the room for what owns TCP {port} {vantage.look}: endpoint security or "
             "another service that accepts and drops connections, or a Zoom Rooms that refuses "
             f"{vantage.refuses}; allow the controller in the security software.",
        probe=probe)
