"""PAC files (from a URL or a file) and WPAD discovery, evaluated in a child process.

Fetching is always direct (a PAC file is never fetched through a proxy), bounded in total time
(a server sending one byte a second is cut at the deadline, not trusted) and in size
(``MAX_PAC_BYTES``: large enough for real 1-2 MB corporate PAC files, small enough to bound
memory). Evaluation runs in ``pacworker`` (a child process with hard time, memory and CPU
limits) because the JavaScript engine holds the GIL: a looping PAC file could otherwise hang the
whole CLI. ``myIpAddress()`` answers the address of the interface that routes to the target, as
browsers do, instead of what the host name resolves to.

WPAD guesses ``http://wpad.<domain>/wpad.dat`` for the DNS search domain and each parent.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from roomprobe.core.fsutil import NotRegularFile, open_regular
from roomprobe.core.redact import redact_text
from roomprobe.core.selfexec import self_argv
from roomprobe.core.threads import start_guarded
from roomprobe.net import tlstrust
from roomprobe.proxy.sources import safe_url

MAX_PAC_BYTES = 8 * 1024 * 1024
WORKER_MEMORY_BYTES = 1024 * 1024 * 1024  # address space of the child (RLIMIT_AS)
_SCHEMES = {"PROXY": "http", "HTTP": "http", "HTTPS": "https", "SOCKS": "socks5", "SOCKS5": "socks5",
            "SOCKS4": "socks4"}


class PacError(Exception):
    """The PAC file could not be fetched, parsed or evaluated (the ``proxy-pac-error`` finding)."""


def _read_bounded(read: Callable[[int], bytes], deadline: float, what: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise PacError(f"{what} did not arrive in time ({size} bytes after the deadline)")
        chunk = read(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_PAC_BYTES:
            raise PacError(f"{what} is larger than {MAX_PAC_BYTES // (1024 * 1024)} MB")
        chunks.append(chunk)


def _fetch(url: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    parts = urlsplit(url)
    if parts.scheme in ("", "file") or (len(parts.scheme) == 1 and sys.platform == "win32"):
        path = parts.path if parts.scheme == "file" else url
        try:
            with open_regular(path) as f:
                data = _read_bounded(f.read, deadline, f"the PAC file {path}")
        except NotRegularFile as exc:
            raise PacError(f"the PAC file {path} is not a regular file ({exc.kind})") from None
        except OSError as exc:
            raise PacError(f"cannot read PAC file {path}: {exc.strerror or exc}") from None
        return data.decode("utf-8", errors="replace")
    if parts.scheme not in ("http", "https"):
        raise PacError(f"unsupported PAC URL scheme {parts.scheme!r} (http, https, file or a path)")
    import urllib.request  # lazily: importing the proxy modules stays cheap

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPSHandler(context=tlstrust.client_context()))
    try:
        with opener.open(url, timeout=timeout) as resp:
            data = _read_bounded(resp.read1 if hasattr(resp, "read1") else resp.read, deadline,
                                 "the PAC file")
    except PacError:
        raise
    except Exception as exc:
        raise PacError(f"cannot fetch PAC file {safe_url(url)}: "
                       f"{redact_text(str(getattr(exc, 'reason', None) or exc))}") from None
    return data.decode("utf-8", errors="replace")


def fetch(url: str, timeout: float) -> str:
    """The PAC script at ``url`` (http(s)://, file:// or a path), fetched directly, within
    ``timeout`` seconds in total (name resolution included: it runs in a daemon thread)."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["text"] = _fetch(url, timeout)
        except PacError as exc:
            box["error"] = str(exc)
        except Exception as exc:  # never let the thread die with a traceback
            box["error"] = f"cannot fetch PAC file: {type(exc).__name__}: {exc}"
    start_guarded(work, "pac-fetch").join(timeout + 0.2)
    if "text" in box:
        return box["text"]
    raise PacError(box.get("error") or f"the PAC file did not arrive within {timeout:g} s")


def parse_entries(value: str) -> list[str]:
    """``"PROXY a:1; SOCKS b:2; DIRECT"`` -> ``["http://a:1", "socks5://b:2", "DIRECT"]``.

    Unknown entries are skipped as browsers do; nothing usable means DIRECT.
    """
    out: list[str] = []
    for element in value.split(";"):
        words = element.split()
        if len(words) == 1 and words[0].upper() == "DIRECT":
            out.append("DIRECT")
        elif len(words) == 2 and words[0].upper() in _SCHEMES:
            out.append(f"{_SCHEMES[words[0].upper()]}://{words[1]}")
    return out or ["DIRECT"]


def _udp_source(addr: str) -> str | None:
    """The local address the kernel would use toward ``addr`` (a connected UDP socket sends nothing)."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(addr).version == 6 else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((addr, 9))
            return str(s.getsockname()[0])
    except (OSError, ValueError):
        return None


def _resolve(host: str, timeout: float) -> str | None:
    box: list[str] = []

    def work() -> None:
        with contextlib.suppress(OSError, IndexError, UnicodeError):
            box.append(str(socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)[0][4][0]))
    start_guarded(work, "pac-myip").join(timeout)
    return box[0] if box else None


def my_ip_address(host: str, resolve_timeout: float = 0.5) -> str:
    """What ``myIpAddress()`` returns for a request to ``host``: the address of the interface that
    routes to it (resolved within ``resolve_timeout``); failing that, the one that routes to the
    internet (the way Chromium does it: a connected UDP socket, no packet sent); then 127.0.0.1."""
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        target: str | None = host
    except ValueError:
        target = _resolve(host, resolve_timeout) if host else None
    for addr in (target, "8.8.8.8", "2001:4860:4860::8888"):
        if addr:
            found = _udp_source(addr)
            if found and not ipaddress.ip_address(found.split("%")[0]).is_unspecified:
                return found
    return "127.0.0.1"


WORKER_FLAG = "--pac-worker"  # how a frozen binary is asked to be the PAC worker (cli.main, entry.py)


def _worker_cmd() -> list[str]:
    """The command line of the PAC worker child.

    roomprobe started again with ``--pac-worker``, which its entry point (the frozen binary's,
    and ``roomprobe.cli.main``) turns into the worker before anything else runs. core.selfexec
    starts it isolated from the working directory (``-m`` would import a ``roomprobe/`` folder
    found there).
    """
    return self_argv(WORKER_FLAG)


def run_script(script: str, urls: list[str], timeout: float) -> dict[str, list[str]]:
    """FindProxyForURL for each URL, in a child process killed after ``timeout`` seconds.

    Raises PacError for a malformed script, an exception in the script, a loop (timeout) or an
    exhausted memory limit.
    """
    uses_my_ip = "myIpAddress" in script
    jobs = []
    for url in urls:
        host = urlsplit(url).hostname or ""
        jobs.append({"url": url, "host": host,
                     "my_ip": my_ip_address(host, min(0.5, timeout / 4)) if uses_my_ip else "127.0.0.1"})
    request = json.dumps({"script": script, "jobs": jobs,
                          "limits": {"as_bytes": WORKER_MEMORY_BYTES, "cpu_s": int(timeout) + 2}})
    try:
        proc = subprocess.run(_worker_cmd(), input=request, capture_output=True, text=True,
                              timeout=max(0.2, timeout), check=False)
    except subprocess.TimeoutExpired:
        raise PacError(f"the PAC script did not finish within {timeout:g} s (it loops or is too slow); "
                       "browsers and Zoom hang or fall back on it too") from None
    except OSError as exc:
        raise PacError(f"cannot start the PAC evaluator: {exc}") from None
    try:
        reply = json.loads(proc.stdout[: 2 * 1024 * 1024])
    except ValueError:
        reason = "killed by its CPU limit" if proc.returncode and proc.returncode < 0 else (
            f"exit {proc.returncode}: {proc.stderr.strip()[-200:]}")
        raise PacError(f"the PAC evaluator failed ({reason})") from None
    if not reply.get("ok"):
        raise PacError(f"malformed or failing PAC file: {reply.get('error')}")
    return {url: parse_entries(str(value)) for url, value in reply["results"].items()}


class PacCache:
    """Fetch each PAC URL once and evaluate it per target URL, remembering failures; thread-safe.

    ``timeout()`` gives the seconds allowed for one fetch and for one evaluation (the caller's
    remaining budget). A script that failed once (loop, exception) is not run again.
    """

    def __init__(self, timeout: Callable[[], float]) -> None:
        self._timeout = timeout
        self._lock = threading.Lock()
        self._fetch_locks: dict[str, threading.Lock] = {}
        self._scripts: dict[str, str] = {}
        self._results: dict[tuple[str, str], list[str]] = {}
        self.errors: dict[str, str] = {}

    def script(self, pac_url: str) -> str:
        with self._lock:
            lock = self._fetch_locks.setdefault(pac_url, threading.Lock())
        with lock:
            if pac_url in self.errors:
                raise PacError(self.errors[pac_url])
            if pac_url not in self._scripts:
                try:
                    self._scripts[pac_url] = fetch(pac_url, self._timeout())
                except PacError as exc:
                    self.errors[pac_url] = str(exc)
                    raise
            return self._scripts[pac_url]

    def evaluate(self, pac_url: str, urls: list[str]) -> dict[str, list[str]]:
        """Entries (proxy URLs or ``DIRECT``, in order) for every URL; one child for the batch."""
        script = self.script(pac_url)
        with self._lock:
            todo = [u for u in dict.fromkeys(urls) if (pac_url, u) not in self._results]
        if todo:
            try:
                got = run_script(script, todo, self._timeout())
            except PacError as exc:
                with self._lock:
                    self.errors.setdefault(pac_url, str(exc))
                raise
            with self._lock:
                self._results.update({(pac_url, u): v for u, v in got.items()})
        with self._lock:
            if pac_url in self.errors and any((pac_url, u) not in self._results for u in urls):
                raise PacError(self.errors[pac_url])
            return {u: self._results[(pac_url, u)] for u in urls}

    def __call__(self, pac_url: str, url: str) -> list[str]:
        return self.evaluate(pac_url, [url])[url]


def search_domain(resolv_conf: str = "/etc/resolv.conf") -> str | None:
    """The first DNS search (or domain) entry: the domain WPAD would use.

    Windows has no resolv.conf: WPAD uses the connection-specific DNS suffix of the active
    adapter (GetAdaptersAddresses, else ``ipconfig /all``).
    """
    if sys.platform == "win32":
        from roomprobe.host.osnet import _windows

        return _windows.dns_suffix()
    try:
        with open(resolv_conf, encoding="utf-8", errors="replace") as f:
            text = f.read(65536)
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


def discover(candidates: list[str], timeout: float,
             cache: PacCache | None = None) -> tuple[str | None, list[dict[str, str]]]:
    """The first WPAD URL that serves a file, and what each attempt gave. The file is only
    fetched here (kept in ``cache``); whether it evaluates is the PAC evaluation's finding."""
    tried: list[dict[str, str]] = []
    deadline = time.monotonic() + timeout
    for url in candidates:
        left = deadline - time.monotonic()
        if left <= 0.05:
            tried.append({"url": url, "result": "not tried: WPAD time budget spent"})
            continue
        try:
            text = fetch(url, left)
        except PacError as exc:
            tried.append({"url": url, "result": str(exc)})
            continue
        if cache is not None:
            with cache._lock:
                cache._scripts.setdefault(url, text)
        tried.append({"url": url, "result": "found"})
        return url, tried
    return None, tried
