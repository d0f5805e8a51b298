"""Credential redaction, applied to every report, text line and log we produce.

Proxy URLs carry ``user:password@`` (environment variables, PAC results, registry values), PAC
and webhook URLs carry ``?token=...``, and a ticket attachment is the worst place for either.
Redaction is done once, centrally, on the finished data (text, JSON, markdown, HTML, history,
webhook payload all start from the redacted report), so no probe can forget it.

What is masked, and why each rule is shaped the way it is:

- userinfo of a URL (``scheme://user:pass@host``). Passwords are often typed into proxy
  variables without percent-encoding, so a raw ``@``, ``/``, ``#`` or ``?`` may be inside the
  password: the userinfo ends at the LAST ``@`` of the authority, and when a ``user:`` prefix is
  followed by a non-port and an ``@`` further on, everything up to that ``@`` is masked. We
  prefer masking too much of a URL to showing part of a password.
- the values of a URL's query string and ``key=value`` fragment (``?token=***``): names stay,
  so the reader still sees that the PAC URL had a token.
- a bare proxy spec ``user:pass@host:port`` (registry, scutil, ``http=...;https=...`` lists).
- ``Authorization`` / ``Proxy-Authorization`` header values and ``Basic``/``Bearer`` tokens
  anywhere (a proxy that echoes our request back in its answer must not put them in a report).
- Python's own messages that quote part of a URL's authority (``Port could not be cast to
  integer value as 'ssW0rd'``, ``nonnumeric port: '...'``): the quoted part can be a password.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"

# A URL token: scheme:// then everything up to whitespace or a quote/angle bracket/backtick.
_URL = re.compile(r"(?P<scheme>\b[a-zA-Z][\w+.-]*://)(?P<rest>[^\s\"'<>`]+)")
# Punctuation that ends a sentence, not a URL ("see http://x/y.").
_TRAILING = ".,;:!)]}"
# user:password@ inside a bare proxy spec (user:pass@host:port); the password runs to the last @
# of the spec that is followed by something host-like.
_BARE_USERINFO = re.compile(r"(?<![\w.%~+\-/*])(?P<user>[^\s:/@;=\"'<>,*]+):(?!//)(?P<pw>[^\s;\"'<>]*)"
                            r"@(?=[\w\[.-])")
_AUTH_HEADER = re.compile(r"(?i)(proxy-authorization|authorization)(\s*[:=]\s*)"
                          r"((?:[A-Za-z]+\s+)?[^\s\"',;]+)")
_AUTH_TOKEN = re.compile(r"(?i)\b(basic|bearer|digest|negotiate|ntlm)(\s+)"
                         r"(?=[A-Za-z0-9+/=._~-]*[0-9+/=])[A-Za-z0-9+/=._~-]{6,}")
_PY_QUOTED = re.compile(r"(?i)(port could not be cast to integer value as |nonnumeric port: |"
                        r"invalid port: |port out of range[^']*)'[^']*'")
SECRET_KEYS = re.compile(r"(?i)^(pass(word)?|passwd|secret|token|proxy_password|authorization|"
                         r"proxy-authorization|credentials?|api_key|apikey)$")


def redact_url(url: str) -> str:
    """One URL with its userinfo and query/fragment values masked (see the module docstring)."""
    m = _URL.fullmatch(url)
    if m is None:
        return _mask_query(url)
    return m.group("scheme") + _redact_rest(m.group("rest"))


def _redact_rest(rest: str) -> str:
    """Everything after ``scheme://``: userinfo out, query values masked."""
    end = _first(rest, "/?#")
    authority = rest[:end]
    if "@" in authority:  # the ordinary case, and a raw @ in the password: cut at the last @
        # ...that is followed by a host: ``alice:Pr0xy@Pass/w0rd#Frag@127.0.0.1:3128`` has an @
        # and then a / and a # inside the password, so the authority urlsplit sees ends too early
        at = max(authority.rindex("@"), _last_host_at(rest))
        userinfo, rest = rest[:at], rest[at + 1:]
        return _mask_userinfo(userinfo) + "@" + _mask_query(rest)
    at = rest.rfind("@")
    if at > 0 and ":" in authority:
        after_colon = authority.split(":", 1)[1]
        in_query = "?" in rest[:at] and after_colon.isdigit()
        if not after_colon.isdigit() or not in_query:
            # user:pa/ss@host or user:pa#ss@host: a raw / or # in the password ends the
            # authority early for urlsplit; the host is after the last @.
            return f"{MASK}:{MASK}@" + _mask_query(rest[at + 1:])
    return _mask_query(rest)


# host[:port] (a name, an address, or [an IPv6 literal]) ending the text or followed by / ? #
_HOSTPORT = re.compile(r"(?:\[[^\]/?#@\s]*\]|[^\s/?#@:\[\]]+)(?::\d*)?(?=$|[/?#])")


def _last_host_at(rest: str) -> int:
    """The index of the last ``@`` in ``rest`` that a host[:port] follows; -1 if none."""
    at = rest.rfind("@")
    while at >= 0:
        if _HOSTPORT.match(rest, at + 1):
            return at
        at = rest.rfind("@", 0, at)
    return -1


def _first(text: str, chars: str) -> int:
    found = [i for i in (text.find(c) for c in chars) if i >= 0]
    return min(found) if found else len(text)


def _mask_userinfo(userinfo: str) -> str:
    return f"{MASK}:{MASK}" if ":" in userinfo else MASK


def _mask_query(rest: str) -> str:
    """``host/path?a=1&b=2#k=v`` -> ``host/path?a=***&b=***#k=***`` (a plain #anchor stays)."""
    q, h = rest.find("?"), rest.find("#")
    if q >= 0 and (h < 0 or q < h):
        query, sep, frag = rest[q + 1:].partition("#")
        return rest[:q] + "?" + _mask_pairs(query) + sep + _mask_frag(frag)
    if h >= 0:
        return rest[:h] + "#" + _mask_frag(rest[h + 1:])
    return rest


def _mask_frag(frag: str) -> str:
    return _mask_pairs(frag) if "=" in frag else frag


def _mask_pairs(query: str) -> str:
    parts = []
    for part in query.split("&"):
        key, eq, value = part.partition("=")
        parts.append(f"{key}={MASK}" if eq and value else (part if eq or not part else MASK))
    return "&".join(parts)


def _url_sub(m: re.Match[str]) -> str:
    token = m.group(0)
    tail = ""
    while token and token[-1] in _TRAILING and not token.endswith("://"):
        tail = token[-1] + tail
        token = token[:-1]
    return redact_url(token) + tail


def redact_text(text: str) -> str:
    """Remove credentials, tokens and query values from one string."""
    if not text:
        return text
    text = _PY_QUOTED.sub(lambda m: f"{m.group(1)}'{MASK}'", text)
    text = _URL.sub(_url_sub, text)
    text = _BARE_USERINFO.sub(f"{MASK}:{MASK}@", text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return _AUTH_TOKEN.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)


def redact(value: Any) -> Any:
    """Redact every string in a JSON-like structure; values under secret-looking keys go whole."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: (MASK if isinstance(k, str) and SECRET_KEYS.match(k) and v not in (None, "")
                    else redact(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value
