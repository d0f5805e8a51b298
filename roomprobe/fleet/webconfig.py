"""The listener's security, read from a web config file in the Prometheus exporter-toolkit format.

Why that format: every exporter a monitoring team runs (node_exporter, blackbox_exporter, ...)
reads the same YAML file with ``--web.config.file``; they already have one, with their
certificate, their client CA and their bcrypt hashes, and their Prometheus scrape configs
already speak it. Supported keys::

    tls_server_config:
      cert_file: /etc/roomprobe/exporter.crt
      key_file: /etc/roomprobe/exporter.key
      client_ca_file: /etc/roomprobe/clients-ca.crt      # optional
      client_auth_type: RequireAndVerifyClientCert        # or VerifyClientCertIfGiven, NoClientCert
      min_version: TLS12                                  # or TLS13
    basic_auth_users:
      prometheus: $2y$10$...                              # bcrypt (htpasswd -nBC 10 "" | tr -d ':')

Anything else is refused with the list of known keys (a misspelt ``tls_server_config`` must not
silently serve plain HTTP). ``RequestClientCert`` and ``RequireAnyClientCert`` (a client
certificate without verifying it) have no equivalent in Python's ssl module and are refused
with what to use instead.

Passwords: a bcrypt check costs tens of milliseconds on purpose; like the exporter-toolkit, a
successful (user, password) pair is remembered (as a salted SHA-256 in memory) so that a
Prometheus scraping every few seconds does not pay it on every scrape. A failure is never
remembered, and the comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any

from roomprobe.core.errors import UsageError

MAX_WEB_CONFIG_BYTES = 256 * 1024
MAX_USERS = 1000
TLS_KEYS = ("cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version")
TOP_KEYS = ("tls_server_config", "basic_auth_users")
CLIENT_AUTH = {"NoClientCert": ssl.CERT_NONE, "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
               "RequireAndVerifyClientCert": ssl.CERT_REQUIRED}
MIN_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
CACHE_LIMIT = 64


@dataclass(frozen=True)
class TLSConfig:
    cert_file: str
    key_file: str
    client_ca_file: str | None = None
    client_auth_type: str = "NoClientCert"
    min_version: str = "TLS12"


@dataclass
class WebConfig:
    """What the listener enforces: TLS (or None: plain HTTP) and the basic-auth users."""

    tls: TLSConfig | None = None
    users: dict[str, bytes] = field(default_factory=dict)  # user -> bcrypt hash
    _ok: dict[str, bytes] = field(default_factory=dict, repr=False)
    _salt: bytes = field(default_factory=lambda: secrets.token_bytes(16), repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def auth_required(self) -> bool:
        return bool(self.users)

    def check_password(self, user: str, password: str) -> bool:
        """True if ``user`` is configured and ``password`` matches its bcrypt hash."""
        import bcrypt

        hashed = self.users.get(user)
        if hashed is None:
            # Spend about as long as a real check, so timing does not tell which users exist.
            bcrypt.checkpw(b"x", _DUMMY_HASH)
            return False
        pw = password.encode("utf-8", "surrogateescape")
        key = hashlib.sha256(self._salt + user.encode("utf-8", "surrogateescape") + b"\0" + pw).digest()
        with self._lock:
            cached = self._ok.get(user)
        if cached is not None and hmac.compare_digest(cached, key):
            return True
        try:
            good = bcrypt.checkpw(pw, hashed)
        except ValueError:  # a malformed hash slipped past loading: never a match
            return False
        if good:
            with self._lock:
                if len(self._ok) >= CACHE_LIMIT:
                    self._ok.clear()
                self._ok[user] = key
        return good

    def ssl_context(self) -> ssl.SSLContext | None:
        """The server's TLS context (None without ``tls_server_config``); errors are one line."""
        if self.tls is None:
            return None
        t = self.tls
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = MIN_VERSIONS[t.min_version]
        try:
            ctx.load_cert_chain(t.cert_file, t.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"web config: cannot load cert_file {t.cert_file} / key_file "
                             f"{t.key_file}: {getattr(exc, 'strerror', None) or exc}; check both "
                             "paths and that the key matches the certificate") from None
        ctx.verify_mode = CLIENT_AUTH[t.client_auth_type]
        if t.client_ca_file:
            try:
                ctx.load_verify_locations(cafile=t.client_ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise UsageError(f"web config: cannot load client_ca_file {t.client_ca_file}: "
                                 f"{getattr(exc, 'strerror', None) or exc}") from None
        return ctx


# A valid bcrypt hash of nothing anyone types: the cost of checking an unknown user.
_DUMMY_HASH = b"$2b$10$7za2c8GV4rHtcrXGTbyIiu2tUqAI1L/iADBoaAQZyA3KQa1jC6/Pm"


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"web config: {where} must be a non-empty string")
    return value.strip()


def _path(value: Any, where: str, base: str) -> str:
    p = _text(value, where)
    return p if os.path.isabs(p) else os.path.join(base, p)


def _mapping(value: Any, not_a_mapping: str, section: str, known: tuple[str, ...], lead: str) -> None:
    """One UsageError line unless ``value`` is a mapping of ``known`` keys only."""
    if not isinstance(value, dict):
        raise UsageError(f"web config: {not_a_mapping}")
    unknown = sorted(str(k) for k in value if k not in known)
    if unknown:
        raise UsageError(f"web config: unknown {section}key(s) {', '.join(unknown[:5])}; {lead} "
                         f"{', '.join(known)}")


def parse(raw: Any, base_dir: str = ".") -> WebConfig:
    """A WebConfig from the file's parsed YAML; every mistake is one UsageError line."""
    if raw is None:
        return WebConfig()
    _mapping(raw, "the file must be a YAML mapping with tls_server_config and/or basic_auth_users",
             "", TOP_KEYS, "roomprobe reads")
    tls = None
    t = raw.get("tls_server_config")
    if t is not None:
        _mapping(t, "tls_server_config must be a mapping with cert_file and key_file",
                 "tls_server_config ", TLS_KEYS, "known:")
        if "cert_file" not in t or "key_file" not in t:
            raise UsageError("web config: tls_server_config needs both cert_file and key_file")
        auth = str(t.get("client_auth_type") or "NoClientCert")
        if auth in ("RequestClientCert", "RequireAnyClientCert"):
            raise UsageError(f"web config: client_auth_type {auth} (a certificate without "
                             "verifying it) is not supported; use VerifyClientCertIfGiven or "
                             "RequireAndVerifyClientCert with client_ca_file")
        if auth not in CLIENT_AUTH:
            raise UsageError(f"web config: client_auth_type {auth!r} is not one of "
                             f"{', '.join(CLIENT_AUTH)}")
        ca = t.get("client_ca_file")
        if auth != "NoClientCert" and not ca:
            raise UsageError(f"web config: client_auth_type {auth} needs client_ca_file (the CA "
                             "that signed the clients' certificates)")
        minv = str(t.get("min_version") or "TLS12")
        if minv not in MIN_VERSIONS:
            raise UsageError(f"web config: min_version {minv!r} is not one of "
                             f"{', '.join(MIN_VERSIONS)}")
        tls = TLSConfig(_path(t["cert_file"], "cert_file", base_dir),
                        _path(t["key_file"], "key_file", base_dir),
                        _path(ca, "client_ca_file", base_dir) if ca else None, auth, minv)
    users: dict[str, bytes] = {}
    u = raw.get("basic_auth_users")
    if u is not None:
        if not isinstance(u, dict):
            raise UsageError("web config: basic_auth_users must map user names to bcrypt hashes")
        if len(u) > MAX_USERS:
            raise UsageError(f"web config: more than {MAX_USERS} basic_auth_users")
        for name, hashed in u.items():
            user = _text(name, "a basic_auth_users name")
            if ":" in user:
                raise UsageError(f"web config: user name {user!r} cannot contain ':'")
            h = _text(hashed, f"the hash of user {user}")
            if not h.startswith(("$2a$", "$2b$", "$2y$")) or len(h) != 60:
                raise UsageError(f"web config: the password of user {user} is not a bcrypt hash "
                                 "(make one with: htpasswd -nBC 10 \"\" | tr -d ':\\n')")
            users[user] = h.encode("ascii", "replace")
    return WebConfig(tls, users)


def load(path: str) -> WebConfig:
    """Read and check ``--web.config.file``; the TLS files are loaded here too, so a wrong path
    stops the exporter at start (exit 3), not at the first scrape."""
    from roomprobe.core.fsutil import read_text_bounded

    text = read_text_bounded(path, MAX_WEB_CONFIG_BYTES, "web config file")
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - a dependency; a broken install says so
        raise UsageError("--web.config.file needs PyYAML (pip install pyyaml)") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"web config {path} is not valid YAML ({first[:120]})") from None
    except RecursionError:
        raise UsageError(f"web config {path} is nested too deeply") from None
    cfg = parse(raw, os.path.dirname(os.path.abspath(path)))
    cfg.ssl_context()  # fail now, with the path, not on the first connection
    return cfg
