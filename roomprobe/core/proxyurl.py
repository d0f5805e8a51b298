"""The one parser for proxy URLs: every place that reads a proxy setting goes through here.

Why not ``urllib.parse.urlsplit``: proxy passwords are typed into environment variables,
registry values and PAC files without percent-encoding, so a raw ``@``, ``/`` or ``#`` may be
part of the password. urlsplit ends the authority at the first ``/`` or ``#``, so for
``http://alice:Pr0xy@Pass/w0rd#Frag@127.0.0.1:3128`` it reads host ``Pass`` and leaves
``w0rd#Frag@127.0.0.1`` in the path and fragment, where it was shown in every output. A proxy
URL has no meaningful path, so we read it as curl does: the userinfo runs to the LAST ``@`` and
the host (and port) follows it.

Also checked here, because they crashed probes deep inside the socket and http.client calls:
a host label longer than 63 characters or a host that IDNA cannot encode (``socket.connect``
raised UnicodeError), and control characters or spaces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
MAX_LABEL = 63
MAX_HOST = 253


class ProxyURLError(ValueError):
    """A proxy value that is no usable URL; the message never carries the credentials."""


@dataclass(frozen=True)
class ProxyURL:
    """A parsed proxy URL. ``port`` is None when the value names none."""

    scheme: str
    host: str
    port: int | None
    username: str | None = None
    password: str | None = None

    @property
    def netloc_host(self) -> str:
        """The host as written in a URL (an IPv6 literal in brackets)."""
        return f"[{self.host}]" if ":" in self.host else self.host

    def shown(self) -> str:
        """For messages and evidence: credentials masked, never shown."""
        cred = "***:***@" if self.username is not None else ""
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.scheme}://{cred}{self.netloc_host}{port}"

    def canonical(self) -> str:
        """The same proxy with its credentials percent-encoded: every other URL parser
        (urllib's ProxyHandler among them) then reads the host we read."""
        cred = ""
        if self.username is not None:
            cred = quote(self.username, safe="")
            if self.password is not None:
                cred += ":" + quote(self.password, safe="")
            cred += "@"
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.scheme}://{cred}{self.netloc_host}{port}"


def host_problem(host: str) -> str | None:
    """Why ``host`` cannot be connected to (None: it can). Never raises."""
    if not host:
        return "it names no host"
    if any("\udc80" <= c <= "\udcff" for c in host):  # argv/environ bytes that were no UTF-8
        return "its host contains bytes that are not UTF-8 text"
    if not host.isprintable() or any(c.isspace() for c in host):
        return "its host contains spaces or control characters"
    if ":" in host:  # an IPv6 literal (from brackets): the socket layer judges it
        return None
    if len(host) > MAX_HOST:
        return f"its host name is longer than {MAX_HOST} characters"
    try:
        encoded = host.encode("idna") if not host.isascii() else host.encode("ascii")
    except UnicodeError:
        return "its host name is not a valid (IDNA) name"
    labels = encoded.rstrip(b".").split(b".")
    if any(len(label) > MAX_LABEL for label in labels):
        return f"its host name has a label longer than {MAX_LABEL} characters"
    if any(not label for label in labels):
        return "its host name has an empty label"
    return None


def parse_proxy_url(value: str, default_scheme: str = "http") -> ProxyURL:
    """``[scheme://][user[:password]@]host[:port][/...]`` -> :class:`ProxyURL`.

    Raises :class:`ProxyURLError` saying what is wrong (never quoting the value: it may hold a
    password). A bare ``host:port`` (registry, scutil, gsettings) takes ``default_scheme``.
    """
    value = value.strip()
    if not value.isprintable() or any(c.isspace() for c in value):
        raise ProxyURLError("it contains spaces or control characters")
    scheme, sep, rest = value.partition("://")
    if not sep:
        scheme, rest = default_scheme, value
    if not _SCHEME.fullmatch(scheme):
        raise ProxyURLError("it is not a URL (no scheme://)")
    username = password = None
    if "@" in rest:  # the LAST @: a raw @ / # ? inside the password stays in the password
        userinfo, _, rest = rest.rpartition("@")
        user, colon, pw = userinfo.partition(":")
        username, password = unquote(user), (unquote(pw) if colon else None)
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    hostport = rest[:cut]
    port_text = ""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise ProxyURLError("its IPv6 address lacks the closing ]")
        host, after = hostport[1:end], hostport[end + 1:]
        if after and not after.startswith(":"):
            raise ProxyURLError("it is not HOST:PORT")
        port_text = after[1:]
    else:
        host, colon, port_text = hostport.rpartition(":")
        if not colon:
            host, port_text = hostport, ""
        if ":" in host:
            raise ProxyURLError("it is not HOST:PORT (an IPv6 address needs [brackets])")
    port = None
    if port_text:
        if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
            raise ProxyURLError("its port is not a number from 1 to 65535")
        port = int(port_text)
    problem = host_problem(host)
    if problem:
        raise ProxyURLError(problem)
    return ProxyURL(scheme.lower(), host.lower(), port, username, password)
