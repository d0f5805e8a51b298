"""bandwidth: is there enough steady throughput each way, and does latency hold under load?

Checks one path: the internet (HTTP(S) speed-test endpoints, default Cloudflare's, through the
proxy the system would use for them, as Zoom would), or with ``check --peer ADDR`` the LAN path
to a ``roomprobe serve`` peer (the controller's Wi-Fi to the room PC, the path behind 2002).
How: roomprobe.net.speed: parallel TCP streams per direction with ramping payloads, warm-up dropped,
steady-state Mbps, early stop once stable; a small request on its own connection times round
trips while idle and while each direction is loaded. Bytes used are reported.
Concludes against a profile: fail below 2.5 Mbps either way, warn below the Zoom Rooms figure for
the configured number of displays, warn on idle latency, jitter, and latency added under load
(buffer bloat). An endpoint that does not answer is its own finding.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from typing import Any

from roomprobe.core.probe import Context, Finding, Probe, Result, Severity, Status
from roomprobe.net.peerlink import PEER_LINK

DEFAULT_PEER_PORT = 9095

@dataclass(frozen=True)
class Options:
    """The bandwidth probe's options: ``[probes.bandwidth]`` in the config file, ``--set``."""

    # Internet path (speed-test style: GET down_url?bytes=N, POST up_url).
    down_url: str = "https://speed.cloudflare.com/__down"
    up_url: str = "https://speed.cloudflare.com/__up"
    token: str = ""  # sent as X-Roomprobe-Token when set (a self-hosted 'roomprobe serve')
    peer_port: int = DEFAULT_PEER_PORT  # roomprobe serve's port when --peer has none
    duration: float = 10.0  # seconds for idle latency and both directions together
    streams: int = 4
    omit: float = 1.0  # seconds of warm-up (slow start) dropped per direction
    stable_tolerance: float = 0.04  # stop early once the steady rate agrees within 4%
    min_steady: float = 2.0  # ... over at least this many seconds
    max_request_mb: int = 64
    connect_timeout: float = 3.0
    # Profile (zoom-network-facts.md): 2.5 Mbps each way; Zoom Rooms 1/2/3 displays.
    min_down_mbps: float = 2.5
    min_up_mbps: float = 2.5
    displays: int = 1
    rooms_down_mbps: tuple[float, ...] = (2.0, 4.0, 6.0)
    rooms_up_mbps: tuple[float, ...] = (2.0, 2.0, 2.0)
    latency_warn_ms: float = 100.0  # idle median round trip
    jitter_warn_ms: float = 30.0
    bufferbloat_warn_ms: float = 100.0  # loaded median minus idle median


def _rooms_figure(table: list[float], displays: int) -> float:
    if not table:
        return 0.0
    return float(table[min(max(displays, 1), len(table)) - 1])


def evaluate(m: dict[str, Any], opts: Options, where: str) -> list[Finding]:
    """Findings from one measurement (the dict roomprobe.net.speed.measure returns)."""
    out: list[Finding] = []
    displays = int(opts.displays)
    for key, label, fid, floor, table in (
            ("download", "Download", "bandwidth-down-low", "min_down_mbps", "rooms_down_mbps"),
            ("upload", "Upload", "bandwidth-up-low", "min_up_mbps", "rooms_up_mbps")):
        d = m[key]
        mbps = d.get("mbps")
        if mbps is None:
            continue
        minimum = float(getattr(opts, floor))
        rooms = _rooms_figure(list(getattr(opts, table)), displays)
        ev = {"mbps": mbps, "min_mbps": minimum, "rooms_mbps": rooms, "displays": displays,
              "path": where, "bytes": d["bytes"], "steady_seconds": d["steady_seconds"]}
        if mbps < minimum:
            out.append(Finding(fid, Severity.FAIL,
                               f"{label} on the {where} path is {mbps:.2f} Mbps, below the "
                               f"{minimum:g} Mbps a stable Zoom call needs.", ev,
                               hint="Move the device closer to the access point or onto a cable, "
                                    "check for other heavy traffic, and ask the ISP/network team "
                                    "about the link's capacity."))
        elif mbps < rooms:
            out.append(Finding(fid, Severity.WARN,
                               f"{label} on the {where} path is {mbps:.2f} Mbps, below the "
                               f"{rooms:g} Mbps Zoom Rooms wants with {displays} display(s).", ev,
                               hint="Expect reduced video quality on multi-display rooms; raise "
                                    "the link's capacity or reduce competing traffic."))
    idle = m["idle"]
    if idle.get("median_ms") is not None and idle["median_ms"] >= float(opts.latency_warn_ms):
        out.append(Finding("latency-high", Severity.WARN,
                           f"Round trip on the {where} path is {idle['median_ms']:g} ms at idle "
                           f"(target below {float(opts.latency_warn_ms):g} ms).",
                           {"idle_median_ms": idle["median_ms"], "limit_ms": opts.latency_warn_ms,
                            "path": where},
                           hint="Look for a long route (VPN, far-away proxy, satellite/LTE) or a "
                                "congested link; Zoom traffic should go direct to Zoom."))
    jitters = [x for x in (idle.get("jitter_ms"),) if x is not None]
    if jitters and max(jitters) >= float(opts.jitter_warn_ms):
        out.append(Finding("jitter-high", Severity.WARN,
                           f"Latency varies by {max(jitters):g} ms between round trips on the "
                           f"{where} path (target below {float(opts.jitter_warn_ms):g} ms).",
                           {"idle_jitter_ms": idle.get("jitter_ms"), "limit_ms": opts.jitter_warn_ms,
                            "path": where},
                           hint="Jitter comes from Wi-Fi contention/interference or a busy link: "
                                "try a cable or a cleaner channel, and apply QoS for Zoom."))
    added = {}
    for key in ("download", "upload"):
        loaded = m[key]["loaded"].get("median_ms")
        if loaded is not None and idle.get("median_ms") is not None:
            added[key] = round(loaded - idle["median_ms"], 1)
    if added:
        worst = max(added, key=lambda k: added[k])
        if added[worst] >= float(opts.bufferbloat_warn_ms):
            out.append(Finding("bufferbloat", Severity.WARN,
                               f"Latency rises by {added[worst]:g} ms while the {worst} runs on "
                               f"the {where} path (buffer bloat): calls stutter whenever the link "
                               "is busy.",
                               {"added_ms": added, "idle_median_ms": idle["median_ms"],
                                "limit_ms": opts.bufferbloat_warn_ms, "path": where},
                               hint="Enable smart queue management (SQM, fq_codel/cake) or QoS on "
                                    "the router/access point, or shape just below the link rate."))
    return out


def _progress(ctx: Context) -> Any:
    if (ctx.settings is not None and ctx.settings.format != "text") or not sys.stderr.isatty():
        return None

    def show(phase: str, mbps: float | None) -> None:
        figure = f" {mbps:.1f} Mbps" if mbps is not None else ""
        sys.stderr.write(f"\r\x1b[K  bandwidth: measuring {phase}{figure} ...")
        sys.stderr.flush()
    return show


def endpoint_for(ctx: Context) -> tuple[Any, str, str]:
    """The endpoint to measure, the path's name (lan/internet) and a label for messages."""
    from roomprobe.net.speed import TOKEN_HEADER, Endpoint

    o = ctx.options
    timeout = float(o.connect_timeout)
    peer = ctx.settings.peer if ctx.settings is not None else None
    if peer:
        host, port = split_peer(str(peer), int(o.peer_port))
        base = f"http://{f'[{host}]' if ':' in host else host}:{port}"
        headers = {TOKEN_HEADER: str((ctx.settings.peer_token if ctx.settings else None) or "")}
        # The LAN peer is reached directly: Zoom Rooms' controller link never uses a proxy.
        return (Endpoint(f"{base}/__down", f"{base}/__up", headers, timeout, use_proxy=False),
                "lan", f"{host}:{port}")
    headers = {TOKEN_HEADER: str(o.token)} if o.token else {}
    return (Endpoint(str(o.down_url), str(o.up_url), headers, timeout), "internet",
            str(o.down_url))


def split_peer(peer: str, default_port: int) -> tuple[str, int]:
    """``ADDR``, ``ADDR:PORT`` or ``[V6]:PORT``; raises ValueError with the reason."""
    peer = peer.strip()
    if peer.startswith("["):
        host, _, rest = peer[1:].partition("]")
        port_s = rest.removeprefix(":") or str(default_port)
    elif peer.count(":") == 1:
        host, port_s = peer.split(":")
    else:
        host, port_s = peer, str(default_port)
    if not host or not port_s.isdigit() or not 0 < int(port_s) < 65536:
        raise ValueError(f"--peer {peer!r} is not ADDR or ADDR:PORT")
    return host, int(port_s)


def run(ctx: Context) -> Result:
    from roomprobe.net import speed

    o = ctx.options
    ep, where, label = endpoint_for(ctx)
    proxy = ep.proxy()
    st = speed.Settings(streams=max(1, int(o.streams)), omit_s=float(o.omit),
                        min_steady_s=float(o.min_steady), tolerance=float(o.stable_tolerance),
                        max_request_bytes=int(float(o.max_request_mb) * 1024 * 1024))
    budget = max(2.0, min(float(o.duration), ctx.remaining() - 2 * ep.timeout - 1.0))
    ep.timeout = ctx.budget(ep.timeout)
    base_ev: dict[str, Any] = {"path": where, "endpoint": label, "proxy": proxy,
                               "budget_s": round(budget, 2)}
    show = _progress(ctx)
    try:
        # The quality probe waits for the LAN peer while this test loads it (net/peerlink.py).
        with PEER_LINK if where == "lan" else contextlib.nullcontext():
            m = speed.measure(ep, budget, st, show)
    except speed.EndpointError as exc:
        ev = {**base_ev, "stage": exc.stage, "http_status": exc.status, "error": str(exc)}
        why = ("it rejected our session token (check --peer-token)" if exc.status == 403
               else str(exc))
        return Result(Status.FAIL, "bandwidth-endpoint-unreachable",
                      f"{label} did not answer: {why}", ev,
                      [Finding("bandwidth-endpoint-unreachable", Severity.FAIL,
                               f"The {where} bandwidth endpoint {label} cannot be used: {why}.", ev,
                               hint=("Start 'roomprobe serve --bind ADDR' on the peer and pass its "
                                     "address and token (--peer, --peer-token); check a firewall "
                                     "allows the port." if where == "lan" else
                                     "Check internet access and the proxy for this URL, or point "
                                     "bandwidth.down_url/up_url at a reachable speed-test server."))])
    finally:
        if show:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
    evidence = {**base_ev, **m}
    findings = evaluate(m, o, where)
    for key in ("download", "upload"):
        d = m[key]
        if d["mbps"] is not None and d["errors"] and not d["stable"]:
            findings.append(Finding(
                "bandwidth-endpoint-unreachable", Severity.WARN,
                f"{label} stopped answering during the {key} ({'; '.join(d['errors'])}): the "
                f"{d['mbps']} Mbps figure is incomplete.",
                {"direction": key, "errors": d["errors"], "path": where, "mbps": d["mbps"]},
                hint="A server limit (roomprobe serve --max-mb/--duration) or a proxy cut the "
                     "transfer; rerun, or raise the server's limits."))
        if d["mbps"] is None:
            findings.append(Finding(
                "bandwidth-endpoint-unreachable", Severity.FAIL,
                f"The {key} to {label} moved no data: {'; '.join(m[key]['errors']) or 'no bytes'}.",
                {"direction": key, "errors": m[key]["errors"], "path": where},
                hint="The endpoint answers small requests but not transfers: a proxy or firewall "
                     "may block large or POST requests; try another endpoint."))
    down, up = m["download"]["mbps"], m["upload"]["mbps"]
    idle = m["idle"]["median_ms"]
    summary = (f"{where} {label}: down {down if down is not None else '-'} Mbps, "
               f"up {up if up is not None else '-'} Mbps, idle RTT {idle} ms, "
               f"{m['bytes'] / 1e6:.1f} MB in {m['seconds']} s")
    if any(f.severity == Severity.FAIL for f in findings):
        status = Status.FAIL
    elif findings:
        status = Status.WARN
    else:
        status = Status.PASS
    reason = findings[0].id if findings else "ok"
    return Result(status, reason, summary, evidence, findings)


PROBE = Probe(
    id="bandwidth",
    title="Bandwidth and latency under load",
    run=run,
    timeout_s=18.0,
    options=Options,
    long_running=True,
    description="Steady-state Mbps each way (parallel streams, warm-up dropped), idle and loaded "
                "latency, jitter, buffer bloat; internet endpoints, or a 'roomprobe serve' peer "
                "with --peer. Skip it for a quick check with --no-bandwidth.",
)
