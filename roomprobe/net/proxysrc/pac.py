"""PAC files (from a URL or a file) and WPAD discovery, evaluated with pypac.

Fetching is always direct (a PAC file is never fetched through a proxy) and bounded in time.
WPAD guesses ``http://wpad.<domain>/wpad.dat`` for the DNS search domain and each parent; the
domain (or a full WPAD URL) is an option, so tests never touch real names, and it can be off.
"""

from __future__ import annotations

import sys
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from roomprobe.core.redact import redact_text
from roomprobe.net import tlstrust
from roomprobe.net.proxysrc import safe_url

MAX_PAC_BYTES = 1_000_000


class PacError(Exception):
    """The PAC file could not be fetched, parsed or evaluated (the ``proxy-pac-error`` finding)."""


def fetch(url: str, timeout: float) -> str:
    """The PAC script at ``url`` (http(s)://, file:// or a path), fetched directly."""
    parts = urlsplit(url)
    try:
        if parts.scheme in ("", "file"):
            path = parts.path if parts.scheme == "file" else url
            return read_pac_file(path)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                             urllib.request.HTTPSHandler(context=tlstrust.client_context()))
        with opener.open(url, timeout=timeout) as resp:
            return resp.read(MAX_PAC_BYTES).decode("utf-8", errors="replace")
    except PacError:
        raise
    except Exception as exc:
        raise PacError(f"cannot fetch PAC file {safe_url(url)}: "
                       f"{redact_text(str(getattr(exc, 'reason', None) or exc))}") from None


def read_pac_file(path: str) -> str:
    """A PAC file from disk through the bounded reader: a PAC bigger than MAX_PAC_BYTES (or
    /dev/zero) is refused, never read whole or silently cut in half mid-function."""
    from roomprobe.core.errors import UsageError
    from roomprobe.core.fsutil import read_bounded

    try:
        return read_bounded(path, MAX_PAC_BYTES, "PAC file").decode("utf-8", errors="replace")
    except UsageError as exc:
        raise PacError(str(exc)) from None


def compile_pac(js: str) -> object:
    """A pypac PACFile; a script without FindProxyForURL or with syntax errors is a PacError."""
    try:
        from pypac.parser import PACFile
    except ImportError as exc:
        raise PacError(f"PAC evaluation needs pypac ({exc})") from None
    try:
        return PACFile(js)
    except Exception as exc:
        raise PacError(f"malformed PAC file: {type(exc).__name__}: {exc}") from None


def evaluate(pac: object, url: str) -> list[str]:
    """``FindProxyForURL`` for ``url`` as a list of proxy URLs or ``DIRECT``, in order."""
    from pypac.parser import parse_pac_value

    host = urlsplit(url).hostname or ""
    try:
        value = pac.find_proxy_for_url(url, host)  # type: ignore[attr-defined]
    except Exception as exc:
        raise PacError(f"PAC evaluation failed for {host}: {type(exc).__name__}: {exc}") from None
    return [v if v == "DIRECT" else v for v in parse_pac_value(value, "socks5")]


class PacCache:
    """Fetch and compile each PAC URL once; thread-safe; remembers failures too."""

    def __init__(self, timeout: Callable[[], float]) -> None:
        self._timeout = timeout
        self._lock = threading.Lock()
        self._pacs: dict[str, object] = {}
        self.errors: dict[str, str] = {}

    def get(self, url: str) -> object:
        with self._lock:
            if url in self.errors:
                raise PacError(self.errors[url])
            if url not in self._pacs:
                try:
                    self._pacs[url] = compile_pac(fetch(url, self._timeout()))
                except PacError as exc:
                    self.errors[url] = str(exc)
                    raise
            return self._pacs[url]

    def __call__(self, pac_url: str, url: str) -> list[str]:
        pac = self.get(pac_url)
        with self._lock:  # one JS interpreter per PAC file: keep evaluation serial
            try:
                return evaluate(pac, url)
            except PacError as exc:
                self.errors.setdefault(pac_url, str(exc))
                raise


def search_domain(resolv_conf: str = "/etc/resolv.conf") -> str | None:
    """The first DNS search (or domain) entry: the domain WPAD would use.

    Windows has no resolv.conf: WPAD uses the connection-specific DNS suffix of the active
    adapter (GetAdaptersAddresses, else ``ipconfig /all``).
    """
    if sys.platform == "win32":
        from roomprobe.net.osnet import _windows

        return _windows.dns_suffix()
    try:
        text = Path(resolv_conf).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("search", "domain"):
            return parts[1].rstrip(".")
    return None


def wpad_urls(domain: str) -> list[str]:
    """``wpad.<domain>`` and each parent with at least two labels, most specific first."""
    labels = domain.strip(".").split(".")
    return [f"http://wpad.{'.'.join(labels[i:])}/wpad.dat" for i in range(len(labels) - 1)]


def discover(candidates: list[str], timeout: float) -> tuple[str | None, list[dict[str, str]]]:
    """The first WPAD URL that serves a PAC file, and what each attempt gave."""
    tried: list[dict[str, str]] = []
    for url in candidates:
        try:
            compile_pac(fetch(url, timeout))
            tried.append({"url": url, "result": "found"})
            return url, tried
        except PacError as exc:
            tried.append({"url": url, "result": str(exc)})
    return None, tried
