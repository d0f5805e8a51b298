"""TLS to a ``roomprobe serve`` peer, pinned by the SHA-256 fingerprint of its certificate.

Why pinning and not the trust store: ``serve`` runs on a room PC with a self-signed certificate
(no CA will sign a certificate for 10.0.5.20), and what must never happen is the session token
crossing the network to anyone but that peer. The fingerprint ``serve`` prints is the one fact
the user carries from the peer to the client, like an SSH host key. The client checks it after
the handshake and BEFORE the first byte of a request (which carries the token): a wrong
certificate means nothing is sent.

Without a pin the client does not speak TLS unless told to (``--peer-tls-unpinned``): TLS
without a checked certificate hides the token from someone who only listens, but hands it to
whoever sits in the middle; that choice is the user's, by name, never a silent default.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import re
import socket
import ssl

_HEX = re.compile(r"^[0-9a-f]{64}$")


class PinMismatch(ssl.SSLError):
    """The peer's certificate is not the pinned one: nothing was sent to it."""

    def __str__(self) -> str:  # ssl.SSLError would show the args tuple
        return str(self.args[0]) if self.args else "the peer's certificate is not the pinned one"


def parse_fingerprint(text: str) -> str:
    """A SHA-256 fingerprint as 64 hex digits (colons, spaces and a ``sha256:`` prefix allowed);
    lower-case, separators removed. ValueError with what to give instead."""
    value = text.strip().lower()
    value = value.removeprefix("sha256:").removeprefix("sha256=")
    value = value.replace(":", "").replace(" ", "").replace("-", "")
    if not _HEX.match(value):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise ValueError(f"{shown!r} is not a SHA-256 fingerprint (64 hex digits, as 'roomprobe "
                         "serve --tls' prints it)")
    return value


def fingerprint_option(value: str | None) -> str | None:
    """``--peer-fingerprint`` as check and sweep take it: None, or the parsed value; a bad one is
    a UsageError (one line, exit 3)."""
    if value is None:
        return None
    from roomprobe.core.errors import UsageError

    try:
        return parse_fingerprint(value)
    except ValueError as exc:
        raise UsageError(f"--peer-fingerprint {exc}") from None


def fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate, 64 lower-case hex digits."""
    return hashlib.sha256(der).hexdigest()


def shown(fp: str) -> str:
    """``AB:CD:...`` as browsers and openssl show fingerprints."""
    return ":".join(fp[i:i + 2] for i in range(0, len(fp), 2)).upper()


def client_context() -> ssl.SSLContext:
    """TLS 1.2+, no CA check (the pin is the check; see the module docstring)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def check_pin(sock: ssl.SSLSocket, pin: str | None) -> str:
    """The peer certificate's fingerprint; PinMismatch (socket closed) unless it is ``pin``.
    ``pin`` None: unpinned (the caller asked for it by name)."""
    der = sock.getpeercert(binary_form=True) or b""
    got = fingerprint(der)
    if pin is not None and not hmac.compare_digest(got, pin):
        sock.close()
        raise PinMismatch(f"the peer's TLS certificate is {shown(got)}, not the pinned "
                          f"{shown(pin)}: nothing was sent (another device, or serve made a new "
                          "certificate; check the fingerprint 'roomprobe serve' printed)")
    return got


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS whose certificate is checked against ``pin`` right after the handshake, before any
    request is written (http.client sends the request only after ``connect`` returns)."""

    def __init__(self, host: str, port: int, *, timeout: float, pin: str | None) -> None:
        super().__init__(host, port, timeout=timeout, context=client_context())
        self.pin = pin
        self.peer_fingerprint: str | None = None

    def connect(self) -> None:
        super().connect()
        assert isinstance(self.sock, ssl.SSLSocket)
        self.peer_fingerprint = check_pin(self.sock, self.pin)


def verify_peer(host: str, port: int, timeout: float, pin: str) -> str | None:
    """Handshake with the peer and check its certificate, sending nothing else: its fingerprint,
    None when it could not be reached or spoke no TLS (the callers' own connects say why);
    PinMismatch when the certificate is another one."""
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except OSError:
        return None
    try:
        with client_context().wrap_socket(raw) as tls:
            return check_pin(tls, pin)
    except PinMismatch:
        raise
    except (OSError, ValueError):
        return None
    finally:
        raw.close()
