"""The room's own check, on request: ``roomprobe serve --agent`` and ``roomprobe sweep --deep``.

Why: a sweep host sees a room from outside (9090, ARP). What only the room can see (its
interfaces, its subnet, whether Zoom Rooms listens, its own path to the controller) needs a
check ON the room. ``serve --agent`` lets a sweep ask for one, without giving the caller a shell:

- opt-in: without ``--agent`` the endpoint does not exist (404, like any unknown path);
- the session token is checked first (serve's ``_allowed``), before anything is read or run;
- the caller sends at most ``MAX_BODY`` bytes of JSON with three keys (``controller``: an IP
  address, ``only``: probe ids from the registry minus the link-loading ones, ``timeout``:
  1-30 s); anything else is a one-line 400. The agent chooses every other argument itself
  (JSON on stdout, no history, no bandwidth test, an empty config file, a cleaned environment),
  so the caller can set no path, URL, option or command (``only: ["path"]`` with a
  ``controller`` is ``roomprobe path --back``: the agent traces back to that address, with
  the path options it chooses itself);
- one check at a time (503 busy otherwise), run as a child process killed at its deadline.

The client half (``ask``) is what ``sweep --deep`` calls for each room's ``peer``: it names
clearly why no agent answered (refused, timeout, wrong token, not an agent, busy, ...).
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from roomprobe.core.selfexec import self_argv
from roomprobe.core.targets import BadScope, ip_literal
from roomprobe.peer.link import split_peer
from roomprobe.peer.port import PEER_PORT as DEFAULT_PORT  # serve's --speed-port default
from roomprobe.peer.speed import TOKEN_HEADER

CHECK_PATH = "/__check"
SCHEMA = "roomprobe/agent/v1"
MAX_BODY = 4096
MAX_REPORT = 8 * 1024 * 1024
MAX_ONLY = 32
MAX_TIMEOUT = 30.0
DEFAULT_TIMEOUT = 10.0
GRACE_S = 20.0  # the check's process start, its slow probes and its report, past --timeout
KEYS = ("controller", "only", "timeout")
# Probes the agent never runs for a caller: they load the link (bandwidth) or need a peer of
# their own (quality); a deep sweep over a thousand rooms must not saturate a thousand links.
DENIED = frozenset({"bandwidth", "quality"})

Runner = Callable[[list[str], float], tuple[int, bytes, bytes]]


class BadRequest(ValueError):
    """A request the agent refuses; the message is one line for the 400."""


@dataclass(frozen=True)
class CheckRequest:
    """What a caller may choose: nothing else reaches the check's command line."""

    controller: str | None = None
    only: tuple[str, ...] = ()
    timeout: float = DEFAULT_TIMEOUT

    def to_dict(self) -> dict[str, Any]:
        return {"controller": self.controller, "only": list(self.only), "timeout": self.timeout}

    def to_json(self) -> bytes:
        """The body ``ask`` sends (keys left out when unset: the agent's defaults apply)."""
        d = self.to_dict()
        return json.dumps({k: v for k, v in d.items() if v not in (None, [])}).encode()


def _shown(value: Any) -> str:
    text = repr(value)
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_request(body: bytes, probe_ids: Collection[str]) -> CheckRequest:
    """Validate a ``POST /__check`` body; raises BadRequest with one line saying what to fix."""
    if len(body) > MAX_BODY:
        raise BadRequest(f"body larger than {MAX_BODY} bytes")
    if not body.strip():
        return CheckRequest()
    try:
        raw = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest("body is not UTF-8 JSON") from None
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"body is not JSON ({str(exc).splitlines()[0][:80]})") from None
    if not isinstance(raw, dict):
        raise BadRequest('body must be a JSON object like {"controller": "10.0.0.5"}')
    unknown = sorted(k for k in raw if k not in KEYS)
    if unknown:
        raise BadRequest(f"unknown key(s) {', '.join(_shown(k) for k in unknown[:5])}; "
                         f"allowed: {', '.join(KEYS)}")
    controller = raw.get("controller")
    if controller is not None:
        if not isinstance(controller, str):
            raise BadRequest("controller must be an IP address as text")
        try:
            ip = ip_literal(controller.strip())
        except BadScope as exc:
            raise BadRequest(f"controller: {exc}") from None
        except ValueError:
            raise BadRequest(f"controller {_shown(controller)} is not an IP address") from None
        if ip.is_unspecified or ip.is_multicast:
            raise BadRequest(f"controller {ip} cannot be a controller's address")
        controller = str(ip)
    only = raw.get("only", [])
    if not isinstance(only, list) or not all(isinstance(p, str) for p in only):
        raise BadRequest('only must be a list of probe ids, e.g. ["interfaces", "subnet"]')
    if len(only) > MAX_ONLY:
        raise BadRequest(f"only names more than {MAX_ONLY} probes")
    allowed = set(probe_ids) - DENIED
    for p in only:
        if p in DENIED:
            raise BadRequest(f"probe {_shown(p)} is not run by the agent (it loads the link or "
                             "needs a peer); run 'roomprobe check' for it")
        if p not in allowed:
            raise BadRequest(f"unknown probe id {_shown(p)}; known: {', '.join(sorted(allowed))}")
    timeout = raw.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or not 1 <= timeout <= MAX_TIMEOUT:
        raise BadRequest(f"timeout must be a number of seconds from 1 to {MAX_TIMEOUT:g}")
    return CheckRequest(controller, tuple(dict.fromkeys(only)), float(timeout))


def check_argv(req: CheckRequest, config_path: str) -> list[str]:
    """The child's command line: the agent's fixed arguments plus the validated request.

    Started through core.selfexec, isolated from serve's working directory: a ``roomprobe/``
    folder there is never imported (it was, with ``python -m roomprobe``)."""
    argv = [*self_argv(), "check", "--format", "json", "--no-history", "--no-bandwidth", "--no-color",
            "--config", config_path, "--timeout", f"{req.timeout:g}"]
    if req.controller:
        argv += ["--controller", req.controller]
    if req.only:
        argv += ["--only", ",".join(req.only)]
    if "path" in req.only and req.controller:
        # The caller asks for the path back towards it ('roomprobe path --back'): trace to the
        # caller's address only (the room's own path to Zoom is not what it asked for).
        # Ten rounds (check's four are too few to place loss), within the caller's timeout.
        argv += ["--set", "path.targets=", "--set", "path.include_peer=true", "--set", "path.rounds=10",
                 "--set", f"path.timeout={req.timeout:g}"]
    return argv


def child_env() -> dict[str, str]:
    """The agent's environment without roomprobe's own variables (tokens, secrets, config,
    history path): the child's settings come from its command line only."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("ROOMPROBE_")}
    env["NO_COLOR"] = "1"
    return env


def run_child(argv: list[str], wall_s: float) -> tuple[int, bytes, bytes]:
    """Run the check; killed at ``wall_s`` (subprocess.TimeoutExpired propagates)."""
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=wall_s,
                          env=child_env(), check=False)
    return proc.returncode, proc.stdout, proc.stderr


class Agent:
    """The ``/__check`` endpoint's logic, independent of HTTP (serve's Handler calls ``handle``)."""

    def __init__(self, probe_ids: Collection[str], runner: Runner = run_child) -> None:
        self.probe_ids = frozenset(probe_ids)
        self.runner = runner
        self.busy = threading.Lock()
        self.checks = 0

    def handle(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) for one request; at most one check runs at a time."""
        try:
            req = parse_request(body, self.probe_ids)
        except BadRequest as exc:
            return 400, {"error": str(exc)}
        if not self.busy.acquire(blocking=False):
            return 503, {"error": "busy: a check is already running on this room; try again "
                                  "in a minute"}
        try:
            return self._run(req)
        finally:
            self.busy.release()

    def _run(self, req: CheckRequest) -> tuple[int, dict[str, Any]]:
        wall = req.timeout + GRACE_S
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="roomprobe-agent-") as tmp:
            config = os.path.join(tmp, "empty.toml")
            with open(config, "w", encoding="utf-8"):
                pass  # an empty config: the room's own config file does not apply
            try:
                rc, out, err = self.runner(check_argv(req, config), wall)
            except subprocess.TimeoutExpired:
                return 504, {"error": f"the room's check took longer than {wall:g} s and was "
                                      "stopped"}
            except OSError as exc:
                return 502, {"error": f"could not start the room's check: {exc.strerror or exc}"}
        self.checks += 1
        report = _report_of(out)
        if report is None:
            line = next((x for x in err.decode("utf-8", "replace").splitlines() if x.strip()), "")
            return 502, {"error": f"the room's check gave no report (exit {rc}): {line[:200]}"}
        return 200, {"schema": SCHEMA, "exit_code": rc, "request": req.to_dict(),
                     "duration_s": round(time.monotonic() - t0, 3), "report": report}


def _report_of(out: bytes) -> dict[str, Any] | None:
    if len(out) > MAX_REPORT:
        return None
    try:
        rep = json.loads(out.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    if isinstance(rep, dict) and rep.get("schema") == "roomprobe/report/v1":
        return rep
    return None


# ------------------------------------------------------------------ the client (sweep --deep)


def agent_address(peer: str) -> tuple[str, int]:
    """``ADDR``, ``ADDR:PORT`` or ``[V6]:PORT`` (an IP address) -> (address, port).

    Raises ValueError with one line saying what is wrong."""
    host, port = split_peer(peer, DEFAULT_PORT)
    try:
        ip = ip_literal(host)
    except BadScope as exc:
        raise ValueError(f"peer: {exc}") from None
    except ValueError:
        raise ValueError(f"peer {_shown(peer)}: give the agent's IP address (ADDR or ADDR:PORT)"
                         ) from None
    return str(ip), port


def _no(reason: str, detail: str, agent: str, t0: float) -> dict[str, Any]:
    return {"answered": False, "reason": reason, "detail": detail, "agent": agent,
            "duration_s": round(time.monotonic() - t0, 3)}


def ask(address: str, port: int, token: str, request: CheckRequest, deadline_s: float,
        pin: str | None = None, tls_unpinned: bool = False) -> dict[str, Any]:
    """Ask one room's agent for its check, within ``deadline_s`` seconds in all; over TLS when
    ``pin`` (the agent certificate's SHA-256) is given, or ``tls_unpinned`` by the user's choice.

    Returns ``{"answered": True, "agent", "exit_code", "report", "duration_s"}`` or
    ``{"answered": False, "reason", "detail", "agent", "duration_s"}`` where reason is one of
    refused, timeout, unreachable, wrong-token, not-an-agent, busy, rejected, agent-error,
    wrong-certificate (the pin did not match: nothing was sent), tls-failed."""
    import ssl

    from roomprobe.peer.tls import PinMismatch, PinnedHTTPSConnection

    agent = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    t0 = time.monotonic()
    end = t0 + deadline_s
    body = request.to_json()
    conn: http.client.HTTPConnection = (
        PinnedHTTPSConnection(address, port, timeout=deadline_s, pin=pin) if pin or tls_unpinned
        else http.client.HTTPConnection(address, port, timeout=deadline_s))
    try:
        try:
            conn.request("POST", CHECK_PATH, body=body,
                         headers={TOKEN_HEADER: token, "Content-Type": "application/json"})
            if conn.sock is not None:
                conn.sock.settimeout(max(0.1, end - time.monotonic()))
            resp = conn.getresponse()
            data = resp.read(MAX_REPORT + 1)
        except PinMismatch as exc:
            return _no("wrong-certificate", f"{agent}: {exc}", agent, t0)
        except ssl.SSLError as exc:
            return _no("tls-failed", f"{agent} did not complete a TLS handshake ({exc.reason or exc}): "
                                     "is its serve started with --tls?", agent, t0)
        except ConnectionRefusedError:
            return _no("refused", f"nothing listens on {agent} (no 'roomprobe serve --agent' "
                                  "running there)", agent, t0)
        except TimeoutError:
            return _no("timeout", f"no answer from {agent} within {deadline_s:g} s", agent, t0)
        except (http.client.HTTPException, ConnectionError) as exc:
            return _no("not-an-agent", f"{agent} does not speak HTTP like an agent "
                                       f"({type(exc).__name__})", agent, t0)
        except OSError as exc:
            return _no("unreachable", f"{agent}: {exc.strerror or exc}", agent, t0)
    finally:
        conn.close()
    try:
        payload = json.loads(data.decode("utf-8")) if len(data) <= MAX_REPORT else None
    except (ValueError, RecursionError):
        payload = None
    error = str(payload.get("error", ""))[:200] if isinstance(payload, dict) else ""
    if resp.status == 403:
        return _no("wrong-token", f"{agent} refused the token (give the token its 'roomprobe "
                                  "serve' printed with --peer-token)", agent, t0)
    if resp.status == 404:
        return _no("not-an-agent", f"{agent} has no {CHECK_PATH} endpoint: start its serve with "
                                   "--agent", agent, t0)
    if resp.status == 503:
        return _no("busy", f"{agent}: {error or 'busy'}", agent, t0)
    if resp.status == 400:
        return _no("rejected", f"{agent} refused the request: {error}", agent, t0)
    if resp.status in (502, 504):
        return _no("agent-error", f"{agent}: {error}", agent, t0)
    if resp.status != 200 or not isinstance(payload, dict) or payload.get("schema") != SCHEMA \
            or not isinstance(payload.get("report"), dict):
        return _no("not-an-agent", f"{agent} answered HTTP {resp.status} without an agent's "
                                   "report", agent, t0)
    return {"answered": True, "agent": agent, "exit_code": payload.get("exit_code"),
            "report": payload["report"], "duration_s": round(time.monotonic() - t0, 3)}
