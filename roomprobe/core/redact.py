"""Credential redaction, applied to every report, text line and log we produce.

Proxy URLs carry ``user:password@`` (environment variables, PAC results, registry values), and
a ticket attachment is the worst place for them. Redaction is done once, centrally, on the
finished data, so no probe can forget it.
"""

from __future__ import annotations

import re
from typing import Any

# user:password@ inside a URL (scheme://user:pass@host) or a bare proxy spec (user:pass@host:port).
_USERINFO = re.compile(r"(?P<pre>(?:[a-zA-Z][\w+.-]*://)|(?<![\w.%~+-]))"
                       r"(?P<user>[^\s:/@;=\"'<>,]+):(?P<pw>[^\s/@;\"'<>]*)@(?=[\w\[.-])")
# scheme://user@host (a user alone, e.g. a token as user name).
_URL_USER = re.compile(r"(?P<pre>[a-zA-Z][\w+.-]*://)(?P<user>[^\s:/@;\"'<>]+)@(?=[\w\[.-])")
_AUTH_HEADER = re.compile(r"(?i)(proxy-authorization|authorization)(\s*[:=]\s*)(\S+(?:\s+\S+)?)")
SECRET_KEYS = re.compile(r"(?i)^(pass(word)?|passwd|secret|token|proxy_password|authorization|"
                         r"proxy-authorization|credentials?)$")
MASK = "***"


def redact_text(text: str) -> str:
    """Remove credentials from one string."""
    text = _USERINFO.sub(lambda m: f"{m.group('pre')}{MASK}:{MASK}@", text)
    text = _URL_USER.sub(lambda m: f"{m.group('pre')}{MASK}@", text)
    return _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)


def redact(value: Any) -> Any:
    """Redact every string in a JSON-like structure; values under secret-looking keys go whole."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: (MASK if isinstance(k, str) and SECRET_KEYS.match(k) and v not in (None, "")
                    else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value
