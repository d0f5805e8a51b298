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

from roomprobe.net import tlstrust
from roomprobe.net.wire import head_line, read_head
from roomprobe.proxy.sources import safe_url


def split_proxy(url: str) -> tuple[str, str, int, str | None]:
    """scheme, host, port and the Basic credentials (``user:password``) of a proxy URL.

    Raises ValueError (with a message that carries no credentials) for an unusable URL; callers
    that take settings from the user check ``sources.proxy_problem`` first."""
    from roomprobe.proxy.sources import proxy_problem

    problem = proxy_problem(url)
    if problem:
        raise ValueError(f"{safe_url(url)!r}: {problem}")
    from roomprobe.core.proxyurl import parse_proxy_url

    p = parse_proxy_url(url)
    default = {"https": 443, "socks5": 1080, "socks4": 1080, "socks": 1080}.get(p.scheme, 8080)
    cred = None
    if p.username is not None:
        cred = f"{p.username}:{p.password or ''}"
    return p.scheme, p.host, p.port or default, cred


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


TESTED_SCHEMES = ("http", "socks5", "socks5h")


def probe_proxy(url: str, target: str, timeout: float) -> dict[str, Any]:
    """TCP connect to the proxy, then ``CONNECT target`` (``host:port``; HTTP CONNECT or SOCKS5);
    never raises. A scheme roomprobe cannot speak (https://, socks4://) is ``not-tested``."""
    try:
        scheme, host, port, cred = split_proxy(url)
    except ValueError as exc:
        return {"proxy": safe_url(url), "host": "", "port": None, "loopback": False, "target": target,
                "tcp": "not-tried", "connect": "bad-setting", "error": str(exc)}
    out: dict[str, Any] = {"proxy": safe_url(url), "scheme": scheme, "host": host, "port": port,
                           "loopback": is_loopback(host), "target": target,
                           "credentials_sent": cred is not None}
    sock, tcp = _connect(host, port, timeout)
    out.update(tcp)
    if sock is None:
        return out
    with sock:
        if scheme not in TESTED_SCHEMES:
            out["connect"] = "not-tested"
            return out
        if scheme.startswith("socks5"):
            thost, _, tport = target.rpartition(":")
            try:
                sock.settimeout(timeout)
                out["connect"] = _socks5(sock, thost.strip("[]"), int(tport), cred)
            except TimeoutError:
                out["connect"] = "no-answer"
            except (OSError, ValueError) as exc:
                out.update(connect="closed", error=str(exc))
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


def _socks5(sock: socket.socket, host: str, port: int, cred: str | None) -> str:
    """A SOCKS5 CONNECT (RFC 1928, user/password per RFC 1929) on ``sock``: ``ok`` or why not."""
    methods = b"\x00\x02" if cred else b"\x00"
    sock.sendall(b"\x05" + bytes([len(methods)]) + methods)
    hello = _recv_exact(sock, 2)
    if len(hello) < 2 or hello[0] != 5:
        return "garbage" if hello else "closed"
    if hello[1] == 0x02 and cred:
        user, _, pw = cred.partition(":")
        u, p = user.encode()[:255], pw.encode()[:255]
        sock.sendall(b"\x01" + bytes([len(u)]) + u + bytes([len(p)]) + p)
        auth = _recv_exact(sock, 2)
        if len(auth) < 2 or auth[1] != 0:
            return "auth-required"
    elif hello[1] == 0xFF or hello[1] == 0x02:
        return "auth-required"
    elif hello[1] != 0:
        return "garbage"
    try:
        addr = b"\x01" + socket.inet_aton(host) if host.count(".") == 3 and host.replace(".", "").isdigit() \
            else b"\x03" + bytes([len(host.encode()[:255])]) + host.encode()[:255]
    except OSError:
        addr = b"\x03" + bytes([len(host.encode()[:255])]) + host.encode()[:255]
    sock.sendall(b"\x05\x01\x00" + addr + port.to_bytes(2, "big"))
    reply = _recv_exact(sock, 4)
    if len(reply) < 4 or reply[0] != 5:
        return "garbage" if reply else "closed"
    if reply[1] != 0:
        return {2: "forbidden"}.get(reply[1], "refused-other")
    rest = {1: 4, 4: 16}.get(reply[3])
    if rest is None:
        n = _recv_exact(sock, 1)
        rest = n[0] if n else 0
    _recv_exact(sock, rest + 2)
    return "ok"


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def _tunnel(proxy: str | None, host: str, port: int, timeout: float) -> socket.socket:
    if proxy is None:
        return socket.create_connection((host, port), timeout=timeout)
    scheme, phost, pport, cred = split_proxy(proxy)
    sock = socket.create_connection((phost, pport), timeout=timeout)
    if scheme.startswith("socks5"):
        kind = _socks5(sock, host, port, cred)
        if kind != "ok":
            sock.close()
            raise ConnectionError(f"SOCKS proxy answered CONNECT with {kind}")
        return sock
    req = f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n"
    if cred:
        req += f"Proxy-Authorization: Basic {base64.b64encode(cred.encode()).decode()}\r\n"
    sock.sendall((req + "\r\n").encode())
    kind, code = classify_answer(read_head(sock, limit=16384))
    if kind != "ok":
        sock.close()
        raise ConnectionError(f"proxy answered CONNECT with {code or kind}")
    return sock


def _handshake(ctx: ssl.SSLContext, proxy: str | None, host: str, port: int,
               timeout: float, progress: dict[str, Any] | None = None) -> dict[str, Any]:
    progress = progress if progress is not None else {}
    progress["phase"] = "resolve-connect" if proxy is None else "proxy"
    with _tunnel(proxy, host, port, timeout) as raw:
        progress["phase"] = "tls"
        with ctx.wrap_socket(raw, server_hostname=host) as s:
            cert = s.getpeercert() or {}
            return {"issuer": _name(cert.get("issuer", ())), "subject": _name(cert.get("subject", ()))}


def _loose_look(proxy: str | None, host: str, port: int, timeout: float) -> dict[str, Any]:
    """The certificate's names without verification, and the server's ``Date`` header (clock)."""
    loose = ssl.create_default_context()
    loose.check_hostname = False
    loose.verify_mode = ssl.CERT_NONE
    out: dict[str, Any] = {}
    try:
        with _tunnel(proxy, host, port, timeout) as raw, loose.wrap_socket(raw, server_hostname=host) as s:
            out.update(_issuer(s.getpeercert(binary_form=True)))
            try:
                s.sendall(f"HEAD / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: roomprobe\r\n"
                          "Connection: close\r\n\r\n".encode())
                head = read_head(s, limit=16384)
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"date":
                        out["server_date"] = value.strip().decode("latin-1")[:64]
            except (OSError, ssl.SSLError):
                pass
    except (OSError, ssl.SSLError) as exc:
        out["issuer_error"] = f"{type(exc).__name__}: {exc}"
    return out


def tls_check(host: str, port: int, timeout: float, ca_file: str | None = None,
              proxy: str | None = None, public_ca_file: str | None = None,
              progress: dict[str, Any] | None = None) -> dict[str, Any]:
    """TLS to host:port (directly or through ``proxy``) and its verdict (roomprobe.net.tlsverdict):
    does the chain verify against this device's store (or ``ca_file``), against the public web
    PKI, who issued it; for a date error, the local time and the server's Date header.

    ``progress`` (optional) gets ``{"phase": ...}`` as the first handshake goes: a caller that
    stops waiting can tell a check stuck in name resolution (which takes no timeout) from one
    cut short elsewhere."""
    import datetime as dt

    from roomprobe.net.tlsverdict import public_context, ssl_context, verdict_of

    out: dict[str, Any] = {"host": host, "port": port, "via": safe_url(proxy) if proxy else "direct",
                           "ca": ca_file or "system", "trust": tlstrust.describe(ca_file or None)}
    try:
        seen, strict_note = tlstrust.judged(ssl_context(ca_file),
                                            lambda ctx: _handshake(ctx, proxy, host, port, timeout,
                                                                        progress))
        out.update(seen)
        if strict_note:
            out["strict_note"] = strict_note
    except ssl.SSLCertVerificationError as exc:
        out.update(verified=False, verdict=verdict_of(exc), verify_error=tlstrust.reason(exc))
        out.update(_loose_look(proxy, host, port, timeout))
        if out["verdict"] in ("expired", "not-yet-valid"):
            out["local_time"] = dt.datetime.now(dt.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
        return out
    except TimeoutError as exc:
        out.update(verified=None, verdict="no-answer", error=f"{type(exc).__name__}: {exc}")
        return out
    except ssl.SSLError as exc:
        out.update(verified=None, verdict="handshake-failed", error=f"{type(exc).__name__}: {exc}")
        return out
    except (OSError, ValueError) as exc:
        out.update(verified=None, verdict="not-checked", error=f"{type(exc).__name__}: {exc}")
        return out
    out["verified"] = True
    pub = public_context(public_ca_file)
    if pub is None:
        out.update(verdict="ok", public="not-compared")
        return out
    try:
        _handshake(pub, proxy, host, port, timeout)
        out.update(verdict="ok", public="verified")
    except ssl.SSLCertVerificationError as exc:
        # Trusted here, not by the public web PKI: a company CA inspects the traffic. (A name or
        # date error cannot be it: the first handshake checked those.)
        out.update(verdict="inspected" if verdict_of(exc) == "untrusted" else "ok",
                   public=tlstrust.reason(exc))
    except (OSError, ssl.SSLError) as exc:
        out.update(verdict="ok", public=f"not compared: {type(exc).__name__}: {exc}")
    return out
