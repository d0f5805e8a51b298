"""The Zoom error-code knowledge base (``roomprobe/diagnose/data/codes.toml``).

The catalog is data, not code, so support staff can correct a meaning or add a code without
touching Python (see docs/diagnosis.md). It is parsed on first use only: ``roomprobe --help`` and
``roomprobe check`` without diagnosis never pay for it.

A code is always ``(product, number)``: the same number means different things in different
Zoom products (client 5003 is "cannot connect", Video SDK 5003 is "session reconnecting"), so
``lookup("5003")`` returns every product's entry and callers must show the product.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

__all__ = ["PRODUCTS", "Entry", "entries", "lookup", "search", "ticket_evidence", "validate",
           "unknown_code_message", "split_code"]

PRODUCTS: tuple[str, ...] = ("zoom-rooms", "zoom-client", "video-sdk")
# Short spellings people type; the canonical product id is always what we print.
_ALIASES = {"rooms": "zoom-rooms", "zr": "zoom-rooms", "room": "zoom-rooms", "client": "zoom-client",
            "sdk": "video-sdk", "videosdk": "video-sdk"}
_REQUIRED: dict[str, type] = {"product": str, "code": int, "title": str, "meaning": str,
                              "causes": list, "fix": list, "checks": list, "sources": list}
_OPTIONAL: dict[str, type] = {"name": str, "category": str, "where": list, "details": list,
                              "group": str, "non_network": list, "readings": list, "notes": list}
_NAME_RE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")
_ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


@dataclass(frozen=True)
class Entry:
    """One (product, code) of the catalog. ``fix`` is ordered: the order a technician tries it."""

    product: str
    code: int
    title: str
    meaning: str
    causes: tuple[str, ...]
    fix: tuple[str, ...]
    checks: tuple[str, ...]
    sources: tuple[str, ...]
    name: str | None = None
    category: str | None = None
    where: tuple[str, ...] = ()
    details: tuple[str, ...] = ()
    group: str | None = None
    non_network: tuple[str, ...] = ()
    readings: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def key(self) -> str:
        """``product:code``, the unambiguous spelling accepted everywhere."""
        return f"{self.product}:{self.code}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; empty optional fields are left out so output stays short."""
        out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}
        return {k: v for k, v in out.items() if v not in (None, [], ())}


@lru_cache(maxsize=1)
def _raw() -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10
        import tomli as tomllib
    from importlib.resources import files

    return tomllib.loads(files("roomprobe.diagnose").joinpath("data/codes.toml").read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def entries() -> tuple[Entry, ...]:
    """Every entry, in file order. Raises ValueError if the data file is broken."""
    raw = _raw()
    problems = validate(raw)
    if problems:
        raise ValueError("roomprobe/diagnose/data/codes.toml is invalid: " + "; ".join(problems[:5]))
    return tuple(_entry(t) for t in raw["code"])


def _entry(t: Mapping[str, Any]) -> Entry:
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in t.items()}
    return Entry(**fields)


def ticket_evidence() -> list[str]:
    """What to collect for a support ticket (the ``[ticket]`` table)."""
    return list(_raw().get("ticket", {}).get("evidence", []))


def validate(raw: Mapping[str, Any] | None = None) -> list[str]:
    """Return every problem in the catalog (empty list: valid).

    Used by the tests and at load time, so a bad edit fails loudly instead of printing
    half an entry to a technician.
    """
    raw = _raw() if raw is None else raw
    problems: list[str] = []
    seen: set[tuple[str, int]] = set()
    names: set[tuple[str, str]] = set()
    tables = raw.get("code")
    if not isinstance(tables, list) or not tables:
        return ["no [[code]] tables"]
    for i, t in enumerate(tables):
        where = f"entry {i} ({t.get('product')}:{t.get('code')})"
        for key, typ in _REQUIRED.items():
            if not isinstance(t.get(key), typ) or isinstance(t.get(key), bool):
                problems.append(f"{where}: '{key}' missing or not {typ.__name__}")
        for key, value in t.items():
            known = _REQUIRED.get(key) or _OPTIONAL.get(key)
            if known is None:
                problems.append(f"{where}: unknown key '{key}'")
            elif isinstance(value, list) and any(not isinstance(x, str) or not x.strip() for x in value):
                problems.append(f"{where}: '{key}' must hold non-empty strings")
            elif isinstance(value, str) and not value.strip():
                problems.append(f"{where}: '{key}' is empty")
        for key in ("causes", "fix", "sources"):
            if isinstance(t.get(key), list) and not t[key]:
                problems.append(f"{where}: '{key}' is empty")
        if t.get("product") not in PRODUCTS:
            problems.append(f"{where}: unknown product {t.get('product')!r}")
        pc = (t.get("product"), t.get("code"))
        if pc in seen:
            problems.append(f"{where}: duplicate (product, code)")
        seen.add(pc)  # type: ignore[arg-type]
        if t.get("product") == "video-sdk" and "name" not in t:
            problems.append(f"{where}: Video SDK entries need their symbolic 'name'")
        if "name" in t:
            if not _NAME_RE.match(str(t["name"])):
                problems.append(f"{where}: name {t['name']!r} is not UPPER_SNAKE_CASE")
            if (t.get("product"), t["name"]) in names:
                problems.append(f"{where}: duplicate name {t['name']}")
            names.add((t.get("product"), t["name"]))
        problems += [f"{where}: check {c!r} is not a kebab-case finding id"
                     for c in t.get("checks", []) if not _ID_RE.match(str(c))]
    return problems


def split_code(text: str) -> tuple[str | None, str]:
    """``"zoom-rooms:2002"`` -> ``("zoom-rooms", "2002")``; ``"2002"`` -> ``(None, "2002")``.

    An unknown product prefix is kept as given so the caller can report it.
    """
    text = text.strip()
    product, sep, rest = text.partition(":")
    if not sep:
        return None, text
    product = product.strip().lower()
    return _ALIASES.get(product, product), rest.strip()


def lookup(text: str) -> list[Entry]:
    """Entries for what a user typed: ``2002``, ``zoom-rooms:2002``, ``VIDEO_CAMERA_TAKEN``, ``6103``.

    A bare number returns the entry of every product that uses it (ambiguous on purpose: the
    caller shows them all). A group such as ``104101-104118`` returns its members. Unknown -> [].
    """
    product, rest = split_code(text)
    if product is not None and product not in PRODUCTS:
        return []
    pool = [e for e in entries() if product is None or e.product == product]
    if _is_number(rest):
        return [e for e in pool if e.code == int(rest)]
    if rest.isdigit() or len(rest) > 200:  # '²', '٣', a 5000-digit number: no such code
        return []
    symbol = re.sub(r"[\s-]+", "_", rest).upper()
    found = [e for e in pool if e.name == symbol]
    return found or [e for e in pool if e.group == rest]


def _is_number(text: str) -> bool:
    """ASCII digits of a sane length: ``str.isdigit`` is also true for '²' and '٣', which
    ``int()`` rejects (or reads as another number), and a 5000-digit string makes int() raise."""
    return text.isascii() and text.isdigit() and len(text) <= 12


def search(words: str | Iterable[str], product: str | None = None) -> list[Entry]:
    """Entries whose text holds every word (case-insensitive), optionally in one product.

    For browsing (``roomprobe codes --search camera``) when the user has a symptom, not a code.
    """
    terms = (words.split() if isinstance(words, str) else [w for ws in words for w in ws.split()])
    terms = [t.lower() for t in terms]
    if product is not None:
        product = _ALIASES.get(product.lower(), product.lower())
    found = []
    for e in entries():
        if product is not None and e.product != product:
            continue
        hay = " ".join([str(e.code), e.name or "", e.title, e.meaning, e.category or "", e.group or "",
                        *e.causes, *e.fix, *e.where, *e.details, *e.readings, *e.notes]).lower()
        if all(t in hay for t in terms):
            found.append(e)
    return found


def unknown_code_message(text: str) -> str:
    """The one line a user sees for a code we do not know, with what to do next."""
    product, rest = split_code(text)
    text = text if len(text) <= 60 else text[:57] + "..."  # one readable line, whatever was typed
    if product is not None and product not in PRODUCTS:
        product = product if len(product) <= 40 else product[:37] + "..."
        return (f"unknown product {product!r} in {text!r}; use one of {', '.join(PRODUCTS)} "
                f"(e.g. zoom-rooms:2002)")
    hint = rest if rest and not _is_number(rest) and rest.isprintable() and len(rest) < 40 else "WORDS"
    return (f"unknown error code {text!r}; run 'roomprobe codes --search {hint}' to find it, or "
            f"'roomprobe codes' to list them all")
