"""One place that builds the TLS client context, so every TLS use trusts what the app trusts.

The Zoom Rooms app verifies servers against the OS trust store (Windows certificate store,
macOS keychain). A PyInstaller build carries its own OpenSSL, which on Windows and macOS has
no default verify paths: verifying with ``ssl.create_default_context()`` there trusts nothing,
and every run would report TLS interception. So the context comes from the ``truststore``
package (OS verification on Windows and macOS, the system CA bundle on Linux), or from an
explicit CA file when the user gives one (``ca_file`` options: lab CAs, a known inspection CA).
``describe`` tells the report which store was used and how many roots it held.

Strict RFC 5280 checks (OpenSSL's ``VERIFY_X509_STRICT``, on by default in
``create_default_context`` since Python 3.13) reject chains that browsers, the OS verifiers and
the Zoom clients accept, most often a corporate or TLS-inspection CA without an Authority Key
Identifier. Judging with them would call such a room "intercepted" on one Python and not on
another, so every context here verifies without them (as the OS does), and ``judged`` runs a
handshake strict first only to *note* a chain that fails the strict rules (a note, not a verdict).

Used by: the HTTPS probe (httpsprobe), proxy TLS checks, PAC over https, bandwidth, webhook.
"""

from __future__ import annotations

import functools
import os
import ssl
import sys
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["client_context", "describe", "judged", "lax", "reason"]

T = TypeVar("T")
_STRICT = getattr(ssl, "VERIFY_X509_STRICT", 0)


def _truststore() -> Any:
    try:
        import truststore
    except ImportError:
        return None
    return truststore


def client_context(ca_file: str | None = None) -> ssl.SSLContext:
    """A verifying client context: ``ca_file`` alone when given, else the OS trust store.

    Falls back to OpenSSL's default paths only when ``truststore`` is not installed (then
    ``describe`` says so, and a frozen build's empty store is visible in the report).
    """
    if ca_file:
        return lax(ssl.create_default_context(cafile=ca_file))
    ts = _truststore()
    if ts is not None:
        return lax(ts.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    return lax(ssl.create_default_context())


def lax(ctx: ssl.SSLContext) -> ssl.SSLContext:
    """``ctx`` without the strict RFC 5280 checks: the chain is judged as browsers and the Zoom
    clients judge it (trust, dates, name), whatever Python's default for strictness is."""
    if _STRICT:
        ctx.verify_flags &= ~_STRICT
    return ctx


def reason(exc: BaseException) -> str:
    """Why a TLS verification failed, never empty (OpenSSL's message, else the error itself)."""
    for msg in (getattr(exc, "verify_message", None), getattr(exc, "strerror", None),
                getattr(exc, "reason", None)):
        if msg:
            return str(msg)
    text = str(exc).strip()
    if text.strip("()") and not text.startswith("[Errno"):
        return text
    code = getattr(exc, "verify_code", None)
    return f"{type(exc).__name__}" + (f" (OpenSSL verify error {code})" if code is not None else
                                      " (no reason given by the TLS library)")


def _openssl_judges(ctx: ssl.SSLContext) -> bool:
    """False where the OS verifier (truststore on Windows/macOS) judges, not OpenSSL's flags."""
    ts = _truststore()
    return not (ts is not None and isinstance(ctx, ts.SSLContext) and sys.platform in ("win32", "darwin"))


def judged(ctx: ssl.SSLContext, handshake: Callable[[ssl.SSLContext], T]) -> tuple[T, str | None]:
    """Run ``handshake(ctx)`` (which opens its own connection) and judge it as browsers do.

    Returns ``(result, strict_note)``. The first handshake keeps the strict RFC 5280 checks on;
    only when they reject the chain is it tried again without them: if that passes, the chain
    is accepted and ``strict_note`` says what the strict checks disliked (e.g. "Missing
    Authority Key Identifier"); if it fails, that (non-strict) error is raised, so the verdict
    never depends on strictness. One handshake in the usual case, two only after a rejection.
    """
    if not _STRICT or not _openssl_judges(ctx):
        return handshake(ctx), None
    ctx.verify_flags |= _STRICT
    try:
        return handshake(ctx), None
    except ssl.SSLCertVerificationError as exc:
        strict_reason = reason(exc)
    finally:
        lax(ctx)
    return handshake(ctx), ("the chain fails strict RFC 5280 checks (" + strict_reason + "); "
                            "browsers, the OS and Zoom's clients accept it, so it is not "
                            "counted as a failure")


@functools.lru_cache(maxsize=8)
def describe(ca_file: str | None = None) -> dict[str, Any]:
    """``{"store", "roots", "detail"}``: which trust store verifies, and how many roots it holds.

    ``store`` is ``file`` (an explicit CA file), ``os`` (truststore: Windows certificate store,
    macOS keychain, Linux system bundle) or ``openssl-default`` (truststore missing). ``roots``
    is None when the OS does not let us count cheaply.
    """
    if ca_file:
        ctx = ssl.create_default_context(cafile=ca_file)
        return {"store": "file", "roots": ctx.cert_store_stats().get("x509_ca", 0), "detail": ca_file}
    ts = _truststore()
    if ts is None:
        ctx = ssl.create_default_context()
        paths = ssl.get_default_verify_paths()
        return {"store": "openssl-default", "roots": _count_default(paths),
                "detail": f"truststore not installed; OpenSSL paths {paths.cafile or '-'} "
                          f"{paths.capath or '-'}"}
    try:
        roots, where = _count_os_roots()
    except Exception as exc:  # counting is evidence, never a reason to fail
        roots, where = None, f"roots not counted: {type(exc).__name__}"
    return {"store": "os", "roots": roots,
            "detail": f"truststore {getattr(ts, '__version__', '?')}: {where}"}


def _count_default(paths: ssl.DefaultVerifyPaths) -> int:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if paths.cafile:
        try:
            ctx.load_verify_locations(cafile=paths.cafile)
        except (OSError, ssl.SSLError):
            return 0
    n = ctx.cert_store_stats().get("x509_ca", 0)
    if paths.capath and os.path.isdir(paths.capath):
        n += sum(1 for name in os.listdir(paths.capath) if name[-2:-1] == "." and len(name) == 10)
    return n


def _count_os_roots() -> tuple[int | None, str]:
    if sys.platform == "win32":
        stores = {s: len(ssl.enum_certificates(s)) for s in ("ROOT", "CA")}  # type: ignore[attr-defined]
        return stores["ROOT"], f"Windows certificate store (ROOT {stores['ROOT']}, CA {stores['CA']})"
    if sys.platform == "darwin":
        from roomprobe.core import oscmd

        out = oscmd.run(["security", "find-certificate", "-a", "-Z",
                         "/System/Library/Keychains/SystemRootCertificates.keychain"], timeout=5.0)
        n = out.text.count("SHA-1 hash:") if out.ok else None
        return n, "macOS keychain (system roots" + ("" if out.ok else ": not counted") + ")"
    # Linux and other Unixes: truststore loads the same bundle OpenSSL (or a known path) names.
    import truststore._openssl as tso  # type: ignore[import-not-found,unused-ignore]

    paths = ssl.get_default_verify_paths()
    if paths.cafile or (paths.capath and tso._capath_contains_certs(paths.capath)):
        return _count_default(paths), f"system bundle {paths.cafile or paths.capath}"
    for cafile in tso._CA_FILE_CANDIDATES:
        if os.path.isfile(cafile):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.load_verify_locations(cafile=cafile)
            return ctx.cert_store_stats().get("x509_ca", 0), f"system bundle {cafile}"
    return 0, "no system CA bundle found"
