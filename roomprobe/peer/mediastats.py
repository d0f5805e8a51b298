"""Figures of a media flow, as pure functions over timestamps: testable without a network.

Definitions (the same ones irtt and RTP receivers use, so the numbers compare):
- interarrival jitter: RFC 3550 section 6.4.1, J += (|D| - J) / 16 with
  D = (R_j - R_i) - (S_j - S_i) over packets in arrival order; clock offsets cancel, so it works
  per direction with the reflector's receive stamps. Reported as the mean of J over the test
  (the last J alone reflects only the last ~16 packets) and the last J;
- IPDV: mean |D| between consecutive arrivals (irtt's "IPDV", for the benchmark);
- one-way delay variation: spread (p95 - min, max - min) of send->receive delays, which need
  no clock sync because only differences count;
- E-model: ITU-T G.107's R-factor in the simplified form of Cole & Rosenbluth (2001) for a
  G.711-like codec with packet loss concealment (Ie = 0, Bpl = 25.1, G.113), and MOS from R.
  It is an estimate of how a call would sound, not a listening test.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) of ``values``, or None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[k]


def rfc3550_jitter(pairs: Iterable[tuple[int, int]]) -> tuple[float | None, float | None, float | None]:
    """(mean J, last J, mean |D|) in ms over ``(send_ns, recv_ns)`` pairs in arrival order."""
    j = 0.0
    js: list[float] = []
    ds: list[float] = []
    prev: tuple[int, int] | None = None
    for s, r in pairs:
        if prev is not None:
            d = ((r - prev[1]) - (s - prev[0])) / 1e6
            j += (abs(d) - j) / 16.0
            js.append(j)
            ds.append(abs(d))
        prev = (s, r)
    if not js:
        return None, None, None
    return sum(js) / len(js), js[-1], sum(ds) / len(ds)


def delay_variation(pairs: Sequence[tuple[int, int]]) -> dict[str, float | None]:
    """Spread of one-way delays (ms) from ``(send_ns, recv_ns)``: offsets cancel in differences."""
    delays = [(r - s) / 1e6 for s, r in pairs]
    if not delays:
        return {"p95_minus_min_ms": None, "max_minus_min_ms": None}
    lo = min(delays)
    p95 = percentile(delays, 95)
    return {"p95_minus_min_ms": round((p95 or lo) - lo, 2), "max_minus_min_ms": round(max(delays) - lo, 2)}


def longest_run_missing(present: set[int], first: int, last: int) -> int:
    """Longest run of integers in [first, last] not in ``present``."""
    best = run = 0
    for n in range(first, last + 1):
        if n in present:
            run = 0
        else:
            run += 1
            best = max(best, run)
    return best


def r_factor(one_way_ms: float, loss_pct: float, burst_ratio: float = 1.0) -> float:
    """ITU-T G.107 R (simplified): 93.2 - Id(delay) - Ie_eff(loss, burstiness)."""
    d = max(0.0, one_way_ms)
    i_d = 0.024 * d + (0.11 * (d - 177.3) if d > 177.3 else 0.0)
    ppl = max(0.0, min(100.0, loss_pct))
    ie, bpl = 0.0, 25.1
    ie_eff = ie + (95 - ie) * ppl / (ppl / max(1.0, burst_ratio) + bpl)
    return 93.2 - i_d - ie_eff


def mos(r: float) -> float:
    """MOS (1..4.5) from R, G.107 Annex B."""
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r)


def burst_ratio(lost: int, total: int, bursts: int) -> float:
    """G.113 burst ratio: mean observed burst length over the mean expected for random loss."""
    if lost <= 0 or bursts <= 0 or total <= 0:
        return 1.0
    p = lost / total
    expected = 1 / (1 - p) if p < 1 else float(lost)
    return max(1.0, (lost / bursts) / expected)


# One reply as the timeline needs it: (our seq, the reflector's reply seq, our send stamp in ns,
# RTT in ms).
TimelineReply = tuple[int, int, int, float]


def _send_times(known: dict[int, int], sent: int) -> list[int]:
    """Send stamp of every seq 0..sent-1: known ones as stamped, the lost ones interpolated."""
    if not known:
        return []
    seqs = sorted(known)
    step = ((known[seqs[-1]] - known[seqs[0]]) / (seqs[-1] - seqs[0])) if len(seqs) > 1 else 0.0
    out: list[int] = []
    j = 0
    for n in range(sent):
        while j + 1 < len(seqs) and seqs[j + 1] <= n:
            j += 1
        a = seqs[j]
        if n == a:
            out.append(known[a])
        elif n < a or j + 1 >= len(seqs):  # before the first or after the last answered one
            out.append(int(known[a] + (n - a) * step))
        else:
            b = seqs[j + 1]
            out.append(int(known[a] + (known[b] - known[a]) * (n - a) / (b - a)))
    return out


def timeline(flows: Sequence[tuple[int, Sequence[TimelineReply]]], bucket_ms: float = 250.0,
             max_points: int = 200) -> dict[str, object] | None:
    """RTT and loss per direction over the test's time, for the html ticket's picture.

    ``flows``: per flow, (packets sent, replies in arrival order). Buckets of ``bucket_ms``
    (widened so there are at most ``max_points``), by our send time. Per bucket: the median RTT
    of the replies sent in it, and the loss each way. Which way a missing reply was lost is
    told by the reflector's reply numbers: a gap there is a reply lost on the way back (placed
    between its neighbours' send times); a request without reply and without such a gap was
    lost on the way out. An estimate per bucket; the totals are the probe's own figures.
    None when nothing came back (there is no time axis to draw).
    """
    per_flow = []
    t0: int | None = None
    t_end: int | None = None
    for sent, replies in flows:
        first: dict[int, TimelineReply] = {}
        for r in replies:
            if 0 <= r[0] < sent and r[0] not in first:
                first[r[0]] = r
        times = _send_times({s: r[2] for s, r in first.items()}, sent)
        if not times:
            continue
        per_flow.append((first, times))
        t0 = min(times) if t0 is None else min(t0, min(times))
        t_end = max(times) if t_end is None else max(t_end, max(times))
    if t0 is None or t_end is None:
        return None
    span_ms = (t_end - t0) / 1e6
    width = max(bucket_ms, math.ceil(span_ms / max_points / 50.0) * 50.0)
    n = max(1, min(max_points, int(span_ms // width) + 1))

    def slot(t_ns: float) -> int:
        return max(0, min(n - 1, int((t_ns - t0) / 1e6 // width)))

    sent_b = [0] * n
    unanswered = [0] * n
    down_lost = [0] * n
    answered = [0] * n
    rtts: list[list[float]] = [[] for _ in range(n)]
    for first, times in per_flow:
        for seq, t in enumerate(times):
            b = slot(t)
            sent_b[b] += 1
            if seq in first:
                answered[b] += 1
                rtts[b].append(first[seq][3])
            else:
                unanswered[b] += 1
        by_rseq = sorted((r[1], r[2]) for r in first.values())
        for (ra, ta), (rb, tb) in zip(by_rseq, by_rseq[1:], strict=False):
            for k in range(ra + 1, rb):  # replies the reflector sent that never arrived
                down_lost[slot(ta + (tb - ta) * (k - ra) / (rb - ra))] += 1
    up_loss: list[float | None] = []
    down_loss: list[float | None] = []
    for b in range(n):
        d = min(down_lost[b], unanswered[b])
        up = unanswered[b] - d
        up_loss.append(round(100.0 * up / sent_b[b], 1) if sent_b[b] else None)
        arrived = sent_b[b] - up
        down_loss.append(round(100.0 * d / arrived, 1) if arrived else None)
    return {"bucket_ms": width, "t_s": [round(b * width / 1000.0, 3) for b in range(n)],
            "rtt_p50_ms": [None if not v else round(percentile(v, 50) or 0.0, 2) for v in rtts],
            "up_loss_pct": up_loss, "down_loss_pct": down_loss}
