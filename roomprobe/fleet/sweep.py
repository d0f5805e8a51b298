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
from roomprobe.core.probe import Finding, Severity
from roomprobe.core.targets import BadScope, ip_literal
from roomprobe.net.portfindings import SWEEP, open_dropped_finding, port_finding
from roomprobe.net.tcpconnect import AFTER_WORDS, LOCAL_BLOCK, arp_proves_reject
from roomprobe.net.tcpsweep import Attempt, RttEstimator, connect_all, max_concurrency
from roomprobe.report.build import STATUS_RANK, assemble, exit_code, worst
from roomprobe.report.model import SWEEP_KEYS, DiagnosisEntry, ProbeEntry, Report, ReportTargets, SweepFacts

__all__ = ["Attempt", "Room", "RttEstimator", "connect_all", "max_concurrency", "sweep"]

# Addresses per sweep: a /18 (10,000 rooms fit in about 100 MB: reports kept, JSON streamed);
# a typo'd /8 must not start 16 M connects.
MAX_ROOMS = 16384
MAX_INVENTORY_BYTES = 4 * 1024 * 1024
MAX_NAME = 200
STATE_RANK = {"unreachable": 0, "filtered": 1, "refused": 2, "error": 3, "open": 4}
# The sweep's probe entries keep the key order sweep reports were always written in.
PORT_KEYS = ("id", "duration_s", "evidence", "status", "reason", "summary")
REACH_KEYS = ("id", "duration_s", "status", "reason", "summary", "evidence")


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
          progress: Callable[[int, int], None] | None = None) -> list[Report]:
    """Check every room; one report per room (schema v1 plus ``sweep``), worst first."""
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


def _port_entry(att: Attempt, ev: dict[str, Any], status: str, reason: str, summary: str) -> ProbeEntry:
    return ProbeEntry(id="controller-port", status=status, reason=reason, summary=summary,
                      duration_s=att.waited_s, evidence=ev, keys=PORT_KEYS)


def _port_probe(r: Room, att: Attempt, link: dict[str, Any] | None, nb: dict[str, Any] | None,
                timeout: float) -> tuple[ProbeEntry, list[Finding]]:
    """controller-port, measured from this host (the probe's controller side, without a check).

    The findings are the probe's own (net/portfindings.py), worded for a host that stands where
    the controller would."""
    ev: dict[str, Any] = {"side": "sweep", "room": r.address, "port": r.port, **att.to_dict(),
                          "timeout_s": timeout, "waited_s": att.waited_s, "on_link": link is not None}
    if att.state == "unreachable" and link is not None and "icmp" not in ev:
        ev["neighbor"] = nb
        ev.update(arp_proves_reject(att.error, nb) or {})
    if att.state == "filtered" and att.error == "timeout" and link is not None:
        ev["neighbor"] = nb
        if nb is not None and nb.get("state") == "none":
            # A check reads this as "blocked here" (the OS never asked ARP). In a sweep the
            # entry of an unanswered ARP may also have been dropped already from a table
            # holding hundreds of rooms: not measured, and the message says both.
            return _port_entry(att, ev, "error", "no-neighbour-entry",
                         f"no answer from {r.address}:{r.port} and no ARP entry for it "
                         "afterwards: this host's firewall may drop the SYN, or the entry "
                         "of an unanswered ARP expired among many rooms; run 'roomprobe "
                         f"check --room {r.address}' for this room"), []
        if nb is not None and not nb.get("mac"):
            ev.update(state="unreachable", why=f"no ARP answer from the room in {att.waited_s} s")
    if att.state == "error":
        why = ("this host's firewall refused to send" if att.error in LOCAL_BLOCK
               else "the connect failed")
        return _port_entry(att, ev, "error", "blocked-locally" if att.error in LOCAL_BLOCK else "connect-error",
                     f"{why} ({att.error}): {r.address}:{r.port} was not tested"), []
    state = ev["state"]
    after = ev.get("after")
    if state == "open" and after in ("reset", "closed"):
        f = open_dropped_finding(r.address, r.port, after, att.error, SWEEP, probe="controller-port")
        return _port_entry(att, ev, "warn", "port-open-dropped",
                     f"{r.address}:{r.port} is {AFTER_WORDS[after]} ({att.ms} ms)"), [f]
    if state == "open":
        return _port_entry(att, ev, "pass", "open", f"{r.address}:{r.port} is open ({att.ms} ms)"), []
    rejected = ev.get("rejected")
    why = (ev.get("why") or ev.get("detail") or (_silence(att) if att.error == "timeout" else att.error)
           or "")
    f = port_finding("rejected" if rejected else state, r.address, r.port, why,
                     {"room": r.address, "port": r.port, "state": state, "error": att.error,
                      **({"rejected": rejected, "icmp": ev.get("icmp")} if rejected else {})},
                     SWEEP, probe="controller-port")
    return _port_entry(att, ev, "fail", f.id, f"{r.address}:{r.port} is {state} ({why or att.ms})"), [f]


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


def _reach(status: str, reason: str, summary: str, evidence: dict[str, Any]) -> ProbeEntry:
    return ProbeEntry(id="reachability", status=status, reason=reason, summary=summary, duration_s=0.0,
                      evidence=evidence, keys=REACH_KEYS)


def _reach_probe(r: Room, att: Attempt, link: dict[str, Any] | None, nb: dict[str, Any] | None,
                 ) -> tuple[ProbeEntry, list[Finding]]:
    """reachability: on this host's subnet, did the room answer ARP?"""
    if link is None:
        return _reach("skip", "not-on-link",
                      f"{r.address} is not on this host's subnets: ARP is not visible from here",
                      {"on_link": False}), []
    ev: dict[str, Any] = {"on_link": True, **link}
    if att.state in ("open", "refused"):
        ev["arp"] = {"answered": True, "how": "the room answered TCP, which on-link needs its ARP answer"}
        return _reach("pass", "answers", f"{r.address} is up on {link['network']} (answered TCP {r.port})",
                      ev), []
    tcp_said = ("rejected TCP " if att.extra.get("rejected") or att.state == "unreachable"
                else "but not TCP ")
    if att.state in ("filtered", "unreachable") and nb is not None and nb.get("mac"):
        ev["arp"] = {"answered": True, "mac": nb["mac"], "state": nb.get("state"),
                     "how": "the OS neighbour table after the connect"}
        return _reach("pass", "answers-arp",
                      f"{r.address} answers ARP from {nb['mac']} ({tcp_said}{r.port})", ev), []
    if att.state == "filtered" and att.error == "timeout" and nb is not None and nb.get("state") != "none":
        ev["arp"] = {"answered": False, "state": nb.get("state")}
        f = Finding("peer-no-arp-reply", Severity.FAIL,
                    f"The room ({r.address}) is on this host's subnet but does not answer ARP: "
                    "the device is off, Wi-Fi client isolation, or a VLAN split inside one subnet.",
                    {"peer": r.address, "interface": link["interface"]},
                    hint="Check the room PC is on; on Wi-Fi, allow client-to-client traffic.",
                    probe="reachability")
        return _reach("fail", "peer-no-arp-reply", f"{r.address} does not answer ARP", ev), [f]
    if att.state == "unreachable" and (att.extra.get("no_neighbour") or "icmp" not in att.extra):
        # This host's own ICMP (Linux: it gave up on ARP), or only the errno (other OSes) with
        # no ARP answer in the neighbour table either.
        how = att.extra.get("detail") or f"the OS gave up ({att.error})"
        ev["arp"] = {"answered": False, "how": how}
        f = Finding("peer-no-arp-reply", Severity.FAIL,
                    f"The room ({r.address}) is on this host's subnet but does not answer ARP "
                    f"({how}).", {"peer": r.address, "interface": link["interface"]},
                    hint="Check the room PC is on and plugged into this network.", probe="reachability")
        return _reach("fail", "peer-no-arp-reply", f"{r.address} does not answer ARP", ev), [f]
    return _reach("error", "not-measured", f"could not tell whether {r.address} answers ARP", ev), []


def _path_probe(r: Room, attempts: dict[tuple[str, int], Attempt],
                on_link: dict[str, dict[str, Any] | None]) -> tuple[ProbeEntry | None, list[Finding]]:
    """controller-path: what a third host can tell about controller -> room (not the path itself)."""
    if not r.controllers:
        return None, []
    not_measured = (f"the controller -> room path is not measured from this host: run 'roomprobe "
                    f"check --room {r.address}' on the controller")
    ctrls = []
    findings: list[Finding] = []
    room_net = (on_link.get(r.address) or {}).get("network")
    for c in r.controllers:
        att = attempts[(c, r.port)]
        c_net = (on_link.get(c) or {}).get("network")
        same = (room_net == c_net) if (room_net or c_net) else None
        ctrls.append({"controller": c, "tcp_from_here": att.to_dict(),
                      "answers_from_here": att.state in ("open", "refused"),
                      "network_seen_from_here": c_net, "same_subnet_as_room": same})
        if same is False:
            findings.append(Finding(
                "peer-other-subnet", Severity.WARN,
                f"The controller ({c}) and the room ({r.address}) are not on one subnet, as seen "
                f"from this host's network {room_net or c_net}.",
                {"peer": c, "room": r.address, "local_networks": [n for n in (room_net, c_net) if n]},
                hint="Put controller and room on the same network/VLAN, or allow TCP 9090 between "
                     "the two subnets on the router/firewall.", probe="controller-path"))
    ev = {"controllers": ctrls, "room_network_seen_from_here": room_net, "note": not_measured}
    if findings:
        return ProbeEntry("controller-path", "warn", "peer-other-subnet",
                          f"controller and room on different subnets; {not_measured}", 0.0, ev), findings
    return ProbeEntry("controller-path", "skip", "not-measurable-here", not_measured, 0.0, ev), []


def room_report(r: Room, attempts: dict[tuple[str, int], Attempt],
                on_link: dict[str, dict[str, Any] | None], neigh: dict[str, dict[str, Any] | None],
                host: dict[str, Any], timeout: float, started_at: str) -> Report:
    """One room's report, made by the check's own builder (report/build.assemble): the same
    type, status rules and schema, so report/metrics/history tools read it."""
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
    diag = _diagnose(findings, _ran(probes))
    top = diag[0] if diag and findings else None
    rep = assemble(probes=probes, findings=findings, diagnosis=diag, host=host, started_at=started_at,
                   duration_s=round(max(float(p.duration_s) for p in probes), 3),
                   targets=ReportTargets(controller=r.controllers[0] if r.controllers else None,
                                         room=r.address, role="controller-side", port=r.port),
                   keys=(*SWEEP_KEYS, *(("room_name",) if r.name else ()), "host"))
    rep.room_name = r.name
    rep.sweep = SweepFacts(state=port_p.evidence["state"] if port_p.status != "error" else "error",
                           likely_code=f"{top.product}:{top.code}" if top else None,
                           likely_title=top.title if top else None, controllers=list(r.controllers),
                           peer=r.peer, measured_from="this host (not the controller, not the room)")
    return rep


def _ran(probes: Sequence[ProbeEntry]) -> set[str]:
    """The check's probes a sweep room stands for (controller-port; subnet when ARP was judged)."""
    return {"controller-port"} | ({"subnet"} if probes[1].status in ("pass", "fail") else set())


_DIAG_CACHE: dict[tuple[Any, ...], list[DiagnosisEntry]] = {}


def _diagnose(findings: list[Finding], ran: set[str]) -> list[DiagnosisEntry]:
    """The check's diagnosis (report/build.diagnose), once per distinct set of finding ids: a
    sweep has thousands of rooms and a handful of distinct faults, and the diagnosis reads only
    ids, severities and probes."""
    from roomprobe.report.build import diagnose

    key = (tuple((f.id, f.severity.value, f.probe) for f in findings), frozenset(ran))
    if key not in _DIAG_CACHE:
        _DIAG_CACHE[key] = diagnose(findings, None, set(ran))
    return _DIAG_CACHE[key]  # shared between rooms: read-only from here on


def exit_of(report: Report) -> int:
    return int(exit_code(report))


def worst_exit(reports: Sequence[Report]) -> int:
    """The worst room's exit code, with the check's precedence: fail > unknown > warn > pass."""
    if not reports:
        return 3
    return exit_of(min(reports, key=lambda rep: STATUS_RANK.get(rep.status, 1)))


def facts_of(rep: Report) -> SweepFacts:
    """A sweep room's sweep facts (a report without them is not a sweep room's: a bug)."""
    if rep.sweep is None:
        raise ValueError("not a sweep room's report (no sweep facts)")
    return rep.sweep


def sort_key(rep: Report) -> tuple[int, int, int, bytes]:
    ip = ipaddress.ip_address(str(rep.targets.room))
    return (STATUS_RANK.get(rep.status, 1), STATE_RANK.get(facts_of(rep).state, 3), ip.version, ip.packed)


def sort_worst_first(reports: list[Report]) -> list[Report]:
    return sorted(reports, key=sort_key)


def summary(reports: Sequence[Report], duration_s: float) -> dict[str, Any]:
    """Counts per status, port state and likely code; the worst exit code."""
    def count(key: Callable[[Report], Any]) -> dict[str, int]:
        out: dict[str, int] = {}
        for rep in reports:
            k = key(rep)
            if k is not None:
                out[str(k)] = out.get(str(k), 0) + 1
        return dict(sorted(out.items()))

    return {"rooms": len(reports), "duration_s": round(duration_s, 3),
            "exit_code": worst_exit(reports), "by_status": count(lambda r: r.status),
            "by_state": count(lambda r: facts_of(r).state),
            "by_code": count(lambda r: facts_of(r).likely_code),
            "not_measured": ["controller -> room path (measured on the controller by 'roomprobe check')"]
            + ([] if any(r.has("deep") for r in reports)
               else ["the room's own check (ask its 'roomprobe serve --agent' with --deep)"]),
            **({"by_deep": count(lambda r: (r.deep or {}).get("reason") if r.has("deep") else None)}
               if any(r.has("deep") for r in reports) else {})}


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


def merge_deep(rep: Report, outcome: dict[str, Any]) -> Report:
    """The room's own check merged into its sweep report: findings and diagnosis joined, the
    status the worse of the two, the agent's report kept under ``deep``. No answer: the deep
    part is ``unknown`` (a ``deep`` probe in ``error`` with the reason), never PASS."""
    from roomprobe.core.redact import redact

    probe, a_findings, a_status, ran, deep = (_answered(outcome) if outcome.get("answered")
                                              else _unanswered(outcome))
    findings = [*rep.findings, *a_findings]
    diag = _diagnose(findings, _ran(rep.probes) | ran)
    top = diag[0] if diag and findings else None
    return replace(rep, probes=[*rep.probes, probe], findings=findings,
                   status=worst(rep.status, a_status), complete=bool(rep.complete and a_status != "unknown"),
                   diagnosis=diag, keys=(*rep.keys, "deep"), deep=redact(deep),
                   sweep=replace(facts_of(rep), likely_code=f"{top.product}:{top.code}" if top else None,
                                 likely_title=top.title if top else None, deep=a_status))


def _answered(outcome: dict[str, Any]) -> tuple[ProbeEntry, list[Finding], str, set[str], dict[str, Any]]:
    """An agent's answer: its report (as the agent sent it) judged by the check's own rules."""
    agent = outcome.get("agent")
    ar = outcome["report"]
    a_status = DEEP_STATUS.get(str(ar.get("status")), "unknown")
    if not ar.get("complete", False) and a_status != "fail":
        a_status = "unknown"
    a_probes = [p for p in ar.get("probes", []) if isinstance(p, dict)]
    # marked in their evidence (report v1 allows no other finding keys): measured on the room
    a_findings = [_agent_finding(f) for f in ar.get("findings", []) if isinstance(f, dict)]
    probe = ProbeEntry("deep", "error" if a_status == "unknown" else a_status,
                       "agent-answered" if a_status != "unknown" else "agent-unknown",
                       f"the room's own check via {agent}: {str(ar.get('status')).upper()}"
                       f" ({len(a_findings)} finding{'' if len(a_findings) == 1 else 's'})",
                       outcome.get("duration_s", 0.0),
                       {"agent": agent, "exit_code": outcome.get("exit_code"),
                        "probes": {str(p.get("id")): p.get("status") for p in a_probes}})
    deep = {"status": a_status, "answered": True, "reason": "answered", "agent": agent,
            "exit_code": outcome.get("exit_code"), "duration_s": outcome.get("duration_s"),
            "report": ar}
    ran = {str(p.get("id")) for p in a_probes if p.get("status") in ("pass", "warn", "fail")}
    return probe, a_findings, a_status, ran, deep


def _agent_finding(f: dict[str, Any]) -> Finding:
    """One finding of the agent's report (its JSON, not validated here), marked as measured on
    the room. A field missing or out of v1's range is filled in, never a crash of the sweep."""
    from roomprobe.report.model import finding_from_dict

    ev = f.get("evidence")
    d = {**f, "id": str(f.get("id") or "unknown"), "probe": str(f.get("probe") or ""),
         "message": str(f.get("message") or ""),
         "evidence": {**(ev if isinstance(ev, dict) else {}), "via": "agent"}}
    if d.get("severity") not in ("info", "warn", "fail"):
        d["severity"] = "warn"
    return finding_from_dict(d)


def _unanswered(outcome: dict[str, Any]) -> tuple[ProbeEntry, list[Finding], str, set[str], dict[str, Any]]:
    """No agent answered: the room's own check is unknown, with the reason."""
    agent = outcome.get("agent")
    probe = ProbeEntry("deep", "error", outcome["reason"],
                       f"no agent answered ({outcome['reason']}): {outcome['detail']}; the "
                       "room's own check is unknown", outcome.get("duration_s", 0.0),
                       {"agent": agent, "reason": outcome["reason"], "detail": outcome["detail"]})
    deep = {"status": "unknown", "answered": False, "reason": outcome["reason"],
            "detail": outcome["detail"], "agent": agent, "report": None}
    return probe, [], "unknown", set(), deep


def deepen(reports: Sequence[Report], outcomes: dict[tuple[str, int], dict[str, Any]],
           ) -> list[Report]:
    """Every room's report with its deep outcome merged in, worst first again."""
    return sort_worst_first([merge_deep(rep, outcomes[(str(rep.targets.room), int(rep.targets.port or 0))])
                             for rep in reports])
