"""Diagnosis rules (``roomprobe/diagnose/data/rules.toml``): loading and validation.

Rules live in one readable data file so that the mapping "what roomprobe saw -> which Zoom code
the user gets" can be reviewed by people who know Zoom Rooms rather than Python. This module
only turns that file into typed objects and refuses a broken one; ``roomprobe.diagnose.mapping`` applies
them.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from roomprobe.diagnose import catalog as kb

__all__ = ["LIKELIHOOD", "KINDS", "Target", "Rule", "RuleSet", "ruleset", "validate_rules"]

LIKELIHOOD: dict[str, int] = {"high": 3, "medium": 2, "low": 1}
KINDS: tuple[str, ...] = ("network", "quality")


@dataclass(frozen=True)
class Target:
    """A code a rule points at. ``group`` is set for ranges such as ``104101-104118``."""

    product: str
    code: int
    likelihood: str
    group: str | None = None

    def covers(self, entry: kb.Entry) -> bool:
        """True if a user who saw ``entry`` is talking about this target."""
        if self.product != entry.product:
            return False
        return entry.code == self.code or (self.group is not None and entry.group == self.group)


@dataclass(frozen=True)
class Rule:
    """Fires when every id in ``when`` and (if any are listed) one id of ``any`` is present."""

    id: str
    when: tuple[str, ...]
    any: tuple[str, ...]
    cause: str
    fix: tuple[str, ...]
    targets: tuple[Target, ...]
    kind: str
    order: int

    @property
    def indicators(self) -> tuple[str, ...]:
        return self.when + self.any

    def match(self, present: Mapping[str, Any]) -> list[str] | None:
        """The finding ids that made the rule fire (its ``because``), or None."""
        if not all(w in present for w in self.when):
            return None
        hit = [a for a in self.any if a in present]
        if self.any and not hit:
            return None
        return [*self.when, *hit]


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    probe_of: Mapping[str, str]  # finding id -> probe id that raises it
    unknowable: Mapping[str, tuple[str, ...]]  # finding id -> ids it leaves untested


@lru_cache(maxsize=1)
def _raw() -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10
        import tomli as tomllib
    from importlib.resources import files

    return tomllib.loads(files("roomprobe.diagnose").joinpath("data/rules.toml").read_text(encoding="utf-8"))


def _target(spec: Mapping[str, Any]) -> Target:
    product, rest = kb.split_code(str(spec.get("code", "")))
    first, dash, _ = rest.partition("-")
    if product is None or not first.isdigit():
        raise ValueError(f"target {spec.get('code')!r} is not product:code or product:FIRST-LAST")
    group = rest if dash else None
    return Target(product, int(first), str(spec.get("likelihood")), group)


@lru_cache(maxsize=1)
def ruleset() -> RuleSet:
    """The parsed rules (cached). Raises ValueError if rules.toml is invalid."""
    raw = _raw()
    problems = validate_rules(raw)
    if problems:
        raise ValueError("roomprobe/diagnose/data/rules.toml is invalid: " + "; ".join(problems[:5]))
    return _build(raw)


def _build(raw: Mapping[str, Any]) -> RuleSet:
    probe_of = {fid: probe for probe, ids in raw.get("probes", {}).items() for fid in ids}
    rules = tuple(
        Rule(id=r["id"], when=tuple(r.get("when", ())), any=tuple(r.get("any", ())), cause=r["cause"],
             fix=tuple(r["fix"]), targets=tuple(_target(t) for t in r["targets"]),
             kind=r.get("kind", "network"), order=i)
        for i, r in enumerate(raw.get("rule", [])))
    unknowable = {k: tuple(v) for k, v in raw.get("unknowable", {}).items()}
    return RuleSet(rules, probe_of, unknowable)


def validate_rules(raw: Mapping[str, Any] | None = None) -> list[str]:
    """Every problem in the rules file (empty: valid), checked against the knowledge base.

    Catches what would otherwise fail silently at diagnosis time: a typo in a finding id (the
    rule would never fire) or a target code missing from codes.toml.
    """
    raw = _raw() if raw is None else raw
    problems: list[str] = []
    known = {fid for ids in raw.get("probes", {}).values() for fid in ids}
    seen: set[str] = set()
    for i, r in enumerate(raw.get("rule", [])):
        where = f"rule {i} ({r.get('id')})"
        if not r.get("id") or r.get("id") in seen:
            problems.append(f"{where}: missing or duplicate id")
        seen.add(r.get("id", ""))
        ids = [*r.get("when", []), *r.get("any", [])]
        if not ids:
            problems.append(f"{where}: needs 'when' or 'any'")
        problems += [f"{where}: unknown finding id {x!r} (add it under [probes])" for x in ids if x not in known]
        if not isinstance(r.get("cause"), str) or not r["cause"].strip():
            problems.append(f"{where}: 'cause' missing")
        if not r.get("fix") or not all(isinstance(s, str) and s.strip() for s in r["fix"]):
            problems.append(f"{where}: 'fix' must be a non-empty list of steps")
        if r.get("kind", "network") not in KINDS:
            problems.append(f"{where}: kind must be one of {KINDS}")
        unknown_keys = set(r) - {"id", "when", "any", "cause", "fix", "targets", "kind"}
        problems += [f"{where}: unknown key {k!r}" for k in sorted(unknown_keys)]
        if not r.get("targets"):
            problems.append(f"{where}: no targets")
        for spec in r.get("targets", []):
            try:
                t = _target(spec)
            except ValueError as exc:
                problems.append(f"{where}: {exc}")
                continue
            if t.likelihood not in LIKELIHOOD:
                problems.append(f"{where}: likelihood {t.likelihood!r} is not high|medium|low")
            if not kb.lookup(f"{t.product}:{t.group or t.code}"):
                problems.append(f"{where}: target {spec.get('code')} is not in codes.toml")
    for fid, hidden in raw.get("unknowable", {}).items():
        problems += [f"unknowable: unknown finding id {x!r}" for x in [fid, *hidden] if x not in known]
    for e in kb.entries():
        problems += [f"codes.toml {e.key}: check {c!r} is no known finding id" for c in e.checks
                     if c not in known]
    return problems
