"""TLS for ``roomprobe serve``: its certificate (given, or self-signed and kept) and the context.

Why self-signed and kept: a room PC has no certificate a CA would sign for its LAN address, and
the client pins the certificate's SHA-256 fingerprint (roomprobe/peer/tls.py) rather than
trusting a CA. The fingerprint must stay the same across restarts of ``serve`` (a sweep's
inventory pins every room's agent once), so the generated certificate and its key are kept in
the user's state directory (the key 0600, written atomically) and reused; delete them to get a
new pair. ``--tls-cert``/``--tls-key`` take a certificate of the user's own instead (e.g. one
deployed to every room, so one fingerprint pins them all).
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

from roomprobe.core.errors import UsageError
from roomprobe.core.fsutil import atomic_write_bytes, read_bounded
from roomprobe.peer.tls import fingerprint

MAX_PEM = 256 * 1024
VALID_DAYS = 5 * 365


def default_paths() -> tuple[Path, Path]:
    """Where ``serve --tls`` keeps its self-signed certificate and key."""
    from platformdirs import user_state_path

    d = user_state_path("roomprobe", appauthor=False) / "serve-tls"
    return d / "cert.pem", d / "key.pem"


def generate(bind: str) -> tuple[bytes, bytes]:
    """A self-signed EC P-256 certificate for ``bind`` (PEM) and its key (PEM, unencrypted)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "roomprobe serve"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "roomprobe (self-signed)")])
    now = datetime.datetime.now(datetime.timezone.utc)
    san = [x509.IPAddress(ipaddress.ip_address(bind))]
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def ensure_self_signed(bind: str, cert: Path, key: Path) -> bool:
    """Create the pair at ``cert``/``key`` unless both exist; True when created."""
    if cert.exists() and key.exists():
        return False
    cert_pem, key_pem = generate(bind)
    try:
        key.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(key, key_pem, mode=0o600)
        atomic_write_bytes(cert, cert_pem, mode=0o644)
    except OSError as exc:
        raise UsageError(f"cannot keep serve's TLS certificate in {cert.parent}: "
                         f"{exc.strerror or exc}; give --tls-cert/--tls-key instead") from None
    return True


def server_context(cert: str | Path, key: str | Path) -> tuple[ssl.SSLContext, str]:
    """A TLS 1.2+ server context for the pair, and the certificate's SHA-256 fingerprint.
    Bad files: one line (UsageError) saying which and what to do."""
    cert_pem = read_bounded(cert, MAX_PEM, "TLS certificate")
    read_bounded(key, MAX_PEM, "TLS key")
    try:
        der = ssl.PEM_cert_to_DER_cert(cert_pem.decode("ascii", "replace"))
    except ValueError:
        raise UsageError(f"--tls-cert {cert}: not a PEM certificate (-----BEGIN CERTIFICATE-----)") from None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except ssl.SSLError as exc:
        raise UsageError(f"--tls-cert {cert} / --tls-key {key}: {exc.reason or exc} (the key must "
                         "be the certificate's, PEM, not encrypted)") from None
    except OSError as exc:
        raise UsageError(f"cannot read {cert} or {key}: {exc.strerror or exc}") from None
    return ctx, fingerprint(der)
