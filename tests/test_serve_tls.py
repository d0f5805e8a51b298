"""serve's TLS on loopback: the pin is checked before the token is sent, plain HTTP to the TLS
port is told so, the self-signed certificate is kept (same fingerprint on restart, key 0600),
bad certificate files and flag combinations are one line, exit 3."""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

from roomprobe.core.errors import UsageError
from roomprobe.peer import servetls
from roomprobe.peer import tls as peertls
from roomprobe.peer.reflector import Reflector
from roomprobe.peer.serve import Limits, SpeedServer
from roomprobe.peer.speed import TOKEN_HEADER

TOKEN = "serve-tls-unit-token-1"


@pytest.fixture()
def tls_server(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    assert servetls.ensure_self_signed("127.0.0.1", cert, key) is True
    ctx, fp = servetls.server_context(cert, key)
    srv = SpeedServer(("127.0.0.1", 0), TOKEN, Limits(header_timeout_s=1.0), time.monotonic() + 60,
                      tls=ctx)
    refl = Reflector("127.0.0.1", 0, TOKEN)
    refl.require_grant = True
    srv.reflector = refl
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield srv, fp, srv.server_address[1]
    srv.shutdown()
    srv.server_close()
    refl.close()


def test_self_signed_pair_is_kept_and_its_key_is_private(tmp_path):
    cert, key = tmp_path / "d" / "cert.pem", tmp_path / "d" / "key.pem"
    assert servetls.ensure_self_signed("10.0.0.20", cert, key) is True
    _ctx, fp1 = servetls.server_context(cert, key)
    assert servetls.ensure_self_signed("10.0.0.21", cert, key) is False  # reused: same pin
    _ctx, fp2 = servetls.server_context(cert, key)
    assert fp1 == fp2 and len(fp1) == 64
    if os.name == "posix":
        assert (key.stat().st_mode & 0o777) == 0o600


def test_the_pinned_client_gets_a_reflector_session(tls_server):
    srv, fp, port = tls_server
    conn = peertls.PinnedHTTPSConnection("127.0.0.1", port, timeout=5, pin=fp)
    conn.request("POST", "/__quality", body=b"", headers={TOKEN_HEADER: TOKEN})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    assert resp.status == 200 and b'"session"' in body and len(srv.reflector.grants) == 1
    assert conn.peer_fingerprint == fp


def test_a_wrong_pin_sends_nothing(tls_server):
    srv, fp, port = tls_server
    wrong = ("0" if fp[0] != "0" else "1") + fp[1:]
    conn = peertls.PinnedHTTPSConnection("127.0.0.1", port, timeout=5, pin=wrong)
    with pytest.raises(peertls.PinMismatch, match="not the pinned"):
        conn.request("POST", "/__quality", body=b"", headers={TOKEN_HEADER: TOKEN})
    time.sleep(0.2)
    assert srv.requests == 0 and not srv.reflector.grants  # the request never left
    assert peertls.verify_peer("127.0.0.1", port, 5, fp) == fp
    with pytest.raises(peertls.PinMismatch):
        peertls.verify_peer("127.0.0.1", port, 5, wrong)


def test_plain_http_to_the_tls_port_is_told_to_use_tls(tls_server):
    srv, _fp, port = tls_server
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/__down?bytes=0", headers={TOKEN_HEADER: TOKEN})
    resp = conn.getresponse()
    assert resp.status == 400 and b"speaks TLS" in resp.read()
    conn.close()
    assert srv.plain_refused == 1 and srv.requests == 0


def test_a_stalled_handshake_is_cut_by_the_header_deadline(tls_server):
    srv, _fp, port = tls_server
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"\x16\x03\x01")  # the start of a ClientHello, then nothing
    assert s.recv(100) == b""  # closed by the server (1 s deadline), not left hanging (5 s)
    s.close()


@pytest.mark.parametrize("text", ["", "xyz", "ab" * 31, "g" * 64])
def test_bad_fingerprints_are_refused(text):
    with pytest.raises(ValueError, match="SHA-256 fingerprint"):
        peertls.parse_fingerprint(text)


def test_fingerprints_in_any_common_spelling():
    fp = "ab" * 32
    assert peertls.parse_fingerprint(peertls.shown(fp)) == fp
    assert peertls.parse_fingerprint("SHA256:" + fp.upper()) == fp


def test_bad_certificate_files_are_one_line(tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(UsageError, match="not a PEM certificate"):
        servetls.server_context(junk, junk)
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    servetls.ensure_self_signed("127.0.0.1", cert, key)
    other_c, other_k = tmp_path / "c2.pem", tmp_path / "k2.pem"
    servetls.ensure_self_signed("127.0.0.1", other_c, other_k)
    with pytest.raises(UsageError, match="the key must be the certificate's"):
        servetls.server_context(cert, other_k)


@pytest.mark.parametrize("args,words", [
    (("serve", "--bind", "127.0.0.1", "--tls-cert", "c.pem"), ["go together"]),
    (("serve", "--bind", "127.0.0.1", "--tls-cert", "missing.pem", "--tls-key", "k.pem"),
     ["cannot read TLS certificate"]),
    (("check", "--peer-fingerprint", "ab" * 32), ["go with --peer"]),
    (("check", "--peer", "127.0.0.1", "--peer-fingerprint", "nothex"), ["SHA-256 fingerprint"]),
    (("check", "--peer", "127.0.0.1", "--peer-fingerprint", "ab" * 32, "--peer-tls-unpinned"),
     ["give one of them"]),
    (("sweep", "127.0.0.1", "--peer-fingerprint", "ab" * 32), ["add --deep"]),
])
def test_bad_tls_flags_are_one_line_exit_3(tmp_path, args, words):
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(NO_COLOR="1", XDG_STATE_HOME=str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "roomprobe", *args], capture_output=True, text=True,
                       timeout=60, env=env, cwd=tmp_path)
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    for w in words:
        assert w in r.stderr, r.stderr


def test_client_context_is_tls12_or_better():
    assert peertls.client_context().minimum_version >= ssl.TLSVersion.TLSv1_2


def _cli(tmp_path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(NO_COLOR="1", XDG_STATE_HOME=str(tmp_path))
    return subprocess.run([sys.executable, "-m", "roomprobe", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=tmp_path)


def test_serve_takes_the_exporter_web_config_tls(tmp_path):
    """The exporter-toolkit file's tls_server_config is serve's certificate too; what serve
    cannot honour (basic auth, client certificates) is refused in one line."""
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    servetls.ensure_self_signed("127.0.0.1", cert, key)
    _ctx, fp = servetls.server_context(cert, key)
    web = tmp_path / "web.yml"
    web.write_text(f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n")
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    r = _cli(tmp_path, "serve", "--bind", "127.0.0.1", "--speed-port", str(port), "--duration", "1",
             "--web-config", str(web))
    assert r.returncode == 0, r.stderr
    assert peertls.shown(fp) in r.stdout and f"--peer-fingerprint {fp}" in r.stdout
    web.write_text(f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
                   "basic_auth_users:\n  prom: $2b$10$7za2c8GV4rHtcrXGTbyIiu2tUqAI1L/iADBoaAQZyA3KQa1jC6/Pm\n")
    for extra, words in (((), "basic_auth_users is for 'roomprobe exporter'"),
                         (("--tls",), "leave out --tls")):
        r = _cli(tmp_path, "serve", "--bind", "127.0.0.1", "--web-config", str(web), *extra)
        assert r.returncode == 3 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert words in r.stderr and "Traceback" not in r.stderr
