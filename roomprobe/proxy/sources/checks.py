"""Active checks: is a proxy alive and what does it answer to CONNECT; who signs zoom.us's cert.

A proxy is judged by a real ``CONNECT host:443``: 200 works, 407 wants credentials, 403 refuses
the destination, anything that is not HTTP is a broken proxy. TLS interception shows as a
certificate that does not verify against the system store (or ``ca_file``); the issuer is kept
so the person reading the report can name the gateway.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from typing import Any

from roomprobe.core.proxyurl import ProxyURL
from roomprobe.net import tlstrust
from roomprobe.net.tunnel import (
    TunnelRefused,
    ask_connect,
    classify_answer,
    credentials,
    ms_since,
    open_path,
    proxy_port,
    socks5,
    tcp_connect,
)
from roomprobe.net.wire import head_line, read_head
from roomprobe.proxy.sources import safe_url


def split_proxy(url: str) -> tuple[str, str, int, str | None]:
    """scheme, host, port and the Basic credentials (``user:password``) of a proxy URL.

    Raises ValueError (with a message that carries no credentials) for an unusable URL; callers
    that take settings from the user check ``sources.proxy_problem`` first."""
    p = _parsed(url)
    return p.scheme, p.host, proxy_port(p), credentials(p)


def _parsed(url: str) -> ProxyURL:
    """The proxy URL, parsed by the one parser; ValueError (no credentials in it) when unusable."""
    from roomprobe.core.proxyurl import parse_proxy_url
    from roomprobe.proxy.sources import proxy_problem

    problem = proxy_problem(url)
    if problem:
        raise ValueError(f"{safe_url(url)!r}: {problem}")
    return parse_proxy_url(url)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _connect(host: str, port: int, timeout: float) -> tuple[socket.socket | None, dict[str, Any]]:
    """Is the proxy there: open | refused | timeout | error, with the milliseconds it took."""
    t0 = time.monotonic()
    try:
        sock = tcp_connect(host, port, lambda: timeout)
    except TimeoutError:
        return None, {"tcp": "timeout", "ms": ms_since(t0)}
    except ConnectionRefusedError:
        return None, {"tcp": "refused", "ms": ms_since(t0)}
    except OSError as exc:
        return None, {"tcp": "error", "error": exc.strerror or str(exc), "ms": ms_since(t0)}
    return sock, {"tcp": "open", "ms": ms_since(t0)}


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
                out["connect"] = socks5(sock, thost.strip("[]"), int(tport), cred)
            except TimeoutError:
                out["connect"] = "no-answer"
            except (OSError, ValueError) as exc:
                out.update(connect="closed", error=str(exc))
            return out
        try:
            sock.settimeout(timeout)
            head = ask_connect(sock, target, cred)
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
    """The path to host:port for a TLS look (the one CONNECT client, net/tunnel); a proxy that
    refuses the tunnel is a ConnectionError, as the report words it."""
    via = None if proxy is None else _parsed(proxy)
    try:
        return open_path(host, port, via, lambda: timeout)
    except TunnelRefused as exc:
        raise ConnectionError(str(exc)) from None


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
