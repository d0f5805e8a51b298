"""The probe contract: what every probe declares, receives and returns.

A probe is one module exposing ``PROBE = Probe(...)``. It states what it checks (id, title),
what it needs (a peer, raw sockets), its own options as a frozen ``Options`` dataclass whose
defaults are Zoom's real endpoints and thresholds (so the config file and ``--set`` can override
every one, see ``roomprobe.core.settings``), and a ``run(ctx) -> Result`` function. The probe
reads ``ctx.options.<name>``: typed, and a misspelt name fails in the tests, not in the field.

The runner, not the probe, owns timing: it starts every probe in its own thread, applies the
per-probe timeout and the global deadline, and turns a crash or an overrun into a result with
status ``error``. A probe only has to respect ``ctx.remaining()`` in its own socket timeouts so
it can report what it saw before the runner gives up on it.

The verdict rule (docs/probes.md states, per probe, what PASS proves):

* A probe passes only on positive evidence it measured: an answer, an accepted connection, an
  address read from the OS. It builds that result with ``Result.passed(..., proof={...})``,
  which refuses an empty proof and stores it under ``evidence["proof"]``.
* Anything it could not prove is a finding (``warn``/``fail``) when it measured a fault, or the
  status ``error`` (built with ``Result.unmeasured``) with a reason when it could not measure at
  all: a deadline that cut a wait short, a local error, nothing to ask.
* Never PASS by the absence of findings: "no finding" after measuring nothing is ``error``.
* Silence is a measurement: a target that stays silent for the probe's own full wait is a
  measured "no answer" (filtered, timeout, blocked) with the time waited as evidence and the
  probe's usual severity. Each probe plans its waits inside the time left
  (``Context.plan``: one deadline, as tailscale's netcheck does), so even a short check waits
  out a planned wait and concludes. Only a wait the deadline left shorter than
  ``SILENCE_FLOOR_S`` (or than the probe's own timeout, when that is shorter) proves nothing:
  ``silence_measured`` says which, and that one is ``error`` (``unknown``).

``error`` is the one status for "no verdict": the runner gives it to crashes, overruns and
Ctrl-C, a probe gives it to what it could not measure. Any ``error`` makes the run incomplete:
the report status is ``unknown`` (exit 3) unless a measured failure elsewhere makes it ``fail``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from roomprobe.core.settings import option_defaults, options_class

__all__ = [
    "PLAN_SHARE",
    "SILENCE_FLOOR_S",
    "silence_measured",
    "Status",
    "Severity",
    "Finding",
    "Result",
    "Targets",
    "Peer",
    "HistoryReader",
    "Context",
    "Probe",
]


# A probe's wait for an answer is at most this share of the time it has left, so that after a
# silent target it still has the rest to conclude and hand in its verdict before the deadline.
PLAN_SHARE = 0.8
# The shortest silence that is a measurement: one second is the first retransmit of a TCP SYN
# and the Windows resolver's first per-server timeout, so an answer that exists on a working
# network has had its chance. A shorter wait (a --timeout under about 1.3 s) proves nothing.
SILENCE_FLOOR_S = 1.0


def silence_measured(waited: float, own_timeout: float) -> bool:
    """True when silence for ``waited`` seconds is a measured "no answer": the wait reached the
    probe's own timeout or, planned inside a short deadline, at least ``SILENCE_FLOOR_S``.
    False means the deadline cut the wait short: no verdict (``error``, run ``unknown``)."""
    return waited >= min(own_timeout, SILENCE_FLOOR_S) - 0.01


class Status(str, Enum):
    """Outcome of one probe. ``error`` means no verdict: the probe could not finish or measure."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"


class Severity(str, Enum):
    INFO = "info"
    WARN = "warn"
    FAIL = "fail"


@dataclass
class Finding:
    """One thing a probe concluded, with a stable id that diagnosis rules and scripts key on.

    ``hint`` is the next step for the person reading it; ``evidence`` is the measurement behind it.
    """

    id: str
    severity: Severity
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    hint: str | None = None
    probe: str = ""  # filled in by the runner

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "severity": self.severity.value,
            "probe": self.probe,
            "message": self.message,
            "evidence": self.evidence,
        }
        if self.hint:
            out["hint"] = self.hint
        return out


@dataclass
class Result:
    """What a probe returns. ``reason`` is a stable, machine-readable code (kebab-case)."""

    status: Status
    reason: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    @classmethod
    def passed(cls, reason: str, summary: str, evidence: dict[str, Any], proof: dict[str, Any],
               findings: list[Finding] | None = None) -> Result:
        """A PASS, which must carry the measurement that proves it (``evidence["proof"]``).

        Raises ValueError on an empty proof or a warn/fail finding: a probe bug the tests catch,
        never a PASS made of nothing. Info findings (e.g. a step skipped) may ride along.
        """
        if not proof or not any(v not in (None, "", [], {}, ()) for v in proof.values()):
            raise ValueError(f"PASS {reason!r} without proof: a probe passes only on what it measured")
        bad = [f.id for f in findings or [] if f.severity != Severity.INFO]
        if bad:
            raise ValueError(f"PASS {reason!r} with warn/fail findings {bad}")
        return cls(Status.PASS, reason, summary, {**evidence, "proof": proof}, list(findings or []))

    @classmethod
    def unmeasured(cls, reason: str, summary: str, evidence: dict[str, Any],
                   findings: list[Finding] | None = None) -> Result:
        """No verdict: the probe could not measure (deadline, local error, nothing to ask).

        Status ``error``; ``summary`` says what was not measured and why, so the reader knows
        what to fix (a longer --timeout, privileges, a setting) before running again.
        """
        return cls(Status.ERROR, reason, summary, evidence, list(findings or []))


@dataclass(frozen=True)
class Targets:
    """Who we are testing against.

    ``role`` is ``room`` when roomprobe runs on the room PC (``--controller`` given, or ``--room``
    is one of this host's addresses), ``controller-side`` when it runs next to the controller
    (``--room`` is another host), ``unknown`` otherwise.
    """

    controller: str | None = None
    room: str | None = None
    role: str = "unknown"
    port: int = 9090

    @property
    def peer(self) -> str | None:
        """The other end of the controller<->room path, seen from here."""
        if self.role == "room":
            return self.controller
        if self.role == "controller-side":
            return self.room
        return None


@dataclass(frozen=True)
class Peer:
    """The ``roomprobe serve`` peer of ``--peer``, parsed once by the command (so a probe never
    splits the text again), with how to speak to it."""

    host: str
    port: int | None  # None: --peer named no port, so the probe's own ``peer_port`` option applies
    token: str = ""  # --peer-token ("" when none: the peer then refuses, and says so)
    fingerprint: str | None = None  # --peer-fingerprint: TLS, pinned to this certificate SHA-256
    tls_unpinned: bool = False  # --peer-tls-unpinned: TLS, certificate not checked

    def port_or(self, default: int) -> int:
        return self.port if self.port is not None else int(default)

    @property
    def tls(self) -> bool:
        """serve --tls: the token travels only inside TLS."""
        return bool(self.fingerprint or self.tls_unpinned)


class HistoryReader(Protocol):
    """Earlier runs, for a probe that compares with them (wifi: roaming between access points).
    The command hands one in (fleet.history.Reader); probes never open the history themselves."""

    def recent_reports(self, limit: int) -> list[dict[str, Any]] | None:
        """The newest ``limit`` stored reports, newest first; None when there is no history."""
        ...


@dataclass
class Context:
    """Everything a probe gets: its own typed Options (defaults <- file <- --set) and the few
    facts of this run it may need. Nothing else of the check's settings reaches a probe."""

    targets: Targets
    options: Any  # the probe's own frozen Options dataclass
    deadline: float  # time.monotonic() value after which the runner stops waiting
    privileged: bool
    user_code: str | None = None  # the error code the user saw (--code), if any
    peer: Peer | None = None  # --peer, parsed (bandwidth, quality)
    history: HistoryReader | None = None  # earlier runs (wifi)
    progress: bool = False  # a live progress line on stderr is welcome (text output on a terminal)

    def remaining(self) -> float:
        """Seconds left before this probe's deadline (never negative)."""
        return max(0.0, self.deadline - time.monotonic())

    def plan(self, cap: float) -> float:
        """The wait for one step that may meet silence: the probe's own timeout ``cap``, but at
        most ``PLAN_SHARE`` of the time left, so a silent target leaves time to conclude. Judge
        a silence after it with ``silence_measured(waited, cap)``."""
        return max(0.05, min(cap, self.remaining() * PLAN_SHARE))

    def budget(self, cap: float, floor: float = 0.05) -> float:
        """A timeout for one blocking step: at most ``cap``, never past the deadline."""
        return max(floor, min(cap, self.remaining() - 0.05))


Need = str  # "peer" | "controller" | "room" | "raw-sockets"


@dataclass(frozen=True)
class NoOptions:
    """For probes that take no options."""


@dataclass(frozen=True)
class Probe:
    """A probe's declaration. ``options`` is the frozen dataclass of every option it takes.

    A third-party probe may still pass a plain ``defaults`` mapping; it is turned into an
    Options dataclass here, so the settings layer and the probe see one contract.
    """

    id: str
    title: str
    run: Callable[[Context], Result]
    needs: tuple[Need, ...] = ()
    timeout_s: float = 3.0
    options: type = NoOptions
    description: str = ""
    # Long-running probes (bandwidth) get their own budget instead of the global deadline.
    long_running: bool = False
    # Off unless named in --only or enabled in config (e.g. probes that cost traffic).
    default_enabled: bool = True
    # Checks this probe's typed options before anything runs; raises UsageError (exit 3).
    validate: Callable[[Any], None] | None = None
    defaults: Mapping[str, Any] | None = None  # legacy plugins only; built-ins declare ``options``

    def __post_init__(self) -> None:
        if self.defaults is not None and self.options is NoOptions:
            object.__setattr__(self, "options", options_class(self.id, self.defaults))

    @property
    def option_defaults(self) -> dict[str, Any]:
        """Every option and its default, in declaration order (``roomprobe probes``)."""
        return option_defaults(self.options)


def described(module_doc: str | None) -> str:
    """A built-in probe's description (``roomprobe probes``): the second paragraph of its module
    docstring, the one after the question the probe answers, joined onto one line.

    Why there: the docstring is where a reader of the probe looks first, so the summary the user
    sees and the one the code opens with cannot drift apart. Empty when Python runs with -OO
    (docstrings stripped)."""
    paragraphs = [p for p in (module_doc or "").split("\n\n") if p.strip()]
    return " ".join(line.strip() for line in paragraphs[1].splitlines()) if len(paragraphs) > 1 else ""
