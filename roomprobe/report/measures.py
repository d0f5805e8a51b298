"""What each probe measured, read by name from its real evidence (for metrics and perfdata).

Why per probe and by name: a key pattern (``*_ms``) cannot tell a measured ``ms`` from a
configured ``slow_ms`` threshold, and it misses values nested the way a probe really stores them
(bandwidth's ``download.mbps``, ``idle.median_ms``). Each extractor yields
``(name, help, labels, value)`` with the base unit in the name (seconds, bytes per second,
ratio: Prometheus' conventions, which ``promtool check metrics`` enforces);
labels come from fixed sets (direction, path) or the configured port list, never from messages.
Only measured values are yielded: thresholds and settings in the evidence are ignored.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator
from typing import Any

Sample = tuple[str, str, dict[str, str], float]  # (metric name, help, extra labels, value)


def _num(v: Any) -> float | None:
    """A measured number, or None (missing, null, bool, text)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)



def _bandwidth(ev: dict[str, Any]) -> Iterator[Sample]:
    path = str(ev.get("path") or "internet")
    for direction in ("download", "upload"):
        d = ev.get(direction)
        if not isinstance(d, dict):
            continue
        mbps = _num(d.get("mbps"))
        if mbps is not None:
            yield ("bandwidth_bytes_per_second", "Steady-state throughput the bandwidth probe measured.",
                   {"direction": direction, "path": path}, mbps * 1e6 / 8)
        loaded = d.get("loaded")
        if isinstance(loaded, dict) and (ms := _num(loaded.get("median_ms"))) is not None:
            yield ("bandwidth_loaded_rtt_seconds", "Median round trip while the link was loaded.",
                   {"direction": direction, "path": path}, ms / 1000)
    idle = ev.get("idle")
    if isinstance(idle, dict):
        if (ms := _num(idle.get("median_ms"))) is not None:
            yield ("bandwidth_idle_rtt_seconds", "Median round trip on the idle link.", {"path": path},
                   ms / 1000)
        if (ms := _num(idle.get("jitter_ms"))) is not None:
            yield ("bandwidth_idle_jitter_seconds", "Round-trip jitter on the idle link (RTP-style).",
                   {"path": path}, ms / 1000)
    ratio = loss_ratio(ev)
    if ratio is not None:
        yield ("bandwidth_rtt_loss_ratio", "Share of latency pings lost during the bandwidth test.",
               {"path": path}, ratio)


def loss_ratio(ev: dict[str, Any]) -> float | None:
    """Lost latency pings / pings sent during the bandwidth test (None if none were counted)."""
    lost = _num(ev.get("ping_lost"))
    if lost is None:
        return None
    parts = [ev.get("idle")] + [d.get("loaded") for d in (ev.get("download"), ev.get("upload"))
                                if isinstance(d, dict)]
    answered = sum(_num(p.get("samples")) or 0.0 for p in parts if isinstance(p, dict))
    total = answered + lost
    return lost / total if total > 0 else None


def _dns(ev: dict[str, Any]) -> Iterator[Sample]:
    times = [ms for q in ev.get("queries") or [] if isinstance(q, dict)
             and q.get("outcome") not in ("timeout", "error") and (ms := _num(q.get("ms"))) is not None]
    if times:
        yield ("dns_query_duration_seconds_max", "Slowest answered DNS query.", {}, max(times) / 1000)
        yield ("dns_query_duration_seconds_median", "Median answered DNS query.", {},
               statistics.median(times) / 1000)
    failed = [q for q in ev.get("queries") or [] if isinstance(q, dict)
              and q.get("outcome") in ("timeout", "error")]
    if ev.get("queries"):
        yield ("dns_queries_failed", "DNS queries that timed out or failed.", {}, float(len(failed)))


def _controller_port(ev: dict[str, Any]) -> Iterator[Sample]:
    if ev.get("state") == "open" and (ms := _num(ev.get("ms"))) is not None:
        yield ("controller_port_connect_seconds", "TCP handshake time to the controller port.", {},
               ms / 1000)


def _subnet(ev: dict[str, Any]) -> Iterator[Sample]:
    arp = ev.get("arp")
    if isinstance(arp, dict) and arp.get("answered") and (ms := _num(arp.get("rtt_ms"))) is not None:
        yield ("subnet_arp_rtt_seconds", "ARP request/answer time to the peer.", {}, ms / 1000)


def _cloud(ev: dict[str, Any]) -> Iterator[Sample]:
    per_port: dict[str, float] = {}
    for t in ev.get("tcp") or []:
        if isinstance(t, dict) and t.get("state") == "open" and (ms := _num(t.get("ms"))) is not None:
            port = str(t.get("port"))
            per_port[port] = max(per_port.get(port, 0.0), ms / 1000)
    for port, s in sorted(per_port.items()):
        yield ("cloud_tcp_connect_seconds", "Slowest TCP handshake to Zoom's cloud on this port.",
               {"port": port}, s)


def _path(ev: dict[str, Any]) -> Iterator[Sample]:
    """Per traced destination (label ``destination``: zoom | media | peer | target | back, a fixed set):
    loss and RTT at the destination, where real loss begins (0: nowhere), the hop count."""
    for p in ev.get("paths") or []:
        if not isinstance(p, dict) or not isinstance(p.get("destination"), dict):
            continue
        lb = {"destination": str(p.get("role") or "zoom")}
        d = p["destination"]
        if (loss := _num(d.get("loss_pct"))) is not None:
            yield ("path_loss_ratio", "Share of path probes the destination did not answer.", lb, loss / 100)
        rtt = d.get("rtt_ms")
        if isinstance(rtt, dict) and (ms := _num(rtt.get("median"))) is not None:
            yield ("path_rtt_seconds", "Median round trip to the traced destination.", lb, ms / 1000)
        if isinstance(rtt, dict) and (ms := _num(rtt.get("jitter"))) is not None:
            yield ("path_jitter_seconds", "Mean difference of consecutive round trips to the destination.",
                   lb, ms / 1000)
        begins = (p.get("loss") or {}).get("begins") if isinstance(p.get("loss"), dict) else None
        yield ("path_loss_begins_hop", "The hop where loss that persists to the destination begins (0: none).",
               lb, float(begins.get("ttl") or 0) if isinstance(begins, dict) else 0.0)
        if (hops := _num(d.get("ttl"))) is not None:
            yield ("path_hops", "Hops to the traced destination.", lb, hops)


EXTRACTORS: dict[str, Callable[[dict[str, Any]], Iterator[Sample]]] = {
    "bandwidth": _bandwidth, "dns": _dns, "controller-port": _controller_port,
    "subnet": _subnet, "cloud": _cloud, "path": _path,
}
