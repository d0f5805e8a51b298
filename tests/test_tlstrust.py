"""TLS trust: every TLS use verifies against the OS store (truststore), as the Zoom Rooms app does.

Simulates a frozen build: OpenSSL's default verify paths are empty (SSL_CERT_FILE/SSL_CERT_DIR
point nowhere), while the "OS store" holds the lab CA (truststore's system-bundle lookup on
Linux is pointed at the lab CA file). A legitimate lab chain must then verify through the HTTPS
probe and the proxy TLS check, while a plain ``ssl.create_default_context()`` (the old code)
rejects it: that is the "every run reports interception" bug. A chain from another CA (an
intercepting gateway) must still be rejected. Traffic: loopback only.
"""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytest.importorskip("truststore")
pytest.importorskip("cryptography")

import truststore._openssl as tso  # noqa: E402
from labca import LabCA  # noqa: E402

from roomprobe.net import httpsprobe, tlstrust  # noqa: E402
from roomprobe.proxy.resolver import route_for  # noqa: E402


def fetch(url: str, **kw):
    """GET through the route the system's resolver names, as the cloud probe does."""
    return httpsprobe.fetch(url, route_of=route_for, **kw)
from roomprobe.proxy.sources.checks import tls_check  # noqa: E402


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _serve(cert: Path, key: Path) -> tuple[ThreadingHTTPServer, int]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, srv.server_address[1]


@pytest.fixture
def frozen_like(tmp_path, monkeypatch):
    """Empty OpenSSL default store; the OS store (truststore) holds only the lab CA."""
    ca = LabCA(tmp_path / "ca", name="roomprobe Lab Public Root")
    issued = ca.issue("server", ["127.0.0.1"])
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "nonexistent.pem"))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "nonexistent.d"))
    monkeypatch.setattr(tso, "_CA_FILE_CANDIDATES", [str(ca.cert_path)])
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "*")
    tlstrust.describe.cache_clear()
    srv, port = _serve(issued.cert, issued.key)
    yield ca, port, tmp_path
    srv.shutdown()
    srv.server_close()
    tlstrust.describe.cache_clear()


def test_default_openssl_store_is_empty_here(frozen_like):
    """The control: the old code path (create_default_context) would call this intercepted."""
    _, port, _ = frozen_like
    assert ssl.get_default_verify_paths().cafile is None
    ctx = ssl.create_default_context()
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            pytest.raises(ssl.SSLCertVerificationError):
        ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def test_https_probe_trusts_the_os_store(frozen_like):
    _, port, _ = frozen_like
    out = fetch(f"https://127.0.0.1:{port}/", timeout=5)
    assert out["ok"] is True and out["phase"] is None and out["status"] == 204
    assert out["trust"]["store"] == "os" and out["trust"]["roots"] == 1
    assert "Authority Key Identifier" in out["tls"]["note"]  # OpenSSL judges on Linux: noted too


def test_proxy_tls_check_trusts_the_os_store(frozen_like):
    _, port, _ = frozen_like
    res = tls_check("127.0.0.1", port, timeout=5)
    assert res["verified"] is True and res["trust"]["store"] == "os"


def test_other_ca_is_still_untrusted(frozen_like):
    """An intercepting CA not in the OS store must fail verification (no blanket trust)."""
    _, _, tmp = frozen_like
    mitm = LabCA(tmp / "mitm", name="Inspection CA")
    issued = mitm.issue("server", ["127.0.0.1"])
    srv, port = _serve(issued.cert, issued.key)
    try:
        out = fetch(f"https://127.0.0.1:{port}/", timeout=5)
        assert out["ok"] is False and (out["phase"], out["state"]) == ("tls", "untrusted")
        res = tls_check("127.0.0.1", port, timeout=5)
        assert res["verified"] is False and "Inspection CA" in res.get("issuer", "")
    finally:
        srv.shutdown()
        srv.server_close()


def test_explicit_ca_file_still_wins(frozen_like):
    ca, port, tmp = frozen_like
    out = fetch(f"https://127.0.0.1:{port}/", timeout=5, ca_file=str(ca.cert_path))
    assert out["ok"] is True and out["trust"] == {"store": "file", "roots": 1, "detail": str(ca.cert_path)}
    other = LabCA(tmp / "other", name="Unrelated CA")
    out = fetch(f"https://127.0.0.1:{port}/", timeout=5, ca_file=str(other.cert_path))
    assert (out["phase"], out["state"]) == ("tls", "untrusted")  # ca_file alone, not OS + file


def test_describe_without_truststore_says_so(monkeypatch, frozen_like):
    monkeypatch.setattr(tlstrust, "_truststore", lambda: None)
    tlstrust.describe.cache_clear()
    d = tlstrust.describe()
    assert d["store"] == "openssl-default" and d["roots"] == 0 and "truststore not installed" in d["detail"]


# Strict RFC 5280 checks (VERIFY_X509_STRICT, on by default in Python 3.13's default contexts)
# reject a CA without key identifiers, as many corporate and TLS-inspection CAs are. Browsers,
# the OS verifiers and Zoom's clients accept them: the verdict must not depend on the Python, and
# the strict failure is a note. The strict check runs first on every Python, so these tests
# fail on the old code whatever Python runs them.

def test_chain_without_key_ids_is_accepted_with_a_strict_note(frozen_like):
    ca, port, _ = frozen_like  # the lab CA has no Subject/Authority Key Identifier
    out = fetch(f"https://127.0.0.1:{port}/", timeout=5, ca_file=str(ca.cert_path))
    assert out["ok"] is True and out["phase"] is None, out
    assert "Authority Key Identifier" in out["tls"]["note"] and "not counted" in out["tls"]["note"]
    res = tls_check("127.0.0.1", port, timeout=5, ca_file=str(ca.cert_path))
    assert res["verified"] is True and "Authority Key Identifier" in res["strict_note"]


def test_chain_with_key_ids_has_no_strict_note(frozen_like):
    _, _, tmp = frozen_like
    good = LabCA(tmp / "rfc", name="RFC 5280 clean CA", key_ids=True)
    issued = good.issue("server", ["127.0.0.1"])
    srv, port = _serve(issued.cert, issued.key)
    try:
        out = fetch(f"https://127.0.0.1:{port}/", timeout=5, ca_file=str(good.cert_path))
        assert out["ok"] is True and "note" not in out["tls"]
        res = tls_check("127.0.0.1", port, timeout=5, ca_file=str(good.cert_path))
        assert res["verified"] is True and "strict_note" not in res
    finally:
        srv.shutdown()
        srv.server_close()


def test_untrusted_chain_says_why_and_not_the_strict_reason(frozen_like):
    """An untrusted chain's reason is the non-strict one (the issuer), never empty."""
    _, port, tmp = frozen_like
    other = LabCA(tmp / "other", name="Unrelated CA")
    out = fetch(f"https://127.0.0.1:{port}/", timeout=5, ca_file=str(other.cert_path))
    assert (out["ok"], out["phase"], out["state"]) == (False, "tls", "untrusted")
    assert out["detail"] and "issuer" in out["detail"] and "Key Identifier" not in out["detail"]
    res = tls_check("127.0.0.1", port, timeout=5, ca_file=str(other.cert_path))
    assert res["verified"] is False and res["verdict"] == "untrusted"
    assert "issuer" in res["verify_error"] and "Key Identifier" not in res["verify_error"]


def test_contexts_verify_without_strict_checks():
    """Every context we build judges as browsers do, whatever Python's default strictness."""
    from roomprobe.net import tlsverdict

    strict = getattr(ssl, "VERIFY_X509_STRICT", 0)
    for ctx in (tlstrust.client_context(), tlsverdict.public_context()):
        assert ctx is not None and not ctx.verify_flags & strict


def test_reason_is_never_empty():
    assert tlstrust.reason(ssl.SSLCertVerificationError()) == \
        "SSLCertVerificationError (no reason given by the TLS library)"
    exc = ssl.SSLCertVerificationError(1, "")
    exc.verify_code = 85
    exc.verify_message = ""
    assert tlstrust.reason(exc) == "SSLCertVerificationError (OpenSSL verify error 85)"
    exc.verify_message = "Missing Authority Key Identifier"
    assert tlstrust.reason(exc) == "Missing Authority Key Identifier"
