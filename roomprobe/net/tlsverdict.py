"""What a TLS certificate check means, told apart: one place for the SSL contexts and verdicts.

"Does not verify" has five different fixes, so it gets five verdicts:

- ``untrusted``: the chain ends at an issuer this device does not trust: a gateway intercepts TLS
  and Zoom refuses it ("Untrusted Server Certificate");
- ``inspected``: the chain verifies against this device's store but NOT against the public web
  PKI (certifi's Mozilla roots): a company CA the device trusts is inspecting Zoom's traffic,
  which Zoom advises against (some Zoom features pin certificates);
- ``expired`` / ``not-yet-valid``: usually the room PC's clock is wrong (compare local time with
  the server's ``Date`` header, kept in the evidence);
- ``name-mismatch``: the certificate is for another name (a block page, a misrouted host);
- ``handshake-failed``: no certificate to judge (TLS refused, reset, or silence after CONNECT).

``ssl_context(ca_file)`` is the single place a verifying context is made (another module may
later switch it to the OS trust store via truststore; every caller goes through here).
"""

from __future__ import annotations

import ssl

# OpenSSL X509_V_ERR_* codes (ssl.SSLCertVerificationError.verify_code)
_EXPIRED, _NOT_YET_VALID, _HOSTNAME = 10, 9, 62
_UNTRUSTED = {2, 18, 19, 20, 21, 24, 27, 28, 30, 31, 32}

VERDICTS = ("ok", "untrusted", "inspected", "expired", "not-yet-valid", "name-mismatch",
            "handshake-failed", "no-answer", "not-checked")


def ssl_context(ca_file: str | None = None) -> ssl.SSLContext:
    """A verifying client context: ``ca_file`` when given, else this device's OS trust store
    (roomprobe.net.tlstrust: the store the Zoom Rooms app trusts, also inside frozen builds)."""
    from roomprobe.net import tlstrust

    return tlstrust.client_context(ca_file or None)


def public_context(public_ca_file: str | None = None) -> ssl.SSLContext | None:
    """A context trusting only the public web PKI (certifi's Mozilla roots, or ``public_ca_file``);
    None when neither is available (the inspected/public comparison is then not made)."""
    if not public_ca_file:
        try:
            import certifi
        except ImportError:
            return None
        public_ca_file = certifi.where()
    from roomprobe.net import tlstrust

    try:  # judged as browsers judge the public PKI: without the strict RFC 5280 checks
        return tlstrust.lax(ssl.create_default_context(cafile=public_ca_file))
    except (OSError, ssl.SSLError):
        return None


def verdict_of(exc: ssl.SSLCertVerificationError) -> str:
    """The verdict for a certificate verification error."""
    code = getattr(exc, "verify_code", None)
    if code == _EXPIRED:
        return "expired"
    if code == _NOT_YET_VALID:
        return "not-yet-valid"
    if code == _HOSTNAME:
        return "name-mismatch"
    return "untrusted"
