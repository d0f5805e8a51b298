"""Credentials never survive into a report or a line of text."""

from __future__ import annotations

import json

import pytest

from roomprobe.core.redact import redact, redact_text


@pytest.mark.parametrize("raw, secret", [
    ("http://bob:s3cret@proxy.lab:3128", "s3cret"),
    ("HTTPS_PROXY=user:pw0rd@10.0.0.1:8080", "pw0rd"),
    ("http=alice:hunter2@p:80;https=p2:443", "hunter2"),
    ("Proxy-Authorization: Basic dXNlcjpwdw==", "dXNlcjpwdw=="),
    ("socks5h://u:p%40ss@host:1080/", "p%40ss"),
    ("http://tokenonly@host/x", "tokenonly"),
])
def test_secrets_are_removed(raw, secret):
    out = redact_text(raw)
    assert secret not in out and "***" in out


@pytest.mark.parametrize("text", ["fe80::1%eth0", "http://proxy:3128", "2001:db8::1",
                                  "at 12:30 the port 9090 was open", "user@example.com"])
def test_ordinary_text_is_untouched(text):
    assert redact_text(text) == text


def test_nested_structures_and_secret_keys():
    data = {"proxies": [{"url": "http://u:pw@h:1", "password": "pw", "note": "ok"}],
            "token": "abc", "empty_password": None}
    out = json.dumps(redact(data))
    assert "pw" not in out.replace("***", "") and "abc" not in out and '"note": "ok"' in out
