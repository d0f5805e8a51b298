"""Active checks: is a proxy alive and what does it answer to CONNECT; who signs zoom.us's cert.

A proxy is judged by a real ``CONNECT host:443``: 200 works, 407 wants credentials, 403 refuses
the destination, anything that is not HTTP is a broken proxy. TLS interception shows as a
certificate that does not verify against the system store (or ``ca_file``); the issuer is kept
so the person reading the report can name the gateway.
"""

from __future__ import annotations

import base64
import ipaddress
import socket
import ssl
import time
from typing import Any
from urllib.parse import unquote, urlsplit

from roomprobe.net import tlstrust
from roomprobe.net.proxysrc import safe_url
from roomprobe.net.wire import head_line, read_head


def split_proxy(url: str) -> tuple[str, str, int, str | None]:
    """scheme, host, port and the Basic credentials (``user:password``) of a proxy URL."""
    parts = urlsplit(url if "://" in url else "http://" + url)
    default = {"https": 443, "socks5": 1080, "socks4": 1080, "socks": 1080}.get(parts.scheme, 8080)
    cred = None
    if parts.username is not None:
        cred = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return parts.scheme or "http", parts.hostname or "", parts.port or default, cred


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _connect(host: str, port: int, timeout: float) -> tuple[socket.socket | None, dict[str, Any]]:
    t0 = time.monotonic()
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except TimeoutError:
        return None, {"tcp": "timeout", "ms": round((time.monotonic() - t0) * 1000, 1)}
    except ConnectionRefusedError:
        return None, {"tcp": "refused", "ms": round((time.monotonic() - t0) * 1000, 1)}
    except OSError as exc:
        return None, {"tcp": "error", "error": exc.strerror or str(exc),
                      "ms": round((time.monotonic() - t0) * 1000, 1)}
    return sock, {"tcp": "open", "ms": round((time.monotonic() - t0) * 1000, 1)}


def classify_answer(head: bytes) -> tuple[str, int | None]:
    """The CONNECT answer: ok | auth-required | forbidden | refused-other | garbage | closed."""
    if not head:
        return "closed", None
    line = head.split(b"\r\n", 1)[0].decode("latin-1", "replace")
    parts = line.split()
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return "garbage", None
    code = int(parts[1])
    if 200 <= code < 300:
        return "ok", code
    # 401 is what some proxies (tinyproxy) send for wrong credentials, 407 for missing ones.
    return {407: "auth-required", 401: "auth-required", 403: "forbidden"}.get(code, "refused-other"), code


def probe_proxy(url: str, target: str, timeout: float) -> dict[str, Any]:
    """TCP connect to the proxy, then ``CONNECT target`` (``host:port``); never raises."""
    scheme, host, port, cred = split_proxy(url)
    out: dict[str, Any] = {"proxy": safe_url(url), "host": host, "port": port,
                           "loopback": is_loopback(host), "target": target,
                           "credentials_sent": cred is not None}
    sock, tcp = _connect(host, port, timeout)
    out.update(tcp)
    if sock is None:
        return out
    with sock:
        if scheme.startswith("socks"):
            out["connect"] = "not-tested"  # SOCKS: reachability only
            return out
        req = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: roomprobe\r\n"
        if cred:
            req += f"Proxy-Authorization: Basic {base64.b64encode(cred.encode()).decode()}\r\n"
        try:
            sock.settimeout(timeout)
            sock.sendall((req + "\r\n").encode())
            head = read_head(sock, limit=16384)
        except TimeoutError:
            out["connect"] = "no-answer"
            return out
        except OSError as exc:
            out.update(connect="closed", error=exc.strerror or str(exc))
            return out
    kind, code = classify_answer(head)
    out.update(connect=kind, status_code=code,
               status_line=head_line(head))
    return out


def _issuer(der: bytes | None) -> dict[str, str]:
    """Issuer and subject of a certificate we could not verify (cryptography, or ssl's decoder)."""
    if not der:
        return {}
    try:
        from cryptography import x509

        cert = x509.load_der_x509_certificate(der)
        return {"issuer": cert.issuer.rfc4514_string(), "subject": cert.subject.rfc4514_string()}
    except ImportError:
        pass
    import os
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as f:
        f.write(ssl.DER_cert_to_PEM_cert(der))
    try:
        info = ssl._ssl._test_decode_cert(f.name)  # type: ignore[attr-defined]
    finally:
        os.unlink(f.name)
    return {"issuer": _name(info.get("issuer", ())), "subject": _name(info.get("subject", ()))}


def _name(rdns: Any) -> str:
    return ",".join(f"{k}={v}" for rdn in rdns for k, v in rdn)


def _tunnel(proxy: str | None, host: str, port: int, timeout: float) -> socket.socket:
    if proxy is None:
        return socket.create_connection((host, port), timeout=timeout)
    _, phost, pport, cred = split_proxy(proxy)
    sock = socket.create_connection((phost, pport), timeout=timeout)
    req = f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n"
    if cred:
        req += f"Proxy-Authorization: Basic {base64.b64encode(cred.encode()).decode()}\r\n"
    sock.sendall((req + "\r\n").encode())
    kind, code = classify_answer(read_head(sock, limit=16384))
    if kind != "ok":
        sock.close()
        raise ConnectionError(f"proxy answered CONNECT with {code or kind}")
    return sock


def tls_check(host: str, port: int, timeout: float, ca_file: str | None = None,
              proxy: str | None = None) -> dict[str, Any]:
    """TLS to host:port (directly or through ``proxy``): does the chain verify, who issued it."""
    out: dict[str, Any] = {"host": host, "port": port, "via": safe_url(proxy) if proxy else "direct",
                           "ca": ca_file or "system", "trust": tlstrust.describe(ca_file or None)}
    ctx = tlstrust.client_context(ca_file)
    try:
        with _tunnel(proxy, host, port, timeout) as raw, ctx.wrap_socket(raw, server_hostname=host) as s:
            cert = s.getpeercert() or {}
            out.update(verified=True, issuer=_name(cert.get("issuer", ())),
                       subject=_name(cert.get("subject", ())))
            return out
    except ssl.SSLCertVerificationError as exc:
        out.update(verified=False, verify_error=exc.verify_message or str(exc))
    except (OSError, ssl.SSLError) as exc:
        out.update(verified=None, error=f"{type(exc).__name__}: {exc}")
        return out
    # Not verified: fetch the certificate without verification to name its issuer.
    loose = ssl.create_default_context()
    loose.check_hostname = False
    loose.verify_mode = ssl.CERT_NONE
    try:
        with _tunnel(proxy, host, port, timeout) as raw, loose.wrap_socket(raw, server_hostname=host) as s:
            out.update(_issuer(s.getpeercert(binary_form=True)))
    except (OSError, ssl.SSLError) as exc:
        out["issuer_error"] = f"{type(exc).__name__}: {exc}"
    return out
