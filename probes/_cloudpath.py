"""The cloud probe's media-path prediction: which transport the Zoom Rooms app will end up on.

Zoom's order (the "Connection Process" white paper; KB0061864): UDP 8801 to the meeting's
multimedia router, then TCP 8801/8802, then TLS over TCP 443 (through the web proxy if one
applies). Each step is judged from what was measured:

  open     proven: seen in the app's own sockets, or a server on that path answered
  likely   not proven to Zoom, but the way out is: a control STUN server answered over UDP
  blocked  proven blocked (a local EPERM, an ICMP from a filter or router, a dropped connect to
           a server that is known to listen)
  unknown  nothing could be measured (Zoom publishes no media host that answers outside a
           meeting), or it was cut short

The app takes the first step that works, so the prediction is the first step that is open or
likely after the blocked ones; an unknown step above the first proven one leaves the prediction
at that proven "floor", saying a better step may still work. Pure functions, no I/O.
"""

from __future__ import annotations

from typing import Any

STEPS = ("udp-8801", "tcp-8801", "tls-443")
LABEL = {"udp-8801": "UDP 8801", "tcp-8801": "TCP 8801/8802", "tls-443": "TLS 443", "none": "none"}
COST = {
    "udp-8801": "best: Zoom's own media protocol over UDP, the least delay",
    "tcp-8801": "one step down: over TCP a lost packet stalls the ones behind it, so more delay "
                "and lower quality on a lossy link",
    "tls-443": "last resort: media inside TLS over TCP 443 (through the proxy if one applies): "
               "the most delay and the lowest quality; proxies and TLS inspection can stall it",
}
OPENS_WITH = {
    "udp-8801": "allow UDP 8801-8810 (and 3478-3479) out to Zoom's IP ranges on every firewall, "
                "including this device's own",
    "tcp-8801": "allow TCP 8801-8802 out to Zoom's IP ranges",
    "tls-443": "allow TCP 443 to Zoom's domains and IP ranges, directly or through the proxy, "
               "without TLS inspection",
}


def step(name: str, state: str, why: str) -> dict[str, Any]:
    """One rung of the ladder, with its cost and the rule that opens it."""
    return {"step": name, "label": LABEL[name], "state": state, "why": why, "cost": COST[name],
            "opens_with": OPENS_WITH[name]}


def predict(steps: list[dict[str, Any]], app: dict[str, Any] | None) -> dict[str, Any]:
    """The ``media_path`` object: ``transport``, ``basis``, ``may_be_better``, ``summary``,
    ``reasons``, ``steps`` (in Zoom's order) and ``app`` (what the app itself showed)."""
    by = {s["step"]: s for s in steps}
    reasons: list[str] = []
    app_brief = _app_brief(app)
    if app and app.get("transport") in ("udp-8801", "tcp-8801") and app.get("in_meeting"):
        transport, basis, better = app["transport"], "observed", app["transport"] != "udp-8801"
        reasons.append(f"the Zoom Rooms app is in a meeting and uses {LABEL[transport]} now "
                       f"({app.get('why')})")
    else:
        transport, basis, better = "none", "none", False
        unknown_above: list[str] = []
        for name in STEPS:
            s = by[name]
            if s["state"] == "blocked":
                reasons.append(f"{s['label']} blocked: {s['why']}")
                continue
            if s["state"] in ("open", "likely"):
                transport = name
                basis = "proven" if s["state"] == "open" else "likely"
                reasons.append(f"{s['label']} {s['state']}: {s['why']}")
                if unknown_above:
                    basis, better = "floor", True
                break
            unknown_above.append(name)
            reasons.append(f"{s['label']} unknown: {s['why']}")
        if app_brief["running"] is False:
            reasons.append("the Zoom Rooms app is not running here: nothing observed")
        elif app_brief["running"] and not app_brief["in_meeting"]:
            reasons.append(f"the Zoom Rooms app is running but not in a meeting ({app_brief['why']})")
    if transport == "none":
        summary = "no media path proven"
    elif basis == "floor":
        summary = f"at least {LABEL[transport]} (a better step could not be tested)"
    else:
        summary = f"{LABEL[transport]} ({basis})"
    return {"transport": transport, "basis": basis, "may_be_better": better, "summary": summary,
            "reasons": reasons, "steps": steps, "app": app_brief}


def _app_brief(app: dict[str, Any] | None) -> dict[str, Any]:
    if not app:
        return {"checked": False, "running": None, "in_meeting": None, "transport": None,
                "why": "not checked (cloud.app_process_names is empty)"}
    return {"checked": True, "running": app.get("running"), "in_meeting": app.get("in_meeting"),
            "transport": app.get("transport"), "why": app.get("why") or app.get("error")}
