"""A private certificate authority for the lab: stands in for an intercepting gateway, or for the
"Zoom" HTTPS servers the lab runs (trusted by pointing a probe's CA option at the CA file)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Issued:
    cert: Path
    key: Path


class LabCA:
    def __init__(self, directory: Path, name: str = "roomprobe Lab Inspection CA",
                 key_ids: bool = False) -> None:
        """``key_ids``: give the CA a Subject Key Identifier and its leaves an Authority Key
        Identifier (what strict RFC 5280 checks require; without them, as many corporate and
        TLS-inspection CAs are, Python 3.13's default context rejects the chain)."""
        self.key_ids = key_ids
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                             x509.NameAttribute(NameOID.ORGANIZATION_NAME, "roomprobe lab")])
        now = dt.datetime.now(dt.timezone.utc)
        self.name = subject
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                   .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(days=1))
                   .not_valid_after(now + dt.timedelta(days=30))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True))
        if key_ids:
            builder = (builder.add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False,
                                             key_agreement=False, key_cert_sign=True, crl_sign=True,
                                             encipher_only=False, decipher_only=False), critical=True))
        self.cert = builder.sign(self.key, hashes.SHA256())
        self.cert_path = self.dir / "ca.pem"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, stem: str, names: list[str], valid_from_days: float = -1,
              valid_to_days: float = 30) -> Issued:
        """A server certificate for DNS names and/or IP addresses, signed by this CA, valid from
        ``valid_from_days`` to ``valid_to_days`` around now (negative: in the past; an expired
        certificate is ``valid_to_days=-1``)."""
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = []
        for n in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                sans.append(x509.DNSName(n))
        now = dt.datetime.now(dt.timezone.utc)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
                .issuer_name(self.name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now + dt.timedelta(days=valid_from_days))
                .not_valid_after(now + dt.timedelta(days=valid_to_days))
                .add_extension(x509.SubjectAlternativeName(sans), critical=False))
        if self.key_ids:
            cert = cert.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        cert = cert.sign(self.key, hashes.SHA256())
        cert_path, key_path = self.dir / f"{stem}.pem", self.dir / f"{stem}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return Issued(cert_path, key_path)
