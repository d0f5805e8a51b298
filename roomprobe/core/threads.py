"""One guard for every background thread roomprobe starts.

Why: an exception in a ``threading.Thread`` is printed by Python as a traceback on stderr and
then forgotten, so bad input (a 60-character IDNA label in a host name, a control character in
``ALL_PROXY``) showed the user a traceback while the main thread carried on with no result.
``start_guarded`` runs the target in a daemon thread (a stuck resolver or socket never keeps
the process alive past its deadline), keeps the exception on the thread object for the caller
to turn into a one-line usage error or its component's error, and prints nothing.

``Daemons`` and ``run_all`` are the one "run these in parallel, up to a deadline" helper the
probes share. Daemon threads, not a ThreadPoolExecutor: its workers are joined at interpreter
exit, so one getaddrinfo stuck on a dead DNS server (glibc retries for 10 s and more) would
hold the CLI open long after the probe gave up on it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Mapping
from concurrent import futures
from dataclasses import dataclass
from typing import Any, TypeVar

K = TypeVar("K", bound=Hashable)


class GuardedThread(threading.Thread):
    """A daemon thread whose exception is stored in ``error`` instead of printed."""

    def __init__(self, target: Callable[..., Any], name: str, args: tuple[Any, ...] = (),
                 kwargs: dict[str, Any] | None = None) -> None:
        super().__init__(name=name, daemon=True)
        self._fn = target
        self._fn_args = args
        self._fn_kwargs = kwargs or {}
        self.error: BaseException | None = None
        self.result: Any = None

    def run(self) -> None:
        try:
            self.result = self._fn(*self._fn_args, **self._fn_kwargs)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:  # noqa: BLE001 - the point: nothing escapes as a traceback
            self.error = exc
        finally:
            del self._fn, self._fn_args, self._fn_kwargs  # no reference cycles through the target


def start_guarded(target: Callable[..., Any], name: str, *args: Any, **kwargs: Any) -> GuardedThread:
    """Start ``target(*args, **kwargs)`` in a guarded daemon thread and return the thread."""
    t = GuardedThread(target, name, args, kwargs)
    t.start()
    return t


class Daemons:
    """``submit(fn, *args) -> Future`` like an executor's, each call in its own guarded daemon
    thread: start work now, wait for it later (``fut.result(timeout)``), abandon it if stuck."""

    def __init__(self, name: str = "task") -> None:
        self.name = name

    def submit(self, fn: Callable[..., Any], *args: Any) -> futures.Future[Any]:
        fut: futures.Future[Any] = futures.Future()

        def work() -> None:
            try:
                fut.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
                fut.set_exception(exc)

        start_guarded(work, self.name)
        return fut


@dataclass(frozen=True)
class Outcome:
    """What one task of ``run_all`` came to: ``done`` with its ``value`` or the ``error`` it
    raised; not ``done`` when it was still running at the deadline (its thread runs on, unheard)."""

    done: bool
    value: Any = None
    error: BaseException | None = None


def run_all(tasks: Mapping[K, Callable[[], Any]], deadline: float, name: str = "task") -> dict[K, Outcome]:
    """Run every task at once (``Daemons``) and wait for them until ``deadline``, a
    ``time.monotonic()`` value. Every key gets an Outcome: one task's exception is its own
    Outcome and never costs the others their result."""
    pool = Daemons(name)
    started = {key: pool.submit(fn) for key, fn in tasks.items()}
    futures.wait(started.values(), timeout=max(0.0, deadline - time.monotonic()))
    return {key: _outcome(fut) for key, fut in started.items()}


def _outcome(fut: futures.Future[Any]) -> Outcome:
    if not fut.done():  # asked once: a task finishing now is still past the deadline
        return Outcome(False)
    error = fut.exception()
    return Outcome(True, error=error) if error is not None else Outcome(True, fut.result())
