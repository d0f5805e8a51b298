"""``roomprobe sweep``: every room's TCP 9090 state and reachability at once, from one host.

Why a sweep and not N checks: a technician's laptop or a monitoring host looks after dozens to
thousands of rooms; one ``check`` per room costs a process start, the deadline and the quick
probes each time, and a black-holed room holds its check for the whole timeout. Here every
room's connect runs at once (non-blocking sockets, bounded concurrency), and silence is judged
from the round trips of the rooms that answer, with one retransmission (roomprobe/net/tcpsweep.py),
so 1000 rooms on a LAN take under a second of connects, faster than ``nmap -T4 -p 9090``.

What is measured per room, from THIS host only:
  controller-port  TCP connect to room:port, classified like every probe does
                   (roomprobe/net/tcpconnect.judge): open/refused/filtered/unreachable. On Linux
                   the ICMP behind a failure is read (IP_RECVERR): a firewall's reject
                   (admin-/host-prohibited, or a port-unreachable no TCP stack sends) is
                   ``filtered`` with the ICMP and its sender named (port-rejected), never an ARP
                   problem. An open port is watched half a second: reset or closed at once by
                   the peer reads "open, then reset/closed by the peer" (port-open-dropped, WARN).
  reachability     on this host's own subnet: does the room answer ARP (the OS neighbour table
                   read after the connect; a TCP answer from an on-link room implies its ARP
                   answer). Off-link rooms: not visible from here, the probe is skipped.
  controller-path  where the inventory names a controller: whether controller and room sit on
                   one subnet as far as this host can tell, and whether the controller answers.
                   The path controller -> room itself is NOT measured from a third host: the
                   report says so and names the command that measures it (a check on the
                   controller).
  deep             with ``--deep``: the room's own check, asked of a ``roomprobe serve --agent``
                   on the room (the inventory's ``peer``; roomprobe/peer/agent.py). Its
                   findings join the room's, its report is kept under ``deep``; a room whose
                   agent did not answer is ``unknown`` for this part, with the reason.

Each room gets a report in the check's own shape (schema roomprobe/report/v1), with findings
built the way the probes build them (port-refused, port-filtered, port-rejected, port-unreachable,
port-open-dropped, peer-no-arp-reply, peer-other-subnet), so diagnose() names the likely Zoom code per room and
the metrics writer labels every series with the room.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from roomprobe.core.errors import UsageError
from roomprobe.core.targets import BadScope, ip_literal
from roomprobe.net.tcpconnect import AFTER_WORDS, arp_proves_reject
from roomprobe.net.tcpsweep import Attempt, RttEstimator, connect_all, max_concurrency

__all__ = ["Attempt", "Room", "RttEstimator", "connect_all", "max_concurrency", "sweep"]

# Addresses per sweep: a /18 (10,000 rooms fit in about 100 MB: reports kept, JSON streamed);
# a typo'd /8 must not start 16 M connects.
MAX_ROOMS = 16384
MAX_INVENTORY_BYTES = 4 * 1024 * 1024
MAX_NAME = 200
LOCAL_BLOCK = ("EPERM", "EACCES")  # this host's firewall refused to send
STATE_RANK = {"unreachable": 0, "filtered": 1, "refused": 2, "error": 3, "open": 4}
STATUS_RANK = {"fail": 0, "unknown": 1, "warn": 2, "pass": 3}

# The controller-port probe's findings (probes/controller_port.py; fleet may not import probes),
# worded for a sweep host, which stands where the controller would.
FINDINGS = {
    "refused": ("port-refused", "The room {peer} is up but nothing accepts TCP {port}: Zoom Rooms "
                "is not running or not listening.",
                "Start (or restart) the Zoom Rooms app on the room PC; if it runs, look for "
                "another program holding the port (run roomprobe on the room)."),
    "filtered": ("port-filtered", "TCP {port} to the room {peer} gets no answer from this host: a "
                 "firewall or security software on the path or on the room drops it.",
                 "Allow inbound TCP {port} on the room's firewall and security software, and "
                 "between controller and room on the network."),
    "rejected": ("port-rejected", "TCP {port} to the room {peer}, from this host, is {why}.",
                 "Allow inbound TCP {port} on the room's firewall (firewalld, iptables, Windows "
                 "Firewall, security software) and on any firewall between controller and room; "
                 "the ICMP's sender is the device that rejects it (a firewall on the way can also "
                 "send it in the room's name)."),
    "unreachable": ("port-unreachable", "The room {peer} cannot be reached from this host ({why}).",
                    "Check the room is powered and on the network, and the address is right."),
}


@dataclass(frozen=True)
class Room:
    """One row of the inventory (or one address from the command line)."""

    address: str
    port: int = 9090
    name: str | None = None
    controllers: tuple[str, ...] = ()
    peer: str | None = None  # a 'roomprobe serve --agent' on the room, ADDR[:PORT] (for --deep)
    site: str | None = None  # a label for monitoring (file_sd, the exporter); not measured
    fingerprint: str | None = None  # its serve --tls certificate's SHA-256 (64 hex), for --deep

    @property
    def label(self) -> str:
        return self.name or self.address


# ------------------------------------------------------------------ parsing the targets


def _address(value: str, where: str) -> str:
    try:
        ip = ip_literal(value.strip())
    except BadScope as exc:
        raise UsageError(f"{where}: {exc}") from None
    except ValueError:
        raise UsageError(f"{where}: {value!r} is not an IP address; give the room's address "
                         "(e.g. 10.0.0.20)") from None
    if ip.is_unspecified or ip.is_multicast:
        raise UsageError(f"{where}: {value} cannot be a room's address")
    return str(ip)


def _port(value: Any, where: str) -> int:
    try:
        port = int(str(value).strip())
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise UsageError(f"{where}: port {value!r} is not 1-65535")
    return port


def _text(value: Any, where: str, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise UsageError(f"{where}: {what} must be text")
    value = value.strip()
    if len(value) > MAX_NAME:
        raise UsageError(f"{where}: {what} is longer than {MAX_NAME} characters")
    return value or None


def _controllers(value: Any, where: str) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    items = value if isinstance(value, list) else str(value).replace(";", " ").replace(",", " ").split()
    return tuple(_address(str(v), f"{where} controller") for v in items)


def cidr_addresses(value: str, port: int, room_limit: int = MAX_ROOMS) -> list[Room]:
    """The host addresses of a CIDR (or one address); a network larger than the limit is refused."""
    try:
        net = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise UsageError(f"{value!r} is neither an address, a CIDR (10.0.0.0/24) nor an inventory "
                         "file (.csv or .toml); see 'roomprobe sweep --help'") from None
    if net.num_addresses > room_limit:
        raise UsageError(f"{value} holds {net.num_addresses} addresses, more than the {room_limit} "
                         "a sweep checks; split it into smaller networks (e.g. /20s)")
    hosts = [net.network_address] if net.num_addresses == 1 else list(net.hosts())
    return [Room(_address(str(ip), value), port) for ip in hosts]


def load_inventory(path: str, default_port: int) -> list[Room]:
    """Rooms from an inventory file: CSV (a header row) or TOML (``[[room]]`` tables).

    Columns / keys: ``name``, ``address`` (or ``room``), ``controller`` (or ``controllers``:
    several separated by spaces, commas or semicolons; a list in TOML), ``port``, ``peer``,
    ``site`` (a label for monitoring only).
    """
    from roomprobe.core.fsutil import loads_toml_bounded, read_bounded

    data = read_bounded(path, MAX_INVENTORY_BYTES, "inventory")
    lower = path.lower()
    if lower.endswith(".toml"):
        raw = loads_toml_bounded(data, f"inventory {path}", max_depth=4)
        rows = raw.get("room", raw.get("rooms"))
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise UsageError(f"inventory {path}: no [[room]] tables; write one per room with "
                             "address = \"10.0.0.20\" (and name, controller, port, peer)")
        given = raw.get("defaults")
        defaults = given if isinstance(given, dict) else {}
        return [_room({**defaults, **r}, f"{path} room {i}", default_port) for i, r in enumerate(rows, 1)]
    if lower.endswith(".csv"):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise UsageError(f"inventory {path} is not UTF-8 text; save it as UTF-8 CSV") from None
        # newline="": the csv module then splits rows at \n, \r\n AND a lone \r (Excel's
        # "CSV (Macintosh)" export), and keeps a newline quoted inside a field.
        reader = csv.DictReader(io.StringIO(text, newline=""))
        try:
            fields = {f.strip().lower() for f in reader.fieldnames or []}
            if not fields & {"address", "room"}:
                raise UsageError(f"inventory {path}: the first row must name the columns, with "
                                 "'address' (and name, controller, port, peer)")
            rooms = []
            for i, row in enumerate(reader, 2):
                clean = {str(k).strip().lower(): v for k, v in row.items() if k is not None}
                if not any((v or "").strip() for v in clean.values() if isinstance(v, str)):
                    continue  # a blank line
                rooms.append(_room(clean, f"{path} line {i}", default_port))
        except csv.Error as exc:  # a field over the csv module's 128 KiB limit, a NUL byte...
            raise UsageError(f"inventory {path} line {reader.line_num + 1}: not a usable CSV row "
                             f"({str(exc)[:80]}); is it the right file?") from None
        return rooms
    raise UsageError(f"inventory {path}: name it .csv or .toml (the format follows the name)")


def _room(row: dict[str, Any], where: str, default_port: int) -> Room:
    addr = row.get("address", row.get("room"))
    if addr is None or not str(addr).strip():
        raise UsageError(f"{where}: no address")
    port = row.get("port")
    return Room(address=_address(str(addr), where),
                port=_port(port, where) if port not in (None, "") else default_port,
                name=_text(row.get("name"), where, "name"),
                controllers=_controllers(row.get("controller", row.get("controllers")), where),
                peer=_text(row.get("peer"), where, "peer"),
                site=_text(row.get("site"), where, "site"),
                fingerprint=_fingerprint(row.get("fingerprint"), where))


def _fingerprint(value: Any, where: str) -> str | None:
    if value is None or not str(value).strip():
        return None
    from roomprobe.peer.tls import parse_fingerprint

    try:
        return parse_fingerprint(str(value))
    except ValueError as exc:
        raise UsageError(f"{where}: fingerprint {exc}") from None


def parse_targets(args: Sequence[str], default_port: int, room_limit: int = MAX_ROOMS) -> list[Room]:
    """Inventory files, addresses and CIDRs from the command line, in order, without repeats."""
    rooms: list[Room] = []
    for arg in args:
        if arg.lower().endswith((".csv", ".toml")) or os.path.isfile(arg):
            rooms.extend(load_inventory(arg, default_port))
        else:
            rooms.extend(cidr_addresses(arg, default_port, room_limit))
        if len(rooms) > room_limit:
            raise UsageError(f"more than {room_limit} rooms in one sweep; split the inventory")
    seen: set[tuple[str, int]] = set()
    out = []
    for r in rooms:
        if (r.address, r.port) not in seen:
            seen.add((r.address, r.port))
            out.append(r)
    if not out:
        raise UsageError("no rooms to sweep: give an inventory file, addresses or CIDRs")
    return out


# ------------------------------------------------------------------ the concurrent connects


# ------------------------------------------------------------------ per-room reports


def neighbours(addresses: Iterable[str], workers: int = 16) -> dict[str, dict[str, Any] | None]:
    """The OS neighbour entry of each address: one read of the whole table where the OS offers
    it (osnet.neighbors), else osnet.neighbor per address, a few lookups at a time."""
    from roomprobe.core.threads import start_guarded
    from roomprobe.host import osnet

    todo = list(dict.fromkeys(addresses))
    if not todo:
        return {}
    try:
        table = osnet.neighbors(todo)
    except Exception:  # an OS tool failing: ask per address below
        table = None
    if table is not None:
        return table
    out: dict[str, dict[str, Any] | None] = {}

    def work(part: list[str]) -> None:
        for a in part:
            try:
                out[a] = osnet.neighbor(a)
            except Exception:  # an OS tool failing: the state stays as measured
                out[a] = None

    threads = [start_guarded(work, f"sweep-neigh-{k}", todo[k::workers]) for k in range(workers)]
    for t in threads:
        t.join(timeout=30)
    return out


def host_facts() -> dict[str, Any]:
    """This host, as a check report records it (the sweep's vantage point)."""
    from roomprobe.host import osnet

    return {**osnet.host_info(), "interfaces": list(osnet.interfaces()),
            "default_gateway": list(osnet.default_gateways()), "raw_sockets": osnet.raw_sockets()}


def sweep(rooms: Sequence[Room], *, timeout: float, concurrency: int,
          progress: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
    """Check every room; one report dict per room (schema v1 plus ``sweep``), worst first."""
    from roomprobe.host import osnet
    from roomprobe.report.build import rfc3339

    started = time.time()
    endpoints = list(dict.fromkeys([(r.address, r.port) for r in rooms]
                                   + [(c, r.port) for r in rooms for c in r.controllers]))
    total = len(endpoints)
    # Before the connects, so the neighbour lookups below start the moment the connects end:
    # the entry of an unanswered ARP turns FAILED about 3 s after the first SYN and a busy
    # neighbour table drops FAILED entries soon after.
    on_link = {a: osnet.interface_for_peer(a) for a in {e[0] for e in endpoints}}
    attempts = dict(zip(endpoints, connect_all(
        endpoints, timeout, max_concurrency(concurrency),
        (lambda n: progress(n, total)) if progress else None), strict=True))
    # An on-link address that did not answer TCP: did it answer ARP? (the connect made the OS
    # ask). Silent, rejected by a firewall, or unreachable with no ICMP to say why.
    neigh = neighbours(a for (a, _p), att in attempts.items()
                       if att.state in ("filtered", "unreachable") and on_link[a])
    from roomprobe.core.redact import redact

    host = redact(host_facts())  # once: the same for every room, and redaction is not free
    out = []
    for r in rooms:
        out.append(room_report(r, attempts, on_link, neigh, host, timeout, rfc3339(started)))
    return sort_worst_first(out)


def _finding(fid: str, severity: str, probe: str, message: str, evidence: dict[str, Any],
             hint: str) -> dict[str, Any]:
    return {"id": fid, "severity": severity, "probe": probe, "message": message,
            "evidence": evidence, "hint": hint}


def _port_probe(r: Room, att: Attempt, link: dict[str, Any] | None, nb: dict[str, Any] | None,
                timeout: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """controller-port, measured from this host (the probe's controller side, without a check)."""
    ev: dict[str, Any] = {"side": "sweep", "room": r.address, "port": r.port, **att.to_dict(),
                          "timeout_s": timeout, "waited_s": att.waited_s, "on_link": link is not None}
    probe = {"id": "controller-port", "duration_s": att.waited_s, "evidence": ev}
    if att.state == "unreachable" and link is not None and "icmp" not in ev:
        ev["neighbor"] = nb
        ev.update(arp_proves_reject(att.error, nb) or {})
    if att.state == "filtered" and att.error == "timeout" and link is not None:
        ev["neighbor"] = nb
        if nb is not None and nb.get("state") == "none":
            # A check reads this as "blocked here" (the OS never asked ARP). In a sweep the
            # entry of an unanswered ARP may also have been dropped already from a table
            # holding hundreds of rooms: not measured, and the message says both.
            return {**probe, "status": "error", "reason": "no-neighbour-entry",
                    "summary": f"no answer from {r.address}:{r.port} and no ARP entry for it "
                               "afterwards: this host's firewall may drop the SYN, or the entry "
                               "of an unanswered ARP expired among many rooms; run 'roomprobe "
                               f"check --room {r.address}' for this room"}, []
        if nb is not None and not nb.get("mac"):
            ev.update(state="unreachable", why=f"no ARP answer from the room in {att.waited_s} s")
    if att.state == "error":
        why = ("this host's firewall refused to send" if att.error in LOCAL_BLOCK
               else "the connect failed")
        return {**probe, "status": "error",
                "reason": "blocked-locally" if att.error in LOCAL_BLOCK else "connect-error",
                "summary": f"{why} ({att.error}): {r.address}:{r.port} was not tested"}, []
    state = ev["state"]
    after = ev.get("after")
    if state == "open" and after in ("reset", "closed"):
        said = AFTER_WORDS[after]
        f = _finding("port-open-dropped", "warn", "controller-port",
                     f"TCP {r.port} on the room {r.address} is open (the handshake completed) but "
                     f"the connection was {after} at once by the room or something in its name: "
                     "a controller reaches the port, yet its session with Zoom Rooms would drop "
                     "the same way.",
                     {"room": r.address, "port": r.port, "state": "open", "after": after,
                      "error": att.error},
                     f"Look on the room for what owns TCP {r.port} ('roomprobe check' there): "
                     "endpoint security or another service that accepts and drops connections, "
                     "or a Zoom Rooms that refuses this host; allow the controller in the "
                     "security software.")
        return {**probe, "status": "warn", "reason": "port-open-dropped",
                "summary": f"{r.address}:{r.port} is {said} ({att.ms} ms)"}, [f]
    if state == "open":
        return {**probe, "status": "pass", "reason": "open",
                "summary": f"{r.address}:{r.port} is open ({att.ms} ms)"}, []
    rejected = ev.get("rejected")
    why = (ev.get("why") or ev.get("detail") or (_silence(att) if att.error == "timeout" else att.error)
           or "")
    fid, msg, hint = FINDINGS["rejected" if rejected else state]
    fmt = {"peer": r.address, "port": r.port, "why": why}
    f = _finding(fid, "fail", "controller-port", msg.format(**fmt),
                 {"room": r.address, "port": r.port, "state": state, "error": att.error,
                  **({"rejected": rejected, "icmp": ev.get("icmp")} if rejected else {})},
                 hint.format(**fmt))
    return {**probe, "status": "fail", "reason": fid,
            "summary": f"{r.address}:{r.port} is {state} ({why or att.ms})"}, [f]


def _silence(att: Attempt) -> str:
    """What "no answer" was: how many SYNs, how long, and the round trip the wait came from."""
    tries = att.extra.get("tries")
    if not tries:
        return "no answer"
    srtt = att.extra.get("srtt_ms")
    based = (f"{att.extra.get('wait_s')} s per try from the {srtt} ms round trip of the rooms "
             "that answered" if srtt is not None else f"{att.extra.get('wait_s')} s per try; no "
             "room answered to measure the round trip")
    return f"no answer to {tries} SYN{'s' if tries != 1 else ''} in {att.waited_s} s ({based})"


def _reach_probe(r: Room, att: Attempt, link: dict[str, Any] | None, nb: dict[str, Any] | None,
                 ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """reachability: on this host's subnet, did the room answer ARP?"""
    base = {"id": "reachability", "duration_s": 0.0}
    if link is None:
        return {**base, "status": "skip", "reason": "not-on-link",
                "summary": f"{r.address} is not on this host's subnets: ARP is not visible from here",
                "evidence": {"on_link": False}}, []
    ev: dict[str, Any] = {"on_link": True, **link}
    if att.state in ("open", "refused"):
        ev["arp"] = {"answered": True, "how": "the room answered TCP, which on-link needs its ARP answer"}
        return {**base, "status": "pass", "reason": "answers",
                "summary": f"{r.address} is up on {link['network']} (answered TCP {r.port})",
                "evidence": ev}, []
    tcp_said = ("rejected TCP " if att.extra.get("rejected") or att.state == "unreachable"
                else "but not TCP ")
    if att.state in ("filtered", "unreachable") and nb is not None and nb.get("mac"):
        ev["arp"] = {"answered": True, "mac": nb["mac"], "state": nb.get("state"),
                     "how": "the OS neighbour table after the connect"}
        return {**base, "status": "pass", "reason": "answers-arp",
                "summary": f"{r.address} answers ARP from {nb['mac']} ({tcp_said}{r.port})",
                "evidence": ev}, []
    if att.state == "filtered" and att.error == "timeout" and nb is not None and nb.get("state") != "none":
        ev["arp"] = {"answered": False, "state": nb.get("state")}
        f = _finding("peer-no-arp-reply", "fail", "reachability",
                     f"The room ({r.address}) is on this host's subnet but does not answer ARP: "
                     "the device is off, Wi-Fi client isolation, or a VLAN split inside one subnet.",
                     {"peer": r.address, "interface": link["interface"]},
                     "Check the room PC is on; on Wi-Fi, allow client-to-client traffic.")
        return {**base, "status": "fail", "reason": "peer-no-arp-reply",
                "summary": f"{r.address} does not answer ARP", "evidence": ev}, [f]
    if att.state == "unreachable" and (att.extra.get("no_neighbour") or "icmp" not in att.extra):
        # This host's own ICMP (Linux: it gave up on ARP), or only the errno (other OSes) with
        # no ARP answer in the neighbour table either.
        how = att.extra.get("detail") or f"the OS gave up ({att.error})"
        ev["arp"] = {"answered": False, "how": how}
        f = _finding("peer-no-arp-reply", "fail", "reachability",
                     f"The room ({r.address}) is on this host's subnet but does not answer ARP "
                     f"({how}).", {"peer": r.address, "interface": link["interface"]},
                     "Check the room PC is on and plugged into this network.")
        return {**base, "status": "fail", "reason": "peer-no-arp-reply",
                "summary": f"{r.address} does not answer ARP", "evidence": ev}, [f]
    return {**base, "status": "error", "reason": "not-measured",
            "summary": f"could not tell whether {r.address} answers ARP", "evidence": ev}, []


def _path_probe(r: Room, attempts: dict[tuple[str, int], Attempt],
                on_link: dict[str, dict[str, Any] | None]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """controller-path: what a third host can tell about controller -> room (not the path itself)."""
    if not r.controllers:
        return None, []
    not_measured = (f"the controller -> room path is not measured from this host: run 'roomprobe "
                    f"check --room {r.address}' on the controller")
    ctrls = []
    findings = []
    room_net = (on_link.get(r.address) or {}).get("network")
    for c in r.controllers:
        att = attempts[(c, r.port)]
        c_net = (on_link.get(c) or {}).get("network")
        same = (room_net == c_net) if (room_net or c_net) else None
        ctrls.append({"controller": c, "tcp_from_here": att.to_dict(),
                      "answers_from_here": att.state in ("open", "refused"),
                      "network_seen_from_here": c_net, "same_subnet_as_room": same})
        if same is False:
            findings.append(_finding(
                "peer-other-subnet", "warn", "controller-path",
                f"The controller ({c}) and the room ({r.address}) are not on one subnet, as seen "
                f"from this host's network {room_net or c_net}.",
                {"peer": c, "room": r.address, "local_networks": [n for n in (room_net, c_net) if n]},
                "Put controller and room on the same network/VLAN, or allow TCP 9090 between "
                "the two subnets on the router/firewall."))
    ev = {"controllers": ctrls, "room_network_seen_from_here": room_net, "note": not_measured}
    if findings:
        return {"id": "controller-path", "status": "warn", "reason": "peer-other-subnet",
                "summary": f"controller and room on different subnets; {not_measured}",
                "duration_s": 0.0, "evidence": ev}, findings
    return {"id": "controller-path", "status": "skip", "reason": "not-measurable-here",
            "summary": not_measured, "duration_s": 0.0, "evidence": ev}, []


def room_report(r: Room, attempts: dict[tuple[str, int], Attempt],
                on_link: dict[str, dict[str, Any] | None], neigh: dict[str, dict[str, Any] | None],
                host: dict[str, Any], timeout: float, started_at: str) -> dict[str, Any]:
    """One room's report: the check's v1 shape, so report/metrics/history tools read it."""
    from roomprobe.core.redact import redact_text

    # Redacted at the source: the inventory's free text (a name, a peer URL that may carry a
    # token) is the only text in a room's report not built here from validated addresses, port
    # numbers, errno names and ICMP facts. Redacting every string of every report instead cost
    # more than the sweep itself for a thousand rooms (0.4 ms a room). The diagnosis is catalog
    # text; the host is redacted once by the caller.
    r = replace(r, name=redact_text(r.name) if r.name else None,
                peer=redact_text(r.peer) if r.peer else None)
    att = attempts[(r.address, r.port)]
    link, nb = on_link.get(r.address), neigh.get(r.address)
    port_p, f1 = _port_probe(r, att, link, nb, timeout)
    reach_p, f2 = _reach_probe(r, att, link, nb)
    path_p, f3 = _path_probe(r, attempts, on_link)
    probes = [p for p in (port_p, reach_p, path_p) if p is not None]
    findings = f1 + f2 + f3
    statuses = {p["status"] for p in probes}
    complete = "error" not in statuses
    status = ("fail" if "fail" in statuses else "unknown" if not complete or not statuses & {"pass", "warn"}
              else "warn" if "warn" in statuses else "pass")
    ran = {"controller-port"} | ({"subnet"} if reach_p["status"] in ("pass", "fail") else set())
    diag = _diagnose(findings, frozenset(ran))
    top = diag[0] if diag and findings else None
    state = port_p["evidence"]["state"]
    rep: dict[str, Any] = {
        "schema": "roomprobe/report/v1", "roomprobe_version": _version(), "started_at": started_at,
        "duration_s": round(max(float(p["duration_s"]) for p in probes), 3), "complete": complete,
        "status": status,
        "targets": {"controller": r.controllers[0] if r.controllers else None, "room": r.address,
                    "role": "controller-side", "port": r.port},
        "probes": probes, "findings": findings, "diagnosis": diag,
        "sweep": {"state": state if port_p["status"] != "error" else "error",
                  "likely_code": f"{top['product']}:{top['code']}" if top else None,
                  "likely_title": top["title"] if top else None,
                  "controllers": list(r.controllers), "peer": r.peer,
                  "measured_from": "this host (not the controller, not the room)"},
    }
    if r.name:
        rep["room_name"] = r.name
    rep["host"] = host
    return rep


_DIAG_CACHE: dict[tuple[Any, ...], list[dict[str, Any]]] = {}


def _diagnose(findings: list[dict[str, Any]], ran: frozenset[str]) -> list[dict[str, Any]]:
    """diagnose(), once per distinct set of finding ids: a sweep has thousands of rooms and a
    handful of distinct faults, and the diagnosis reads only ids, severities and probes."""
    from roomprobe.diagnose.mapping import diagnose

    key = (tuple((f["id"], f["severity"], f["probe"]) for f in findings), ran)
    if key not in _DIAG_CACHE:
        _DIAG_CACHE[key] = diagnose(findings, probes_run=set(ran))
    return _DIAG_CACHE[key]  # shared between rooms: read-only from here on


def _version() -> str:
    from roomprobe import __version__

    return __version__


def exit_of(report: dict[str, Any]) -> int:
    from roomprobe.report.build import exit_code

    return int(exit_code(report))


def worst_exit(reports: Sequence[dict[str, Any]]) -> int:
    """The worst room's exit code, with the check's precedence: fail > unknown > warn > pass."""
    if not reports:
        return 3
    return exit_of(min(reports, key=lambda rep: STATUS_RANK.get(rep["status"], 1)))


def sort_key(rep: dict[str, Any]) -> tuple[int, int, int, bytes]:
    ip = ipaddress.ip_address(rep["targets"]["room"])
    return (STATUS_RANK.get(rep["status"], 1), STATE_RANK.get(rep["sweep"]["state"], 3),
            ip.version, ip.packed)


def sort_worst_first(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(reports, key=sort_key)


def summary(reports: Sequence[dict[str, Any]], duration_s: float) -> dict[str, Any]:
    """Counts per status, port state and likely code; the worst exit code."""
    def count(key: Callable[[dict[str, Any]], Any]) -> dict[str, int]:
        out: dict[str, int] = {}
        for rep in reports:
            k = key(rep)
            if k is not None:
                out[str(k)] = out.get(str(k), 0) + 1
        return dict(sorted(out.items()))

    return {"rooms": len(reports), "duration_s": round(duration_s, 3),
            "exit_code": worst_exit(reports), "by_status": count(lambda r: r["status"]),
            "by_state": count(lambda r: r["sweep"]["state"]),
            "by_code": count(lambda r: r["sweep"]["likely_code"]),
            "not_measured": ["controller -> room path (measured on the controller by 'roomprobe check')"]
            + ([] if any("deep" in r for r in reports)
               else ["the room's own check (ask its 'roomprobe serve --agent' with --deep)"]),
            **({"by_deep": count(lambda r: r["deep"]["reason"] if "deep" in r else None)}
               if any("deep" in r for r in reports) else {})}


# ------------------------------------------------------------------ --deep: the room's own check


def check_peers(rooms: Sequence[Room]) -> dict[str, tuple[str, int]]:
    """Each room's agent address, validated before anything is sent (bad input: one line, exit 3)."""
    from roomprobe.peer.agent import agent_address

    out = {}
    for r in rooms:
        if r.peer:
            try:
                out[r.address] = agent_address(r.peer)
            except ValueError as exc:
                raise UsageError(f"room {r.label}: {exc}") from None
    return out


def ask_agents(rooms: Sequence[Room], token: str, request: Any, deadline_s: float,
               concurrency: int, progress: Callable[[int, int], None] | None = None,
               pin: str | None = None, tls_unpinned: bool = False,
               ) -> dict[tuple[str, int], dict[str, Any]]:
    """Ask every room's agent for its check, ``concurrency`` at a time, each within
    ``deadline_s``; rooms without a peer get the outcome ``no-peer``. ``request`` is an
    agent.CheckRequest; each room's carries that room's controller. Over TLS for a room with
    a fingerprint (its own, else ``pin``), or for all with ``tls_unpinned``."""
    import queue

    from roomprobe.core.threads import start_guarded
    from roomprobe.peer.agent import ask

    peers = check_peers(rooms)
    out: dict[tuple[str, int], dict[str, Any]] = {}
    todo: queue.SimpleQueue[Room] = queue.SimpleQueue()
    for r in rooms:
        if r.address in peers:
            todo.put(r)
        else:
            out[(r.address, r.port)] = {
                "answered": False, "reason": "no-peer", "agent": None, "duration_s": 0.0,
                "detail": "no peer in the inventory for this room: add its 'roomprobe serve "
                          "--agent' address (ADDR[:PORT]) in the peer column"}
    total, lock, done = todo.qsize(), threading.Lock(), [0]

    def work() -> None:
        while True:
            try:
                r = todo.get_nowait()
            except queue.Empty:
                return
            addr, port = peers[r.address]
            # the room checks its own path to its controller (the inventory's first)
            mine = replace(request, controller=r.controllers[0] if r.controllers else None)
            res = ask(addr, port, token, mine, deadline_s, pin=r.fingerprint or pin,
                      tls_unpinned=tls_unpinned)
            with lock:
                out[(r.address, r.port)] = res
                done[0] += 1
                if progress is not None:
                    progress(done[0], total)

    threads = [start_guarded(work, f"sweep-deep-{k}") for k in range(max(1, min(concurrency, total)))]
    for t in threads:
        t.join(timeout=deadline_s * (total // max(1, len(threads)) + 2) + 5)
    for r in rooms:  # a worker that died (its guard kept the error): not measured, never PASS
        out.setdefault((r.address, r.port), {"answered": False, "reason": "not-asked",
                                             "agent": None, "duration_s": 0.0,
                                             "detail": "this room's agent was not asked (an "
                                                       "internal error); sweep it again"})
    return out


DEEP_STATUS = {"pass": "pass", "warn": "warn", "fail": "fail"}  # anything else: not proven


def merge_deep(rep: dict[str, Any], outcome: dict[str, Any]) -> dict[str, Any]:
    """The room's own check merged into its sweep report: findings and diagnosis joined, the
    status the worse of the two, the agent's report kept under ``deep``. No answer: the deep
    part is ``unknown`` (a ``deep`` probe in ``error`` with the reason), never PASS."""
    from roomprobe.core.redact import redact

    rep = dict(rep)
    agent = outcome.get("agent")
    if outcome.get("answered"):
        ar = outcome["report"]
        a_status = DEEP_STATUS.get(str(ar.get("status")), "unknown")
        if not ar.get("complete", False) and a_status != "fail":
            a_status = "unknown"
        a_probes = [p for p in ar.get("probes", []) if isinstance(p, dict)]
        # marked in their evidence (report v1 allows no other finding keys): measured on the room
        a_findings = [{**f, "evidence": {**(ev if isinstance(ev := f.get("evidence"), dict) else {}),
                                         "via": "agent"}}
                      for f in ar.get("findings", []) if isinstance(f, dict)]
        probe = {"id": "deep", "status": "error" if a_status == "unknown" else a_status,
                 "reason": "agent-answered" if a_status != "unknown" else "agent-unknown",
                 "summary": f"the room's own check via {agent}: {str(ar.get('status')).upper()}"
                            f" ({len(a_findings)} finding{'' if len(a_findings) == 1 else 's'})",
                 "duration_s": outcome.get("duration_s", 0.0),
                 "evidence": {"agent": agent, "exit_code": outcome.get("exit_code"),
                              "probes": {str(p.get("id")): p.get("status") for p in a_probes}}}
        deep = {"status": a_status, "answered": True, "reason": "answered", "agent": agent,
                "exit_code": outcome.get("exit_code"), "duration_s": outcome.get("duration_s"),
                "report": ar}
        ran = {str(p.get("id")) for p in a_probes if p.get("status") in ("pass", "warn", "fail")}
    else:
        a_status, a_findings, ran = "unknown", [], set()
        probe = {"id": "deep", "status": "error", "reason": outcome["reason"],
                 "summary": f"no agent answered ({outcome['reason']}): {outcome['detail']}; the "
                            "room's own check is unknown",
                 "duration_s": outcome.get("duration_s", 0.0),
                 "evidence": {"agent": agent, "reason": outcome["reason"],
                              "detail": outcome["detail"]}}
        deep = {"status": "unknown", "answered": False, "reason": outcome["reason"],
                "detail": outcome["detail"], "agent": agent, "report": None}
    rep["probes"] = [*rep["probes"], probe]
    rep["findings"] = [*rep["findings"], *a_findings]
    rep["status"] = min(rep["status"], a_status, key=lambda s: STATUS_RANK.get(s, 1))
    rep["complete"] = bool(rep["complete"] and a_status != "unknown")
    sweep_ran = {"controller-port"} | ({"subnet"} if rep["probes"][1]["status"] in ("pass", "fail")
                                       else set())
    diag = _diagnose(rep["findings"], frozenset(sweep_ran | ran))
    top = diag[0] if diag and rep["findings"] else None
    rep["diagnosis"] = diag
    rep["sweep"] = {**rep["sweep"], "likely_code": f"{top['product']}:{top['code']}" if top else None,
                    "likely_title": top["title"] if top else None, "deep": a_status}
    rep["deep"] = redact(deep)
    return rep


def deepen(reports: Sequence[dict[str, Any]], outcomes: dict[tuple[str, int], dict[str, Any]],
           ) -> list[dict[str, Any]]:
    """Every room's report with its deep outcome merged in, worst first again."""
    return sort_worst_first([merge_deep(rep, outcomes[(rep["targets"]["room"], rep["targets"]["port"])])
                             for rep in reports])
