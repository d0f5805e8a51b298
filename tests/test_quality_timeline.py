"""The quality probe's time series (RTT and loss per direction over the test) and its SVG plot."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from reportkit import as_report

from roomprobe.peer import mediastats as ms
from roomprobe.report import html

STEP = 20_000_000  # one audio packet every 20 ms


def _flow(sent: int, lost_up: set[int], lost_down: set[int], rtt=lambda s: 2.0):
    """Replies as the probe records them: r_seq counts what the reflector received and sent."""
    replies, r_seq = [], 0
    for s in range(sent):
        if s in lost_up:
            continue
        r_seq += 1
        if s in lost_down:
            continue
        replies.append((s, r_seq, 1_000_000_000 + s * STEP, rtt(s)))
    return sent, replies


def test_timeline_buckets_and_tells_directions_apart():
    # 10 s at 50 pps = 500 packets; bucket 250 ms = 12.5 packets.
    lost_up = set(range(100, 110))  # 2.0-2.2 s: ten requests lost on the way out
    lost_down = set(range(300, 305))  # 6.0-6.1 s: five replies lost on the way back
    t = ms.timeline([_flow(500, lost_up, lost_down, rtt=lambda s: 50.0 if 400 <= s < 425 else 2.0)])
    assert t is not None and t["bucket_ms"] == 250.0 and len(t["t_s"]) == 40
    up, down, rtt = t["up_loss_pct"], t["down_loss_pct"], t["rtt_p50_ms"]
    assert sum(1 for v in up if v) == 1 and up[8] == pytest.approx(10 / 13 * 100, abs=0.2)
    assert all(not v for i, v in enumerate(down) if i != 24) and down[24] == pytest.approx(5 / 13 * 100, abs=0.2)
    assert rtt[32] == 50.0 and rtt[0] == 2.0  # 8.0-8.25 s carried the slow replies
    assert not any(up[i] for i in range(len(up)) if i != 8)


def test_timeline_is_bounded_and_empty_without_replies():
    t = ms.timeline([_flow(60 * 50, set(), set())])  # 60 s: 240 buckets of 250 ms is too many
    assert t is not None and len(t["t_s"]) <= 200 and t["bucket_ms"] == 300.0
    assert ms.timeline([(50, [])]) is None and ms.timeline([]) is None


def test_timeline_loss_at_the_tail_is_interpolated_not_dropped():
    t = ms.timeline([_flow(100, set(range(90, 100)), set())])
    assert t is not None and t["up_loss_pct"][-1] and t["up_loss_pct"][-1] > 50


def _report_with(timeline):
    return as_report({"probes": [{"id": "quality", "status": "warn", "evidence": {"timeline": timeline}}]})


def test_svg_plot_structure():
    t = ms.timeline([_flow(500, set(range(100, 110)), set(range(300, 305)))])
    svgs = html.quality_plots(_report_with(t))
    assert len(svgs) == 2  # one per direction
    for svg, word in zip(svgs, ("upstream", "downstream"), strict=True):
        root = ET.fromstring(svg)
        assert root.tag.endswith("svg") and root.get("role") == "img"
        ns = "{http://www.w3.org/2000/svg}"
        assert word in root.find(f"{ns}title").text
        assert root.findall(f".//{ns}polyline"), "the RTT line"
        assert root.findall(f".//{ns}rect[@class='loss']"), "loss bars"
        assert not root.findall(f".//{ns}script") and "<script" not in svg and "href" not in svg
    # the loss bar of the upstream plot is where the loss was, and only there
    up = ET.fromstring(svgs[0])
    bars = up.findall(".//{http://www.w3.org/2000/svg}rect[@class='loss']")
    assert len(bars) == 1


def test_no_plot_without_a_timeline_or_with_a_hostile_one():
    assert html.quality_plots(as_report({"probes": []})) == []
    assert html.quality_plots(_report_with(None)) == []
    bad = {"bucket_ms": "x", "t_s": [0, 1], "rtt_p50_ms": ["<script>", 1], "up_loss_pct": [None],
           "down_loss_pct": "no"}
    assert html.quality_plots(_report_with(bad)) == []
    huge = {"bucket_ms": 250, "t_s": list(range(5000)), "rtt_p50_ms": [1.0] * 5000,
            "up_loss_pct": [0.0] * 5000, "down_loss_pct": [0.0] * 5000}
    out = html.quality_plots(_report_with(huge))
    assert all(s.count(",") < 2000 for s in out)  # bounded however long the series


# The y-axis labels ("0.127 ms" lost its first digits): each label must fit inside the SVG.
RTT_MAXES = (0.127, 2.0, 12.7, 1234.5, 98765.4)


def _plot_for(r_max: float) -> str:
    n = 40
    tl = {"bucket_ms": 250, "t_s": [i * 0.25 for i in range(n)],
          "rtt_p50_ms": [r_max / 1.15 * (1 if i == 5 else 0.5) for i in range(n)],
          "up_loss_pct": [100.0 if i == 8 else 0.0 for i in range(n)], "down_loss_pct": [0.0] * n}
    return html.quality_plots(_report_with(tl))[0]


@pytest.mark.parametrize("r_max", RTT_MAXES)
def test_axis_labels_fit_inside_the_plot(r_max):
    """Every label's extent (0.6 em per character, a sans-serif face's average for these
    characters) stays within the viewBox, whichever side it is anchored on."""
    root = ET.fromstring(_plot_for(r_max))
    view_w = float(root.get("viewBox").split()[2])
    texts = root.findall(".//{http://www.w3.org/2000/svg}text")
    labels = [el.text or "" for el in texts]
    assert any(lab.endswith(" ms") for lab in labels) and not any("e+" in lab for lab in labels), labels
    for el in texts:
        width = 0.6 * float(el.get("font-size")) * len(el.text or "")
        x = float(el.get("x"))
        left, right = (x - width, x) if el.get("text-anchor") == "end" else (x, x + width)
        assert left >= 0 and right <= view_w, (el.text, left, right)


def test_axis_labels_fit_as_chromium_draws_them(tmp_path):
    """The same, measured: headless chromium lays the plots out and reports each label's box."""
    import json
    import re
    import subprocess

    from lab import require_tool

    chromium = require_tool("chromium", "chromium")
    script = ("var out=[];document.querySelectorAll('svg').forEach(function(s){"
              "var vb=s.viewBox.baseVal;s.querySelectorAll('text').forEach(function(t){var b=t.getBBox();"
              "out.push([t.textContent,b.x,b.x+b.width,vb.width])})});"
              "document.getElementById('out').textContent=JSON.stringify(out)")
    page = tmp_path / "plots.html"
    page.write_text("<html><body>" + "".join(_plot_for(r) for r in RTT_MAXES)
                    + f"<pre id='out'></pre><script>{script}</script></body></html>")
    run = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                          page.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r"<pre id=\"out\">(.*?)</pre>", run.stdout, re.S)
    assert found and found.group(1), run.stdout[-500:] + run.stderr[-500:]
    boxes = json.loads(found.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
    assert len(boxes) >= 6 * len(RTT_MAXES)
    for text, left, right, view_w in boxes:
        assert left >= 0 and right <= view_w, (text, left, right)
