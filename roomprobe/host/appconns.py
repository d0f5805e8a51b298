"""What the Zoom Rooms app itself is connected to, right now (the strongest media evidence).

roomprobe runs on the room PC next to Zoom Rooms, so instead of guessing which servers a meeting
would use it can read the app's own sockets (the idea behind ThousandEyes' endpoint "dynamic
tests"): psutil lists each process's connections with their protocol and remote address. From
those: the transport media uses now (UDP to 8801-8810 in a meeting; TCP 8801/8802; or only TCP
443, which is either "not in a meeting" or "media over TLS 443"), and the servers to measure.

Process names are configurable; the defaults are Zoom Rooms on Windows (ZoomRooms.exe) and on
macOS (ZoomPresence). Reading another user's sockets needs privileges on some systems: an
access error is reported as such, never as "not running".
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

MEDIA_UDP = range(8801, 8811)  # Zoom's media ports (KB0060561: UDP 8801-8810)
MEDIA_TCP = (8801, 8802)
MAX_CONNECTIONS = 200  # a report is for people: keep the list bounded


def _norm(name: str) -> str:
    name = name.strip().lower()
    return name[:-4] if name.endswith(".exe") else name


def _netns(pid: int | str) -> int | None:
    """Linux: the network namespace's inode (a process in another one is not on our network)."""
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def find_processes(names: list[str] | tuple[str, ...]) -> list[Any]:
    """Processes whose name (or executable's base name) matches one of ``names``, case-insensitive,
    ``.exe`` optional. Linux truncates names to 15 characters, so a 15-character prefix matches;
    there, a process in another network namespace (a container) is not counted."""
    import psutil  # lazily: 'roomprobe probes' and --help must not pay for it

    wanted = {_norm(n) for n in names if n.strip()}
    ours = _netns("self") if sys.platform.startswith("linux") else None
    found = []
    for proc in psutil.process_iter(["name"]):
        name = _norm(proc.info.get("name") or "")
        if name and (name in wanted or (len(name) == 15 and any(w.startswith(name) for w in wanted))):
            if ours is not None and _netns(proc.pid) not in (ours, None):
                continue
            found.append(proc)
    return found


def _addr(a: Any) -> tuple[str, int] | None:
    return (a.ip, a.port) if a else None


def classify(conns: list[dict[str, Any]]) -> tuple[str | None, bool | None, str]:
    """(transport in use, in a meeting?, why) from the app's connections.

    UDP to 8801-8810 -> udp-8801 (in a meeting); TCP established to 8801/8802 -> tcp-8801;
    only TCP 443 -> tls-443 with ``in_meeting`` None (signalling alone looks the same).
    """
    udp = [c for c in conns if c["proto"] == "udp" and c["remote_port"] in MEDIA_UDP]
    tcp_media = [c for c in conns if c["proto"] == "tcp" and c["remote_port"] in MEDIA_TCP
                 and c["status"] == "ESTABLISHED"]
    tls = [c for c in conns if c["proto"] == "tcp" and c["remote_port"] == 443
           and c["status"] == "ESTABLISHED"]
    if udp:
        return "udp-8801", True, f"{len(udp)} UDP socket(s) to port {udp[0]['remote_port']}"
    if tcp_media:
        return "tcp-8801", True, f"TCP established to {tcp_media[0]['remote']}"
    if tls:
        return "tls-443", None, ("only TCP 443 connections: not in a meeting, or media runs over "
                                 "TLS 443")
    return None, False, "no connection to a Zoom media or web port"


def snapshot(names: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """The app's processes and connections: ``{running, processes, connections, transport,
    in_meeting, why, error}``. Never raises for OS trouble."""
    import psutil  # lazily: 'roomprobe probes' and --help must not pay for it

    out: dict[str, Any] = {"names": list(names), "running": False, "processes": [],
                           "connections": [], "transport": None, "in_meeting": None,
                           "why": None, "error": None}
    try:
        procs = find_processes(names)
    except (psutil.Error, OSError) as exc:
        out["error"] = f"cannot list processes: {exc}"
        return out
    if not procs:
        out["why"] = "the Zoom Rooms app is not running on this device"
        return out
    out["running"] = True
    conns: list[dict[str, Any]] = []
    for proc in procs:
        try:
            out["processes"].append({"pid": proc.pid, "name": proc.name()})
            for c in proc.net_connections(kind="inet"):
                remote = _addr(c.raddr)
                if remote is None:
                    continue  # listening or unconnected sockets say nothing about the path
                conns.append({"pid": proc.pid,
                              "proto": "udp" if c.type == socket.SOCK_DGRAM else "tcp",
                              "local": f"{c.laddr.ip}:{c.laddr.port}" if c.laddr else None,
                              "remote": f"{remote[0]}:{remote[1]}", "remote_ip": remote[0],
                              "remote_port": remote[1], "status": c.status})
        except psutil.AccessDenied:
            out["error"] = (f"no permission to read the sockets of {proc.pid} (run roomprobe as "
                            "the same user as Zoom Rooms, or as administrator)")
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    out["connections"] = conns[:MAX_CONNECTIONS]
    out["transport"], out["in_meeting"], out["why"] = classify(conns)
    return out


def servers(snap: dict[str, Any], limit: int = 8) -> list[tuple[str, int]]:
    """The distinct servers to time a TCP connect to: TCP remotes as they are; UDP media remotes
    on TCP 443 (a multimedia router also takes the TLS fallback there)."""
    seen: list[tuple[str, int]] = []
    for c in snap.get("connections", []):
        key = (c["remote_ip"], c["remote_port"] if c["proto"] == "tcp" else 443)
        if key not in seen and c["remote_port"] in (443, *MEDIA_TCP, *MEDIA_UDP):
            seen.append(key)
    return seen[:limit]
