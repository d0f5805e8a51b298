"""Zoom's published IP ranges: load, cache with their date, and ask "is this address Zoom's?".

Zoom publishes its address ranges as plain text, one CIDR per line (assets.zoom.us/docs/ipranges/:
Zoom.txt for everything, ZoomMeetings.txt for meetings, ZoomCRC.txt, ZoomPhone.txt, and IPv6
twins such as Zoomv6.txt). An address that a Zoom name resolves to, or that the Zoom Rooms app is
talking to, either lies inside them or it does not; that is a sharper test for a DNS sinkhole or
hijack than "not a private address".

The ranges change, so roomprobe ships no copy of its own: a stale list presented as truth would
turn Zoom's new servers into false alarms. A source is a file path or an https:// URL (config);
a URL is fetched at most once per ``max_age_s`` and cached atomically under the user cache dir
with the time it was fetched, so the report can say how old the list is. Every read is bounded
(``MAX_BYTES``, ``MAX_LINES``). Nothing here raises for bad input: ``load`` returns what it got
and says why for the rest.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from roomprobe.core.fsutil import atomic_write_text
from roomprobe.core.redact import redact_text

MAX_BYTES = 1 << 20  # Zoom.txt is a few kB; a megabyte is far beyond any real list
MAX_LINES = 50_000
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class Ranges:
    """The networks loaded, where from, and how old the newest source is."""

    networks: list[Network] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)  # {source, ok, count, age_s, why}

    @property
    def loaded(self) -> bool:
        return bool(self.networks)

    def contains(self, address: str) -> bool | None:
        """True/False for an address; None when it is not an address or no range of its family
        (IPv4/IPv6) is loaded: an IPv6 answer is never "outside" a list that has only IPv4."""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return None
        same = [n for n in self.networks if n.version == ip.version]
        if not same:
            return None
        return any(ip in n for n in same)

    def age_s(self) -> float | None:
        """Age of the oldest source that loaded (what the report calls the list's age)."""
        ages = [s["age_s"] for s in self.sources if s.get("ok") and s.get("age_s") is not None]
        return max(ages) if ages else None


def parse(text: str) -> tuple[list[Network], list[str]]:
    """One CIDR per line; blank lines and ``#`` comments skipped. Returns (networks, bad lines)."""
    nets: list[Network] = []
    bad: list[str] = []
    for i, line in enumerate(text.splitlines()):
        if i >= MAX_LINES:
            bad.append(f"more than {MAX_LINES} lines: the rest ignored")
            break
        item = line.split("#", 1)[0].strip()
        if not item:
            continue
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            bad.append(item[:60])
    return nets, bad


def _read_bounded(path: Path) -> str:
    from roomprobe.core.fsutil import open_regular  # a FIFO planted in the cache: no hang

    with open_regular(path) as f:
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ValueError(f"larger than {MAX_BYTES} bytes: not a range list")
    return data.decode("utf-8", "replace")


def default_cache_dir() -> Path:
    from platformdirs import user_cache_path

    return user_cache_path("roomprobe") / "zoomranges"


def _cache_paths(cache_dir: Path, url: str) -> tuple[Path, Path]:
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    return cache_dir / f"{key}.txt", cache_dir / f"{key}.json"


def _fetch_url(url: str, timeout: float) -> str:
    """GET through the system proxy (urllib reads the environment), bounded in size and time."""
    req = urllib.request.Request(url, headers={"User-Agent": "roomprobe"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (https only, checked)
        data = resp.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ValueError(f"larger than {MAX_BYTES} bytes: not a range list")
    return data.decode("utf-8", "replace")


def load_source(source: str, *, cache_dir: Path | None = None, max_age_s: float = 7 * 86400,
                timeout: float = 3.0, now: float | None = None) -> tuple[list[Network], dict[str, Any]]:
    """One source (file path or https URL) -> (networks, a status dict for the report)."""
    now = time.time() if now is None else now
    shown = redact_text(source.split("?", 1)[0])
    info: dict[str, Any] = {"source": shown, "ok": False, "count": 0, "age_s": None,
                            "cached": False, "why": None}
    try:
        if urlsplit(source).scheme in ("http", "https"):
            if urlsplit(source).scheme != "https":
                raise ValueError("only https:// URLs are fetched (the list decides what is Zoom's)")
            text, age = _from_url(source, cache_dir or default_cache_dir(), max_age_s, timeout, now,
                                  info)
        else:
            path = Path(source).expanduser()
            text = _read_bounded(path)
            age = max(0.0, now - path.stat().st_mtime)
    except (OSError, ValueError, UnicodeError) as exc:
        info["why"] = f"{type(exc).__name__}: {redact_text(str(exc))}"[:200]
        return [], info
    nets, bad = parse(text)
    info.update(count=len(nets), age_s=round(age, 1), bad_lines=bad[:5])
    if not nets:
        info["why"] = "no CIDR in it"
        return [], info
    info["ok"] = True
    return nets, info


def _from_url(url: str, cache_dir: Path, max_age_s: float, timeout: float, now: float,
              info: dict[str, Any]) -> tuple[str, float]:
    """The cached copy if fresh, else a fresh fetch (cached atomically); a stale cache when the
    fetch fails, flagged as such, so the age in the report stays true."""
    txt, meta = _cache_paths(cache_dir, url)
    cached_text, fetched_at = None, None
    try:
        fetched_at = float(json.loads(_read_bounded(meta))["fetched_at"])
        cached_text = _read_bounded(txt)
    except (OSError, ValueError, KeyError, TypeError):
        cached_text = None
    if cached_text is not None and fetched_at is not None and now - fetched_at < max_age_s:
        info["cached"] = True
        return cached_text, now - fetched_at
    try:
        text = _fetch_url(url, timeout)
    except (OSError, ValueError) as exc:
        if cached_text is not None and fetched_at is not None:
            info.update(cached=True, refresh_failed=f"{type(exc).__name__}: {exc}"[:200])
            return cached_text, now - fetched_at
        raise
    if parse(text)[0]:  # never cache an error page
        cache_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(txt, text)
        atomic_write_text(meta, json.dumps({"url": url.split("?", 1)[0], "fetched_at": now}))
    return text, 0.0


def load(sources: list[str] | tuple[str, ...], **kw: Any) -> Ranges:
    """Every source merged; the per-source status says which loaded and why the others did not."""
    out = Ranges()
    for source in sources:
        nets, info = load_source(str(source), **kw)
        out.networks.extend(nets)
        out.sources.append(info)
    return out
