"""Turns --controller/--room into checked addresses and the role this host plays."""

from __future__ import annotations

import ipaddress
import re
import socket

from roomprobe.core.errors import UsageError
from roomprobe.core.probe import Targets
from roomprobe.core.threads import start_guarded

RESOLVE_TIMEOUT_S = 3.0

# An IPv6 zone (the part after %): an interface name as the OSes make them (Linux caps a name
# at 15 characters, IFNAMSIZ - 1; macOS en0/utun3; Windows uses the numeric index) or a number.
_SCOPE = re.compile(r"[A-Za-z0-9_.-]{1,15}")
SCOPE_RULE = "an interface name (letters, digits, _ . -, at most 15) or its number, e.g. %eth0 or %12"


class BadScope(ValueError):
    """An IP literal whose IPv6 scope is not an interface name or index (the message says so)."""


def ip_literal(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """``text`` as an IP address, refusing a scope that is not an interface name or index.

    Why: Python's ipaddress takes anything after ``%`` as the scope (``fe80::1%;id|x``), and the
    address is then echoed in replies, reports and logs, and handed to other tools. Every place
    that takes an address from a user or a caller (check's targets, the agent, sweep, serve's
    --bind) goes through here. Raises ValueError (BadScope for the scope: its message is one
    line that does not repeat the scope)."""
    ip = ipaddress.ip_address(text)
    scope = getattr(ip, "scope_id", None)
    if scope is not None and not _SCOPE.fullmatch(scope):
        raise BadScope(f"the IPv6 scope after % must be {SCOPE_RULE}")
    return ip


def parse_address(text: str, flag: str) -> str:
    """An IP literal as is; a host name resolved once (bounded); anything else is a usage error."""
    text = text.strip().strip("[]")
    try:
        return str(ip_literal(text))
    except BadScope as exc:
        raise UsageError(f"{flag}: {exc}") from None
    except ValueError:
        pass
    looks_numeric = bool(re.fullmatch(r"[0-9.]+", text)) or ":" in text
    if looks_numeric or not text or any(c.isspace() or not c.isprintable() for c in text) or not all(
            part and len(part) < 64 for part in text.rstrip(".").split(".")):
        raise UsageError(f"{flag} {text!r} is not an IP address or host name; "
                         f"give it like {flag} 10.0.0.5")
    try:
        text.encode("idna")  # a label too long once encoded, or characters IDNA forbids
    except UnicodeError:
        raise UsageError(f"{flag} {text!r} is not a valid host name; give the device's IP "
                         f"address, e.g. {flag} 10.0.0.5") from None

    def lookup() -> list[str]:
        infos = socket.getaddrinfo(text, None, type=socket.SOCK_STREAM)
        return [str(info[4][0]) for info in infos]

    t = start_guarded(lookup, "resolve-target")
    t.join(RESOLVE_TIMEOUT_S)
    result: list[str] = [] if t.is_alive() or t.error is not None else (t.result or [])
    if isinstance(t.error, ValueError):  # UnicodeError, an embedded NUL: not a name at all
        raise UsageError(f"{flag} {text!r} is not a valid host name; give the device's IP "
                         f"address, e.g. {flag} 10.0.0.5")
    if not result:
        raise UsageError(f"{flag} {text!r} does not resolve to an address; "
                         "give the device's IP address (shown in its network settings)")
    v4 = [r for r in result if ":" not in r]
    return (v4 or result)[0]


def resolve(controller: str | None, room: str | None, port: int,
            local_addresses: set[str]) -> Targets:
    """Work out the role: on the room (controller given, or room is us), or next to the controller."""
    if not 1 <= port <= 65535:
        raise UsageError(f"--port {port} is out of range; give a TCP port from 1 to 65535")
    c = parse_address(controller, "--controller") if controller else None
    r = parse_address(room, "--room") if room else None
    if r is not None and (r in local_addresses or ipaddress.ip_address(r).is_loopback):
        role = "room"
    elif r is not None:
        role = "controller-side"
    elif c is not None:
        role = "room"
    else:
        role = "unknown"
    return Targets(controller=c, room=r, role=role, port=port)
