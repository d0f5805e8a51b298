"""bandwidth: is there enough steady throughput each way for this room, and does latency hold?

Steady-state Mbps each way (parallel streams, warm-up dropped) judged against the room's profile
(displays, resolution, sharing), idle and loaded latency, jitter, buffer bloat; internet endpoints,
or a 'roomprobe serve' peer with --peer. Skip it for a quick check with --no-bandwidth.

Checks one path: the internet (HTTP(S) speed-test endpoints, default Cloudflare's, through the
proxy the system would use for them, as Zoom would: a PAC file's ``PROXY a; PROXY b; DIRECT``
is walked past entries that refuse or stay silent, and ``proxy_tried`` says which and why), or
with ``check --peer ADDR`` the LAN path
to a ``roomprobe serve`` peer (the controller's Wi-Fi to the room PC, the path behind 2002).
How: roomprobe.peer.speed: parallel TCP streams per direction with ramping payloads, warm-up dropped,
steady-state Mbps, early stop once stable; a small request on its own connection times round
trips while idle and while each direction is loaded. Bytes used are reported.

Concludes against the room's profile (docs/bandwidth.md): Zoom Rooms' figure for its display
count (1-3, configured or detected from the OS) and resolution (720p/1080p), plus screen
sharing when on; or the plain-client profile (2.5 Mbps each way). Each direction: fail below
the figure, warn when the headroom above it is under ``headroom_warn`` (20%), else met.
Also warns on idle latency, jitter and latency added under load (buffer bloat).

PASS = both directions measured to completion (no stream cut short, a steady window of at least
``min_steady`` seconds after warm-up) and each met its figure with the headroom, and idle round
trips were measured. An unreachable endpoint, an unusable proxy setting, a transfer cut short,
a run the deadline shortened, a direction that moved no data: never PASS.
"""

from __future__ import annotations

import contextlib
import sys
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from roomprobe.core import threads
from roomprobe.core.errors import UsageError
from roomprobe.core.probe import Context, Finding, Probe, Result, Severity, Status, described
from roomprobe.peer.link import PEER_LINK
from roomprobe.peer.port import PEER_PORT

RESOLUTIONS = ("720p", "1080p")
PROFILES = ("rooms", "client")


@dataclass(frozen=True)
class Options:
    """The bandwidth probe's options: ``[probes.bandwidth]`` in the config file, ``--set``."""

    # Internet path (speed-test style: GET down_url?bytes=N, POST up_url).
    down_url: str = "https://speed.cloudflare.com/__down"
    up_url: str = "https://speed.cloudflare.com/__up"
    token: str = ""  # sent as X-Roomprobe-Token when set (a self-hosted 'roomprobe serve')
    peer_port: int = PEER_PORT  # roomprobe serve's port when --peer has none
    duration: float = 10.0  # seconds for idle latency and both directions together
    streams: int = 4
    omit: float = 1.0  # seconds of warm-up (slow start) dropped per direction
    stable_tolerance: float = 0.04  # stop early once the steady rate agrees within 4%
    min_steady: float = 2.0  # ... over at least this many seconds; shorter is "cut short"
    max_request_mb: int = 64
    connect_timeout: float = 3.0
    # The room profile: what a Zoom Room needs per display and resolution (Zoom Rooms system
    # requirements; sources and figures in docs/bandwidth.md).
    profile: str = "rooms"  # rooms: Zoom Rooms per display | client: a plain Zoom client
    displays: int = 0  # 1-3; 0: detect from the OS on the room PC, else 1 (flag: --displays)
    resolution: str = "720p"  # 720p | 1080p (flag: --resolution)
    share: bool = False  # screen sharing on: adds share_mbps each way (flag: --share)
    share_mbps: float = 0.3  # Zoom: sharing adds 150-300 kbps; the upper figure
    detect_displays: bool = True
    headroom_warn: float = 0.20  # warn when measured is less than 20% above the figure
    rooms_720p_up_mbps: tuple[float, ...] = (2.0, 2.0, 2.0)  # for 1 / 2 / 3 displays
    rooms_720p_down_mbps: tuple[float, ...] = (2.0, 4.0, 6.0)
    rooms_1080p_up_mbps: tuple[float, ...] = (4.0, 4.0, 4.0)
    rooms_1080p_down_mbps: tuple[float, ...] = (4.0, 8.0, 12.0)
    min_down_mbps: float = 2.5  # the "client" profile: Zoom's group-call figure each way
    min_up_mbps: float = 2.5
    latency_warn_ms: float = 100.0  # idle median round trip
    jitter_warn_ms: float = 30.0
    bufferbloat_warn_ms: float = 100.0  # loaded median minus idle median


def validate(o: Options) -> None:
    """Refuse a profile that cannot be judged, before any traffic (one line, exit 3)."""
    if o.profile not in PROFILES:
        raise UsageError(f"bandwidth.profile {o.profile!r} is not one of {', '.join(PROFILES)}")
    if o.resolution not in RESOLUTIONS:
        raise UsageError(f"bandwidth.resolution {o.resolution!r} is not one of "
                         f"{', '.join(RESOLUTIONS)}; e.g. --resolution 1080p")
    if not 0 <= o.displays <= 3:
        raise UsageError(f"bandwidth.displays {o.displays} is out of range; give 1-3 "
                         "(0 detects it from the OS)")
    if not 0 <= o.headroom_warn <= 1:
        raise UsageError(f"bandwidth.headroom_warn {o.headroom_warn:g} is out of range; give a "
                         "fraction, e.g. 0.2 for 20%")
    for name in ("rooms_720p_up_mbps", "rooms_720p_down_mbps", "rooms_1080p_up_mbps",
                 "rooms_1080p_down_mbps"):
        table = getattr(o, name)
        if len(table) != 3 or not all(float(x) > 0 for x in table):
            raise UsageError(f"bandwidth.{name} needs three positive figures (1, 2, 3 displays), "
                             f"got {list(table)}")
    if o.min_down_mbps <= 0 or o.min_up_mbps <= 0 or o.share_mbps < 0:
        raise UsageError("bandwidth.min_down_mbps/min_up_mbps must be above 0, share_mbps >= 0")


# ---------------------------------------------------------------- the room profile


@dataclass(frozen=True)
class Profile:
    """What this room needs each way, and where its display count came from."""

    name: str  # rooms | client
    up_mbps: float
    down_mbps: float
    displays: int | None = None
    displays_source: str | None = None  # configured | detected | default
    resolution: str | None = None
    share: bool = False
    detection: dict[str, Any] | None = None

    def label(self) -> str:
        """"3 displays at 1080p" / "1 display at 720p with sharing" / "a plain Zoom client"."""
        if self.name == "client":
            return "a plain Zoom client"
        n = self.displays or 1
        text = f"{n} display{'s' if n != 1 else ''} at {self.resolution}"
        return text + (" with screen sharing" if self.share else "")

    def to_evidence(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label(), "up_mbps": self.up_mbps,
                "down_mbps": self.down_mbps, "displays": self.displays,
                "displays_source": self.displays_source, "resolution": self.resolution,
                "share": self.share, "detection": self.detection}


def make_profile(o: Options, detected: Any = None) -> Profile:
    """The profile from the options and the OS's display count. (``--displays``,
    ``--resolution`` and ``--share`` are written into these options by core.settings.build.)

    Display count: the option wins ("configured"); else what the OS said ("detected", clamped
    to 1-3); else 1 ("default"). ``detected`` is a roomprobe.host.displays.Displays.
    """
    resolution = o.resolution
    share = bool(o.share)
    extra = float(o.share_mbps) if share else 0.0
    detection = detected.to_evidence() if detected is not None else None
    if o.profile == "client":
        return Profile("client", round(float(o.min_up_mbps) + extra, 2),
                       round(float(o.min_down_mbps) + extra, 2), share=share, detection=detection)
    if o.displays:
        displays, source = int(o.displays), "configured"
    elif detected is not None and detected.count:
        displays, source = min(3, max(1, int(detected.count))), "detected"
    else:
        displays, source = 1, "default"
    up = getattr(o, f"rooms_{resolution}_up_mbps")[displays - 1]
    down = getattr(o, f"rooms_{resolution}_down_mbps")[displays - 1]
    return Profile("rooms", round(float(up) + extra, 2), round(float(down) + extra, 2), displays,
                   source, resolution, share, detection)


def _needs_line(p: Profile) -> str:
    return f"needs {p.up_mbps:.1f} up / {p.down_mbps:.1f} down for {p.label()}"


def _source_note(p: Profile) -> str:
    """Where the display count came from, for the end of the summary line."""
    if p.displays_source is None:
        return ""
    how = (p.detection or {}).get("method") if p.displays_source == "detected" else None
    return f"; displays {p.displays_source}" + (f" ({how})" if how else "")


def judge(mbps: float, need: float, headroom_warn: float) -> tuple[str, float]:
    """("fail" | "warn" | "met", headroom): headroom is (measured - need) / need."""
    headroom = (mbps - need) / need if need > 0 else float("inf")
    if mbps < need:
        return "fail", headroom
    if round(headroom, 6) < headroom_warn:  # 4.8 over 4.0 is 20%, not 19.999...%
        return "warn", headroom
    return "met", headroom


def complete(d: dict[str, Any], min_steady: float) -> bool:
    """A direction measured to the end: data, no stream cut short, a long enough steady window."""
    return (d.get("mbps") is not None and not d.get("errors")
            and float(d.get("steady_seconds") or 0.0) >= float(min_steady))


def evaluate(m: dict[str, Any], opts: Options, where: str,
             profile: Profile | None = None) -> list[Finding]:
    """Findings from one measurement (the dict roomprobe.peer.speed.measure returns)."""
    profile = profile or make_profile(opts)
    out: list[Finding] = []
    for key, label, fid, need in (
            ("download", "Download", "bandwidth-down-low", profile.down_mbps),
            ("upload", "Upload", "bandwidth-up-low", profile.up_mbps)):
        d = m[key]
        mbps = d.get("mbps")
        if mbps is None:
            continue
        verdict, headroom = judge(float(mbps), float(need), float(opts.headroom_warn))
        whole = complete(d, opts.min_steady)
        ev = {"mbps": mbps, "need_mbps": need, "headroom": round(headroom, 3),
              "headroom_warn": opts.headroom_warn, "profile": profile.label(),
              "complete": whole, "path": where, "bytes": d.get("bytes"),
              "steady_seconds": d.get("steady_seconds")}
        who = ("a plain Zoom client needs" if profile.name == "client"
               else f"Zoom Rooms needs for {profile.label()}")
        partial = "" if whole else " (measured before the transfer was cut short)"
        if verdict == "fail":
            out.append(Finding(fid, Severity.FAIL,
                               f"{label} on the {where} path is {mbps:.2f} Mbps{partial}, below the "
                               f"{need:.1f} Mbps {who}.", ev,
                               hint="Move the device closer to the access point or onto a cable, "
                                    "check for other heavy traffic, and ask the ISP/network team "
                                    "about the link's capacity."))
        elif verdict == "warn":
            out.append(Finding(fid, Severity.WARN,
                               f"{label} on the {where} path is {mbps:.2f} Mbps{partial}, only "
                               f"{headroom * 100:.0f}% above the {need:.1f} Mbps {who} (less than "
                               f"the {opts.headroom_warn * 100:.0f}% headroom a busy link needs).",
                               ev,
                               hint="Any other traffic on this link will degrade the call: raise "
                                    "the link's capacity, reduce competing traffic or apply QoS."))
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
    if not ctx.progress:
        return None

    def show(phase: str, mbps: float | None) -> None:
        figure = f" {mbps:.1f} Mbps" if mbps is not None else ""
        sys.stderr.write(f"\r\x1b[K  bandwidth: measuring {phase}{figure} ...")
        sys.stderr.flush()
    return show


def endpoint_for(ctx: Context) -> tuple[Any, str, str]:
    """The endpoint to measure, the path's name (lan/internet) and a label for messages."""
    from roomprobe.peer.speed import TOKEN_HEADER, Endpoint

    o = ctx.options
    timeout = float(o.connect_timeout)
    peer = ctx.peer
    if peer is not None:
        host, port = peer.host, peer.port_or(o.peer_port)
        scheme = "https" if peer.tls else "http"  # serve --tls: the token in TLS only
        base = f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"
        headers = {TOKEN_HEADER: peer.token}
        # The LAN peer is reached directly: Zoom Rooms' controller link never uses a proxy.
        return (Endpoint(f"{base}/__down", f"{base}/__up", headers, timeout, use_proxy=False,
                         pin=peer.fingerprint, tls_unpinned=peer.tls_unpinned), "lan", f"{host}:{port}")
    headers = {TOKEN_HEADER: str(o.token)} if o.token else {}
    return (Endpoint(str(o.down_url), str(o.up_url), headers, timeout), "internet",
            str(o.down_url))


def _detect_displays(ctx: Context) -> Future[Any] | None:
    """Start reading the OS's display count, when it is the room's and nothing configured it.

    Next to the controller (``--room`` given, role controller-side) this PC's screens are not
    the room's, so nothing is detected there. Runs beside the measurement in a daemon thread
    (core.threads.Daemons); roomprobe.host.displays never raises, and even a surprise stays in
    the future, for _profile to ignore.
    """
    o = ctx.options
    configured = bool(o.displays)
    if o.profile != "rooms" or configured or not o.detect_displays:
        return None
    if ctx.targets.role == "controller-side":
        return None

    def detect() -> Any:
        from roomprobe.host import displays

        return displays.detect(timeout=4.0)

    return threads.Daemons("bw-displays").submit(detect)


def _profile(ctx: Context, pending: Future[Any] | None, wait: float) -> Profile:
    detected = None
    if pending is not None:
        # still running (TimeoutError) or broken: the profile falls back to the configured count
        with contextlib.suppress(Exception):
            detected = pending.result(timeout=max(0.0, wait))
    return make_profile(ctx.options, detected)


def _unusable(status: Status, fid: str, severity: Severity, summary: str, message: str,
              ev: dict[str, Any], hint: str) -> Result:
    return Result(status, fid, summary, ev, [Finding(fid, severity, message, ev, hint=hint)])


def _chain_ev(ep: Any) -> dict[str, Any]:
    """The proxy the streams took and, when a PAC chain's first entries could not be used, which
    ones and why (Zoom's client falls back the same way, after the same wait)."""
    if not ep.tried:
        return {}
    return {"proxy": ep.proxy(), "proxy_tried": list(ep.tried)}


def _fallback_note(ep: Any) -> str:
    if not ep.tried:
        return ""
    from roomprobe.peer.speed import redact_proxy

    used = ep.proxy()
    n = len(ep.tried)
    return (f" (through {redact_proxy(used) if used else 'a direct connection'}: the PAC chain's "
            f"first {'entry' if n == 1 else f'{n} entries'} could not be used)")


def run(ctx: Context) -> Result:
    from roomprobe.peer import speed

    o = ctx.options
    ep, where, label = endpoint_for(ctx)
    pending = _detect_displays(ctx)
    try:
        proxy = ep.proxy()
    except speed.ProxySettingError as exc:
        profile = _profile(ctx, pending, ctx.budget(1.0))
        ev: dict[str, Any] = {"path": where, "endpoint": label, "stage": exc.stage, "setting": exc.setting,
              "where": exc.where, "value": exc.shown, "problem": exc.problem,
              "profile": profile.to_evidence()}
        sev = Severity.WARN if exc.unsupported else Severity.FAIL
        return _unusable(Status.WARN if exc.unsupported else Status.FAIL,
                         "bandwidth-endpoint-unreachable", sev,
                         f"{_needs_line(profile)}; not measured: proxy setting {exc.setting} "
                         f"({exc.where}) is unusable{_source_note(profile)}",
                         f"The {where} bandwidth endpoint cannot be reached: {exc}.", ev,
                         hint=f"Fix or remove {exc.setting} ({exc.where}): a proxy is "
                              "http://HOST:PORT with a numeric port; Zoom reads the same setting.")
    st = speed.Settings(streams=max(1, int(o.streams)), omit_s=float(o.omit),
                        min_steady_s=float(o.min_steady), tolerance=float(o.stable_tolerance),
                        max_request_bytes=int(float(o.max_request_mb) * 1024 * 1024))
    budget = max(2.0, min(float(o.duration), ctx.remaining() - 2 * ep.timeout - 1.0))
    ep.timeout = ctx.budget(ep.timeout)
    base_ev: dict[str, Any] = {"path": where, "endpoint": label, "proxy": proxy,
                               "budget_s": round(budget, 2)}
    show = _progress(ctx)
    try:
        # The quality probe waits for the LAN peer while this test loads it (peer/link.py).
        with PEER_LINK if where == "lan" else contextlib.nullcontext():
            m = speed.measure(ep, budget, st, show)
    except speed.EndpointError as exc:
        profile = _profile(ctx, pending, ctx.budget(1.0))
        ev = {**base_ev, **_chain_ev(ep), "stage": exc.stage, "http_status": exc.status,
              "error": str(exc), "profile": profile.to_evidence()}
        why = ("it rejected our session token (check --peer-token)" if exc.status == 403
               else str(exc))
        return _unusable(Status.FAIL, "bandwidth-endpoint-unreachable", Severity.FAIL,
                         f"{_needs_line(profile)}; not measured: {label} did not answer: {why}"
                         f"{_source_note(profile)}",
                         f"The {where} bandwidth endpoint {label} cannot be used: {why}.", ev,
                         hint=("Start 'roomprobe serve --bind ADDR' on the peer and pass its "
                               "address and token (--peer, --peer-token); check a firewall "
                               "allows the port." if where == "lan" else
                               "Check internet access and the proxy for this URL, or point "
                               "bandwidth.down_url/up_url at a reachable speed-test server."))
    finally:
        if show:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
    profile = _profile(ctx, pending, ctx.budget(1.0))
    evidence = {**base_ev, **_chain_ev(ep), **m, "profile": profile.to_evidence()}
    findings = evaluate(m, o, where, profile)
    findings += incomplete_findings(m, o, where, label)
    down, up = m["download"]["mbps"], m["upload"]["mbps"]
    idle = m["idle"]["median_ms"]
    summary = (f"{_needs_line(profile)}; measured {up if up is not None else '-'} up / "
               f"{down if down is not None else '-'} down Mbps on the {where} path to {label}, "
               f"idle RTT {idle} ms, {m['bytes'] / 1e6:.1f} MB in {m['seconds']} s"
               f"{_fallback_note(ep)}{_source_note(profile)}")
    if any(f.severity == Severity.FAIL for f in findings):
        return Result(Status.FAIL, findings[0].id, summary, evidence, findings)
    if findings:
        return Result(Status.WARN, findings[0].id, summary, evidence, findings)
    got = proof(m, o, profile)
    if not got:  # cannot happen while incomplete_findings covers every gap; never PASS by default
        return Result.unmeasured("bandwidth-unproven", summary, evidence, findings)
    return Result.passed("ok", summary, evidence, got, findings)


def proof(m: dict[str, Any], o: Options, profile: Profile) -> dict[str, Any]:
    """What a bandwidth PASS stands on: each direction's steady figure, measured to completion,
    against the profile's need with the headroom met, and the idle round trips. Empty when any
    part is missing (then no PASS is possible)."""
    out: dict[str, Any] = {"profile": profile.label()}
    for key, need in (("download", profile.down_mbps), ("upload", profile.up_mbps)):
        d = m[key]
        if not complete(d, o.min_steady):
            return {}
        verdict, headroom = judge(float(d["mbps"]), float(need), float(o.headroom_warn))
        if verdict != "met":
            return {}
        out[key] = {"mbps": d["mbps"], "need_mbps": need, "headroom": round(headroom, 3),
                    "steady_seconds": d["steady_seconds"], "bytes": d.get("bytes")}
    idle = m["idle"]
    if not idle.get("samples") or idle.get("median_ms") is None:
        return {}
    out["idle_rtt"] = {"median_ms": idle["median_ms"], "jitter_ms": idle.get("jitter_ms"),
                       "samples": idle["samples"]}
    return out


def incomplete_findings(m: dict[str, Any], o: Options, where: str, label: str) -> list[Finding]:
    """Every way the measurement fell short of proof, each its own finding (never a PASS)."""
    out: list[Finding] = []
    for key in ("download", "upload"):
        d = m[key]
        if d["mbps"] is None:
            out.append(Finding(
                "bandwidth-endpoint-unreachable", Severity.FAIL,
                f"The {key} to {label} moved no data: {'; '.join(d['errors']) or 'no bytes'}.",
                {"direction": key, "errors": d["errors"], "path": where},
                hint="The endpoint answers small requests but not transfers: a proxy or firewall "
                     "may block large or POST requests; try another endpoint."))
        elif d["errors"]:
            out.append(Finding(
                "bandwidth-incomplete", Severity.WARN,
                f"{label} stopped answering during the {key} ({'; '.join(d['errors'])}): the "
                f"{d['mbps']} Mbps figure is incomplete and proves nothing.",
                {"direction": key, "errors": d["errors"], "path": where, "mbps": d["mbps"],
                 "steady_seconds": d["steady_seconds"]},
                hint="A server limit (roomprobe serve --max-mb/--duration), a proxy or a stalled "
                     "link cut the transfer; rerun, or raise the server's limits."))
        elif float(d["steady_seconds"]) < float(o.min_steady):
            out.append(Finding(
                "bandwidth-incomplete", Severity.WARN,
                f"The {key} on the {where} path was cut short: {d['steady_seconds']} s of steady "
                f"transfer after warm-up, less than the {float(o.min_steady):g} s a figure needs; "
                f"{d['mbps']} Mbps is not proof.",
                {"direction": key, "path": where, "mbps": d["mbps"],
                 "steady_seconds": d["steady_seconds"], "min_steady": o.min_steady},
                hint="Give the probe more time: --set bandwidth.timeout=30 (its deadline) or "
                     "--set bandwidth.duration=10."))
    if not m["idle"].get("samples"):
        out.append(Finding(
            "bandwidth-incomplete", Severity.WARN,
            f"No idle round trip to {label} was measured: latency and buffer bloat are unknown.",
            {"path": where, "ping_lost": m.get("ping_lost")},
            hint="The endpoint stopped answering small requests; rerun the check."))
    return out


PROBE = Probe("bandwidth", "Bandwidth and latency under load", run, timeout_s=18.0, options=Options,
              validate=validate, long_running=True, description=described(__doc__))
