"""From findings to the Zoom error code a user is likely to see, and its fix.

A technician standing in a meeting room has a code on a screen, not a list of probe results.
``diagnose`` turns findings into "zoom-rooms 2002, high, because port-filtered: allow TCP 9090
on the room's firewall", using the declarative rules in ``roomprobe/diagnose/data/rules.toml``. When the
user tells us the code they saw, its causes come first, and the causes roomprobe checked and
found fine are listed as ruled out, so nobody spends an hour on a firewall that is not the
problem. Output fields are documented in docs/diagnosis.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from roomprobe.core.errors import UsageError
from roomprobe.diagnose import catalog as kb
from roomprobe.diagnose.rules import LIKELIHOOD, Rule, RuleSet, Target, ruleset

__all__ = ["diagnose"]

_SEVERITY = {"fail": 3, "warn": 2, "info": 1}
_NAMES = {v: k for k, v in LIKELIHOOD.items()}


def diagnose(findings: list[dict[str, Any]], user_code: str | None = None,
             probes_run: set[str] | None = None) -> list[dict[str, Any]]:
    """Likely Zoom error codes for these findings, best first.

    ``findings``: dicts ``{id, severity, probe, message, evidence, hint?}``. ``user_code``: what
    the user saw (``2002``, ``zoom-rooms:2002``, ``VIDEO_CAMERA_TAKEN``); its items go first,
    carry ``user_code: true`` and ``ruled_out``. ``probes_run``: probe ids that finished; a cause
    is ruled out only when the probe that would see it ran (without it, only probes that
    reported something count). Raises UsageError for an unknown ``user_code``.
    """
    rs = ruleset()
    fs = [f.to_dict() if hasattr(f, "to_dict") else dict(f) for f in findings]
    present: dict[str, dict[str, Any]] = {}
    for f in fs:
        present.setdefault(str(f.get("id")), f)
    user_entries: list[kb.Entry] = []
    if user_code is not None and str(user_code).strip():
        user_entries = kb.lookup(str(user_code))
        if not user_entries:
            raise UsageError(kb.unknown_code_message(str(user_code)))

    items = _items(rs, present)
    ran = _probes_ran(rs, fs, probes_run)
    for entry in user_entries:
        item = next((it for it in items if it["_target"].covers(entry)), None)
        if item is None:
            item = _no_network_cause(rs, entry, ran, probes_run is not None)
            items.append(item)
        elif item.get("group"):
            item["code"] = entry.code  # speak the user's exact number
        item["user_code"] = True
        item["ruled_out"] = _ruled_out(rs, entry, present, ran)
    items.sort(key=lambda it: (not it.get("user_code"), -LIKELIHOOD[it["likelihood"]],
                               -it.pop("_severity", 0), -len(it["because"]), it.pop("_order", 1 << 30)))
    for it in items:
        it.pop("_target", None)
    return items


def _items(rs: RuleSet, present: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One item per (product, code): the matched rules merged, the most specific cause first."""
    by_code: dict[tuple[str, int], list[tuple[Rule, Target, list[str]]]] = {}
    for rule in rs.rules:
        because = rule.match(present)
        if because is not None:
            for t in rule.targets:
                by_code.setdefault((t.product, t.code), []).append((rule, t, because))
    out = []
    for cands in by_code.values():
        # A rule whose evidence is a strict subset of another's (same code) adds nothing.
        cands = [c for c in cands if not any(set(c[2]) < set(o[2]) for o in cands)]
        cands.sort(key=lambda c: (-LIKELIHOOD[c[1].likelihood], -len(c[2]), -_sev(present, c[2]), c[0].order))
        rule, target, _ = cands[0]
        entry = kb.lookup(f"{target.product}:{target.code}")[0]
        because = _unique(fid for c in cands for fid in c[2])
        fix = _unique(step for c in cands for step in c[0].fix)
        fix.append(f"Every cause and fix of this code: roomprobe explain {entry.key}")
        item: dict[str, Any] = {
            "product": target.product, "code": target.code,
            "title": entry.title + (f" ({target.group})" if target.group else ""),
            "likelihood": target.likelihood, "because": because, "fix": fix,
            "cause": "; ".join(_unique(c[0].cause for c in cands)), "kind": rule.kind,
            "_target": target, "_severity": _sev(present, because), "_order": rule.order,
        }
        if target.group:
            item["group"] = target.group
        out.append(item)
    return out


def _no_network_cause(rs: RuleSet, entry: kb.Entry, ran: set[str], probes_known: bool) -> dict[str, Any]:
    """The item that says plainly: roomprobe looked, and the network is not why you saw this code."""
    label = f"{entry.code}" + (f" ({entry.name})" if entry.name else "")
    relevant = _relevant_probes(rs, entry)
    checks = " / ".join(entry.non_network)
    if not relevant:
        kind, cause = "not-network", (f"{entry.key} is not a network error roomprobe can check"
                                      + (f"; check {checks}" if checks else ""))
    elif probes_known and not relevant & ran:
        kind, cause = "not-checked", (f"roomprobe did not check the network causes of {label}: none of the "
                                      f"probes {', '.join(sorted(relevant))} ran")
    else:
        kind, cause = "no-network-cause", (f"no network cause found for {label}"
                                           + (f"; check {checks}" if checks else ""))
    fix = ([f"Check {x}" for x in entry.non_network] + [f"Every cause and fix: roomprobe explain {entry.key}"]
           if entry.non_network else list(entry.fix))
    return {"product": entry.product, "code": entry.code, "title": entry.title, "likelihood": "low",
            "because": [], "fix": fix, "cause": cause, "kind": kind,
            "_target": Target(entry.product, entry.code, "low", entry.group)}


def _ruled_out(rs: RuleSet, entry: kb.Entry, present: Mapping[str, Any], ran: set[str]) -> list[dict[str, str]]:
    """Causes of ``entry`` whose probes ran and raised nothing: checked and found fine."""
    hidden = {fid for p in present for fid in rs.unknowable.get(p, ())}
    out: list[dict[str, str]] = []
    for rule in rs.rules:
        if len(rule.when) > 1 or not any(t.covers(entry) for t in rule.targets):
            continue  # combinations are refinements of single-finding causes listed on their own
        ids = rule.indicators
        probes = sorted({rs.probe_of.get(i, "?") for i in ids})
        if any(i in present or i in hidden for i in ids) or not set(probes) <= ran:
            continue
        if rule.cause not in (o["cause"] for o in out):
            names = " and ".join(probes)
            out.append({"cause": rule.cause,
                        "how": f"the {names} probe{'s' if len(probes) > 1 else ''} ran and raised none of: "
                               + ", ".join(ids)})
    return out


def _relevant_probes(rs: RuleSet, entry: kb.Entry) -> set[str]:
    ids = set(entry.checks)
    ids |= {i for r in rs.rules if any(t.covers(entry) for t in r.targets) for i in r.indicators}
    return {rs.probe_of[i] for i in ids if i in rs.probe_of}


def _probes_ran(rs: RuleSet, findings: list[dict[str, Any]], probes_run: set[str] | None) -> set[str]:
    """Probe ids (as named in rules.toml) that ran: given ones plus any that reported a finding.

    A probe that reports under another name than rules.toml expects is mapped back through the
    ids it raised, so a renamed probe still counts (a renamed probe that raised nothing cannot be).
    """
    ran = set(probes_run or ()) | {str(f["probe"]) for f in findings if f.get("probe")}
    return ran | {rs.probe_of[str(f.get("id"))] for f in findings if str(f.get("id")) in rs.probe_of}


def _sev(present: Mapping[str, Mapping[str, Any]], ids: Iterable[str]) -> int:
    return max((_SEVERITY.get(str(present[i].get("severity")), 0) for i in ids if i in present), default=0)


def _unique(xs: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(xs))
