"""One guard for every background thread roomprobe starts.

Why: an exception in a ``threading.Thread`` is printed by Python as a traceback on stderr and
then forgotten, so bad input (a 60-character IDNA label in a host name, a control character in
``ALL_PROXY``) showed the user a traceback while the main thread carried on with no result.
``start_guarded`` runs the target in a daemon thread (a stuck resolver or socket never keeps
the process alive past its deadline), keeps the exception on the thread object for the caller
to turn into a one-line usage error or its component's error, and prints nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


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
