"""The child process that runs a PAC script: roomprobe started with ``--pac-worker`` (pac.py,
through core.selfexec: isolated from the working directory).

Why a child: the JavaScript engine (dukpy) holds the GIL while it runs, so a PAC file that loops
(``while(true){}``) cannot be stopped by any thread-based deadline and would hang the CLI and
every scheduled check. A child process can be killed; it also gets hard memory and CPU limits
(POSIX ``setrlimit``) before it reads the script, so a hostile WPAD file costs at most the
caller's deadline and a bounded amount of memory.

Protocol: one JSON object on stdin ``{"script": str, "jobs": [{"url", "host", "my_ip"}],
"limits": {"as_bytes", "cpu_s"}}``; one JSON object on stdout ``{"ok": true, "results": {url:
value}}`` or ``{"ok": false, "error": str}``. ``my_ip`` is what ``myIpAddress()`` returns for that
job: the caller computes the address of the interface that routes to the target (pypac's own
resolves the host name, which gives 127.0.x.1 on many systems and picks the wrong PAC branch).
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any

MAX_VALUE_CHARS = 4096  # a FindProxyForURL answer longer than this is cut (a list of proxies)


def _limit(as_bytes: int, cpu_s: int) -> None:
    if sys.platform == "win32":  # no rlimits: the parent's kill on timeout is the only bound
        return
    import resource

    for kind, value in ((resource.RLIMIT_AS, as_bytes), (resource.RLIMIT_CPU, cpu_s)):
        if value > 0:
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(kind, (value, value))


def evaluate(script: str, jobs: list[dict[str, str]]) -> dict[str, str]:
    """FindProxyForURL for every job, with ``myIpAddress()`` answering the job's own address."""
    import pypac.parser as parser
    from pypac.parser_functions import function_injections
    from pypac.parser_functions_ex import function_injections as ex_injections

    current = {"ip": "127.0.0.1"}
    function_injections["myIpAddress"] = lambda: current["ip"]
    ex_injections["myIpAddressEx"] = lambda: current["ip"]
    pac = parser.PACFile(script)
    out: dict[str, str] = {}
    for job in jobs:
        current["ip"] = job.get("my_ip") or "127.0.0.1"
        value = pac.find_proxy_for_url(job["url"], job["host"])
        out[job["url"]] = str(value if value is not None else "")[:MAX_VALUE_CHARS]
    return out


def main() -> int:
    try:
        request: dict[str, Any] = json.loads(sys.stdin.read())
        limits = request.get("limits") or {}
        _limit(int(limits.get("as_bytes", 0)), int(limits.get("cpu_s", 0)))
        reply: dict[str, Any] = {"ok": True, "results": evaluate(request["script"], request["jobs"])}
    except MemoryError:
        reply = {"ok": False, "error": "the PAC script ran out of its memory limit"}
    except Exception as exc:  # every failure is an answer, never a traceback on the console
        reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
    sys.stdout.write(json.dumps(reply))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
