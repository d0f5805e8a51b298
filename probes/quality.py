"""quality: would a call on the LAN path to the peer sound and look right?

Call-shaped UDP (audio every 20 ms, video frame bursts, Zoom's DSCP marks) to a 'roomprobe serve'
peer and back: loss, bursts, jitter, reordering, RTT, E-model MOS estimate per direction, DSCP
survival, path MTU. Runs with --peer.

Bandwidth rarely ruins a meeting; loss, jitter and bursts do. With ``check --peer ADDR`` this
probe sends call-shaped UDP to the UDP reflector of ``roomprobe serve`` on the peer (same port
number as its TCP endpoint, same session token): an audio-like flow (a small packet every 20 ms,
DSCP 56) and a video-like flow (a frame burst ~30 times a second, DSCP 40), both
ways at once, then asks the reflector what arrived. Per direction and flow: loss %, longest loss
burst, RFC 3550 jitter, reordering, duplicates, RTT p50/p95/max, one-way delay variation, an
E-model (ITU-T G.107, simplified) R-factor and MOS estimate, and what happened to the DSCP mark
(kept, bleached to 0, re-marked). Then the path MTU with DF-flagged echoes: the largest that
passes, whether "fragmentation needed" came back, and a black hole if it did not.

Judged against the nearest published targets (Microsoft 365 network test: loss < 1%,
jitter < 30 ms, RTT < 100 ms; Dolby/BlueJeans "poor": loss > 1%, jitter > 40 ms, RTT > 150 ms;
Google Meet: loss < 3%); all levels are options. PASS only when every flow's measurement is
complete (the reflector's counts came back, nothing was capped) and meets the targets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from roomprobe.core.errors import UsageError
from roomprobe.core.probe import Context, Finding, Probe, Result, Severity, Status, described
from roomprobe.peer.port import PEER_PORT


@dataclass(frozen=True)
class Options:
    """``[probes.quality]`` in the config file, ``--set quality.KEY=VALUE``."""

    peer_port: int = PEER_PORT  # roomprobe serve's port when --peer has none (UDP)
    duration: float = 4.0  # seconds of call-shaped traffic
    audio_dscp: int = 56  # Zoom's default marks (KB0066619): audio 56, video and sharing 40
    video_dscp: int = 40
    audio_bytes: int = 200  # one 20 ms Opus frame with RTP/SRTP/UDP overhead, roughly
    audio_interval_ms: float = 20.0
    video_kbps: float = 1500.0  # a 720p room stream is about 1.2-2 Mbps
    video_fps: float = 30.0
    video_packet_bytes: int = 1200  # video RTP packets stay under ~1200 bytes
    # warn at the Microsoft 365 network test's limits, fail at Dolby/BlueJeans' "poor" (jitter,
    # RTT) and Google Meet's loss ceiling (docs/quality.md)
    loss_warn_pct: float = 1.0
    loss_fail_pct: float = 3.0  # Google Meet
    jitter_warn_ms: float = 30.0
    jitter_fail_ms: float = 40.0  # Dolby/BlueJeans "poor"
    rtt_warn_ms: float = 100.0
    rtt_fail_ms: float = 150.0  # p95, Dolby/BlueJeans "poor"
    dscp: bool = True  # judge whether the marks survive
    mtu: bool = True  # probe the path MTU
    mtu_top: int = 1500
    mtu_floor: int = 576
    wait_for_link_s: float = 25.0  # wait this long for the bandwidth test to free the link


def validate(o: Options) -> None:
    """Refuse options that cannot describe a flow (exit 3, before anything is sent)."""
    from roomprobe.peer.mediawire import ECHO_LEN

    if not 1.0 <= o.duration <= 60.0:
        raise UsageError(f"quality.duration {o.duration:g} is out of range; give 1-60 seconds")
    for name in ("audio_dscp", "video_dscp"):
        if not 0 <= getattr(o, name) <= 63:
            raise UsageError(f"quality.{name} must be a DSCP value 0-63 (Zoom: audio 56, video 40)")
    for name in ("audio_bytes", "video_packet_bytes"):
        if not ECHO_LEN <= getattr(o, name) <= 1472:
            raise UsageError(f"quality.{name} must be {ECHO_LEN}-1472 bytes")
    if not 5.0 <= o.audio_interval_ms <= 200.0 or not 1.0 <= o.video_fps <= 120.0:
        raise UsageError("quality.audio_interval_ms must be 5-200 and quality.video_fps 1-120")
    if not 0 <= o.video_kbps <= 50_000:
        raise UsageError("quality.video_kbps must be 0-50000 (0 turns the video flow off)")
    if not 576 <= o.mtu_floor < o.mtu_top <= 9000:
        raise UsageError("quality.mtu_floor must be >= 576 and below quality.mtu_top (<= 9000)")


def flows(o: Options) -> list[Any]:
    from roomprobe.peer.mediaflow import FlowSpec
    from roomprobe.peer.mediawire import FLOW_AUDIO, FLOW_VIDEO

    out = [FlowSpec("audio", FLOW_AUDIO, int(o.audio_dscp), int(o.audio_bytes),
                    float(o.audio_interval_ms) / 1000.0)]
    if o.video_kbps > 0:
        frame = float(o.video_kbps) * 1000 / 8 / float(o.video_fps)
        size = int(o.video_packet_bytes)
        packets = max(1, round(frame / size))
        out.append(FlowSpec("video", FLOW_VIDEO, int(o.video_dscp), size, 1.0 / float(o.video_fps),
                            packets))
    return out


def estimate(flow: dict[str, Any], direction: str) -> dict[str, Any] | None:
    """E-model R and MOS for one direction of the audio flow (an estimate, not a listening test)."""
    from roomprobe.peer import mediastats as ms

    d = flow.get(direction)
    rtt = flow["rtt_ms"]["p50"]
    if not d or rtt is None or d["loss_pct"] is None:
        return None
    # one-way: half the RTT + a jitter buffer of twice the jitter + 20 ms packetisation
    one_way = rtt / 2 + 2 * (d["jitter_ms"] or 0.0) + 20.0
    r = ms.r_factor(one_way, d["loss_pct"])
    return {"r_factor": round(r, 1), "mos": round(ms.mos(r), 2), "one_way_ms": round(one_way, 1),
            "estimate": True}


def timeline(records: dict[str, Any]) -> dict[str, Any] | None:
    """RTT and loss per direction over the test's time (the html ticket's picture), all flows."""
    from roomprobe.peer import mediastats as ms

    return ms.timeline([(rec.sent, [(r.seq, r.r_seq, r.t_send,
                                     (r.t_recv - r.t_send - max(0, r.r_send - r.r_recv)) / 1e6)
                                    for r in rec.replies]) for rec in records.values()])


def judge(figures: list[dict[str, Any]], o: Options) -> list[Finding]:
    """Findings for loss, jitter and RTT: one per figure, naming the direction(s) and flow(s)."""
    out: list[Finding] = []
    checks = (
        ("quality-loss", "loss", lambda d, f: d["loss_pct"], o.loss_warn_pct, o.loss_fail_pct, "%",
         "Loss breaks audio up and freezes video. Look for a bad cable or port (interface errors), "
         "Wi-Fi interference, or an overloaded switch or uplink; rerun wired to compare."),
        ("quality-jitter", "jitter", lambda d, f: d["jitter_ms"], o.jitter_warn_ms, o.jitter_fail_ms,
         " ms", "Jitter comes from queues that fill and drain: enable QoS for Zoom's marks, smart "
                "queue management (fq_codel/CAKE) on the router, or move the room off Wi-Fi."),
    )
    for fid, word, get, warn, fail, unit, hint in checks:
        bad = []
        for f in figures:
            for direction in ("up", "down"):
                d = f.get(direction)
                value = get(d, f) if d else None
                if value is not None and value >= warn:
                    bad.append((f["flow"], direction, value, value >= fail))
        if bad:
            sev = Severity.FAIL if any(b[3] for b in bad) else Severity.WARN
            names = ", ".join(f"{flow} {direction} {value:g}{unit}" for flow, direction, value, _ in bad)
            out.append(Finding(fid, sev, f"Media {word} on the LAN path is above target: {names} "
                                         f"(warn at {warn:g}{unit}, fail at {fail:g}{unit}).",
                               {"flows": [{"flow": b[0], "direction": b[1], "value": b[2]} for b in bad],
                                "warn": warn, "fail": fail}, hint=hint))
    bad_rtt = [(f["flow"], f["rtt_ms"]["p95"]) for f in figures
               if f["rtt_ms"]["p95"] is not None and f["rtt_ms"]["p95"] >= o.rtt_warn_ms]
    if bad_rtt:
        sev = Severity.FAIL if any(v >= o.rtt_fail_ms for _, v in bad_rtt) else Severity.WARN
        out.append(Finding("quality-rtt", sev,
                           "Round trip on the LAN path is above target: "
                           + ", ".join(f"{n} p95 {v:g} ms" for n, v in bad_rtt)
                           + f" (warn at {o.rtt_warn_ms:g} ms, fail at {o.rtt_fail_ms:g} ms).",
                           {"flows": [{"flow": n, "p95_ms": v} for n, v in bad_rtt],
                            "warn": o.rtt_warn_ms, "fail": o.rtt_fail_ms},
                           hint="A LAN round trip this long means a deep queue (buffer bloat), a "
                                "VPN or tunnel hairpin, or a congested Wi-Fi; check the path with "
                                "'traceroute' and the bandwidth probe's bufferbloat figure."))
    return out


def judge_dscp(figures: list[dict[str, Any]]) -> list[Finding]:
    out: list[Finding] = []
    for f in figures:
        for direction in ("up", "down"):
            mark = (f.get(direction) or {}).get("dscp")
            if not mark or mark["verdict"] in ("kept", "unknown") or mark["sent"] == 0:
                continue
            fid = "dscp-bleached" if mark["verdict"] == "bleached" else "dscp-remarked"
            word = "reset to 0" if fid == "dscp-bleached" else f"changed to {mark['received']}"
            out.append(Finding(fid, Severity.WARN,
                               f"The {f['flow']} flow's DSCP mark {mark['sent']} was {word} on the "
                               f"way {direction} ({'to' if direction == 'up' else 'from'} the peer).",
                               {"flow": f["flow"], "direction": direction, **mark},
                               hint="QoS policy on a switch, the Wi-Fi or the WAN ignores Zoom's "
                                    "marks (audio 56, video 40): trust DSCP on the access ports "
                                    "and uplinks, or classify Zoom's UDP 8801-8810 there."))
    return out


def judge_mtu(m: dict[str, Any], video_bytes: int) -> list[Finding]:
    if not m.get("supported"):
        return [Finding("pmtu-unmeasured", Severity.INFO,
                        f"Path MTU not measured: {m.get('reason') or m.get('error')}.", m)]
    if m.get("error") or m.get("largest_ok") is None:
        return [Finding("pmtu-unmeasured", Severity.INFO,
                        "Path MTU not measured: even the smallest DF-flagged echo "
                        f"({m['tried'][-1][0] if m.get('tried') else '?'} bytes) did not come back.",
                        m)]
    if m["black_hole"]:
        sev = Severity.FAIL if m["largest_ok"] < video_bytes + 28 else Severity.WARN
        return [Finding("pmtu-blackhole", sev,
                        f"Packets larger than {m['largest_ok']} bytes vanish on the way to the peer "
                        "and no ICMP 'fragmentation needed' comes back (an MTU black hole): "
                        "Zoom's large video packets vanish the same way.", m,
                        hint="A link with a smaller MTU (VPN, PPPoE, tunnel, VLAN) sits on the path "
                             "and a firewall drops ICMP type 3 code 4: allow it, or lower the MTU "
                             "(or clamp MSS) on that link.")]
    if m.get("path_mtu_reported") or (m["largest_ok"] < m.get("local_mtu", 0) - 8):
        return [Finding("pmtu-reduced", Severity.INFO,
                        f"The path MTU to the peer is {m['largest_ok']} bytes (less than the local "
                        f"{m.get('local_mtu')}); ICMP 'fragmentation needed' "
                        + ("had told the OS before this run, or the route sets it (the route "
                           f"holds a path MTU of {m.get('route_mtu')})" if m.get("learnt_earlier") else
                           "came back" if m["icmp_frag_needed"] else "did not come back")
                        + (f"; {m['smallest_failed']} bytes did not pass" if m.get("smallest_failed") else "")
                        + ".", m)]
    return []


def run(ctx: Context) -> Result:
    """Call-shaped UDP flows to the peer's reflector (with the link to the peer held), then
    what they prove: loss, jitter, RTT and MOS per flow, DSCP survival and the path MTU."""
    from roomprobe.peer import mediaflow

    o = ctx.options
    if ctx.peer is None:
        return Result(Status.SKIP, "no-peer", "needs --peer ADDR (a 'roomprobe serve' peer)")
    host, port = ctx.peer.host, ctx.peer.port_or(o.peer_port)
    if not 0 < port < 65536:
        return Result.unmeasured("bad-peer", f"quality.peer_port {port} is not a port number "
                                 "(1 to 65535); give one in --peer ADDR:PORT", {})
    label = f"{f'[{host}]' if ':' in host else host}:{port}/udp"
    measured = _measure(ctx, host, port, label)
    if isinstance(measured, Result):
        return measured
    records, mtu, duration = measured
    figures = [mediaflow.analyse(rec) for rec in records.values()]
    for f in figures:
        if f["flow"] == "audio":
            f["call_estimate"] = {d: estimate(f, d) for d in ("up", "down")}
    evidence: dict[str, Any] = {"peer": label, "duration_s": round(duration, 2),
                                "flows": {f["flow"]: f for f in figures}, "mtu": mtu,
                                "timeline": timeline(records)}
    if not any(f["replies"] for f in figures):
        complete = all(f["complete"] for f in figures)
        why = ("the reflector answered the final count but no echo came back" if complete else
               "nothing came back: no reflector there, a wrong --peer-token (it stays silent), "
               "or UDP to that port is blocked")
        return Result(Status.FAIL, "quality-peer-unreachable", f"{label}: {why}", evidence,
                      [Finding("quality-peer-unreachable", Severity.FAIL,
                               f"The quality test got no answer from {label}: {why}.", evidence,
                               hint="Start 'roomprobe serve --bind ADDR' on the peer (it answers "
                                    "UDP on its port), pass --peer-token, and let UDP to that "
                                    "port through any host firewall.")])
    findings = judge(figures, o)
    if o.dscp:
        findings += judge_dscp(figures)
    if mtu is not None:
        findings += judge_mtu(mtu, int(o.video_packet_bytes))
    findings += _unmeasured_findings(figures, o)
    return _verdict(findings, figures, _summary(label, figures, mtu), evidence)


def _measure(ctx: Context, host: str, port: int,
             label: str) -> Result | tuple[dict[str, Any], dict[str, Any] | None, float]:
    """The flows (and the MTU probe) while this probe holds the link to the peer, so the
    bandwidth test never loads it at the same time: (records, mtu, duration), or the Result
    when the link stayed busy or the peer could not be reached."""
    from roomprobe.peer import mediaflow
    from roomprobe.peer.link import PEER_LINK

    o = ctx.options
    peer = ctx.peer
    token = peer.token if peer is not None else ""
    need = float(o.duration) + 3.0
    if not PEER_LINK.acquire(timeout=max(0.0, min(float(o.wait_for_link_s), ctx.remaining() - need))):
        ev = {"peer": label, "waited_s": round(float(o.wait_for_link_s), 1)}
        return Result.unmeasured("peer-link-busy",
                                 "the bandwidth test held the link to the peer too long; rerun "
                                 "with --no-bandwidth or raise quality.timeout", ev)
    try:
        specs = flows(o)
        duration = max(1.0, min(float(o.duration), ctx.remaining() - 3.0))
        try:
            grant = None
            if peer is not None and peer.tls:
                # serve --tls: a session opened over the pinned HTTPS channel, never the token's
                grant = mediaflow.open_session(host, port, token, peer.fingerprint,
                                               min(5.0, max(0.5, ctx.remaining() - need)))
            records = mediaflow.run_flows(host, port, token, specs, duration, ctx.deadline - 1.5,
                                          grant=grant)
        except mediaflow.MediaError as exc:
            ev = {"peer": label, "stage": exc.stage, "error": str(exc)}
            return Result(Status.FAIL, "quality-peer-unreachable", f"{label}: {exc}", ev,
                          [Finding("quality-peer-unreachable", Severity.FAIL,
                                   f"The quality test could not reach {label}: {exc}.", ev,
                                   hint="Check the address and the route to the peer.")])
        mtu = (mediaflow.probe_mtu(host, port, token, int(o.mtu_top), int(o.mtu_floor),
                                   0.25, ctx.deadline - 0.3, grant=grant) if o.mtu else None)
    finally:
        PEER_LINK.release()
    return records, mtu, duration


def _unmeasured_findings(figures: list[dict[str, Any]], o: Any) -> list[Finding]:
    """What the flows could not measure: an incomplete flow, DSCP marks this OS does not report."""
    findings: list[Finding] = []
    gaps = {f["flow"]: gap for f in figures if (gap := unproven(f))}
    incomplete = list(gaps)
    if incomplete:
        findings.append(Finding("quality-incomplete", Severity.WARN,
                                f"The quality measurement of {', '.join(incomplete)} is incomplete "
                                f"({'; '.join(f'{k}: {v}' for k, v in gaps.items())}), so its figures "
                                "prove nothing.",
                                {"flows": incomplete, "why": gaps},
                                hint="Rerun; if it repeats, raise the peer's limits or check that "
                                     "UDP to the peer is not rate-limited."))
    if o.dscp and all((f.get(d) or {}).get("dscp", {}).get("verdict", "unknown") == "unknown"
                      for f in figures for d in ("up", "down")):
        findings.append(Finding("dscp-unmeasured", Severity.INFO,
                                "DSCP survival was not measured: this OS does not report the marks "
                                "packets arrive with.", {}))
    return findings


def _summary(label: str, figures: list[dict[str, Any]], mtu: dict[str, Any] | None) -> str:
    """One line: loss, jitter and RTT per flow, the estimated MOS and the path MTU."""
    audio = next((f for f in figures if f["flow"] == "audio"), None)
    est = (audio or {}).get("call_estimate") or {}
    parts = []
    for f in figures:
        up, down = f.get("up") or {}, f.get("down") or {}
        parts.append(f"{f['flow']} loss up {up.get('loss_pct', '-')}%/down {down.get('loss_pct', '-')}%, "
                     f"jitter {up.get('jitter_ms', '-')}/{down.get('jitter_ms', '-')} ms, "
                     f"RTT p95 {f['rtt_ms']['p95']} ms")
    mos = [e["mos"] for e in est.values() if e]
    summary = f"{label}: " + "; ".join(parts)
    if mos:
        summary += f"; est. MOS {min(mos):g}"
    if mtu and mtu.get("largest_ok"):
        summary += f"; path MTU {mtu['largest_ok']}"
    return summary


def _verdict(findings: list[Finding], figures: list[dict[str, Any]], summary: str,
             evidence: dict[str, Any]) -> Result:
    """The worst finding decides; PASS only with the proof the complete flows give."""
    worst = next((f for f in findings if f.severity == Severity.FAIL), None) or next(
        (f for f in findings if f.severity == Severity.WARN), None)
    if worst is not None:
        status = Status.FAIL if worst.severity == Severity.FAIL else Status.WARN
        reason = next(f.id for f in findings if f.severity != Severity.INFO)
        return Result(status, reason, summary, evidence, findings)
    got = proof(figures)
    if not got:  # cannot happen while unproven() names every gap; never PASS on nothing
        return Result.unmeasured("quality-unproven", summary, evidence, findings)
    return Result.passed("ok", summary, evidence, got, findings)


def unproven(f: dict[str, Any]) -> str | None:
    """Why one flow's figures prove nothing, or None when they are complete.

    Complete = the reflector's counts came back uncapped, every packet of the call shape was
    sent, and both directions have loss and jitter, the flow an RTT: a figure that could not be
    computed (nothing sent, nothing echoed) is a gap, never a pass by silence of the judge.
    """
    if not f.get("complete"):
        return "the reflector's counts did not come back"
    if f.get("capped"):
        return "the reflector capped the flow"
    if not f.get("sent"):
        return f"nothing was sent ({f.get('send_errors') or 0} send errors)"
    if f.get("send_errors"):
        return f"{f['send_errors']} packets could not be sent"
    for direction in ("up", "down"):
        if (f.get(direction) or {}).get("loss_pct") is None:
            return f"no {direction} loss figure (nothing was expected that way)"
    if not f.get("replies"):
        return None  # total loss is a measured figure: the loss finding carries the verdict
    for direction in ("up", "down"):
        if f[direction].get("jitter_ms") is None:
            return f"no {direction} jitter figure (fewer than two packets came back)"
    if (f.get("rtt_ms") or {}).get("p95") is None:
        return "no round trip measured"
    return None


def proof(figures: list[dict[str, Any]]) -> dict[str, Any]:
    """What a quality PASS stands on: every flow complete (``unproven`` is None) with its loss,
    jitter and RTT figures per direction; empty (no PASS) when any flow has a gap or none ran."""
    if not figures or any(unproven(f) or not f.get("replies") for f in figures):
        return {}
    return {f["flow"]: {"sent": f["sent"], "replies": f["replies"], "rtt_p95_ms": f["rtt_ms"]["p95"],
                        **{d: {"loss_pct": f[d]["loss_pct"], "jitter_ms": f[d]["jitter_ms"],
                               "expected": f[d].get("expected")} for d in ("up", "down")}}
            for f in figures}


PROBE = Probe("quality", "Media quality like a call (loss, jitter, DSCP, path MTU)", run, timeout_s=40.0,
              options=Options, validate=validate, long_running=True, default_enabled=False,
              description=described(__doc__))
