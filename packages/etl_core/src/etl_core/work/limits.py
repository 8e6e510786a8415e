"""What bounds the unit running in this thread: the executor's stop event and its deadline.

An executor runs each unit inside :func:`unit_limits`; code deep inside the unit that
waits (for a busy lease, before a retry) reads :func:`unit_stop` and
:func:`unit_deadline` to stop waiting at once when the run is interrupted (Ctrl-C,
SIGTERM) and to give up before the unit's time limit (Celery's
``task_soft_time_limit``) instead of being killed by it mid-wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["remaining_seconds", "unit_deadline", "unit_limits", "unit_stop"]

_STOP: ContextVar[threading.Event | None] = ContextVar("etl_unit_stop", default=None)
_DEADLINE: ContextVar[float | None] = ContextVar("etl_unit_deadline", default=None)


@contextmanager
def unit_limits(
    *, stop: threading.Event | None = None, deadline: float | None = None
) -> Iterator[None]:
    """Run the block as a unit that stops waiting when ``stop`` is set and gives up on any
    wait by ``deadline`` (a :func:`time.monotonic` instant). Nested limits keep the
    earlier deadline, and the outer stop event when no new one is given."""
    outer = _DEADLINE.get()
    if outer is not None and (deadline is None or outer < deadline):
        deadline = outer
    stop_token = _STOP.set(stop if stop is not None else _STOP.get())
    deadline_token = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(deadline_token)
        _STOP.reset(stop_token)


def unit_stop() -> threading.Event | None:
    """The event set when the run of the current unit is interrupted, if an executor set one."""
    return _STOP.get()


def unit_deadline() -> float | None:
    """The :func:`time.monotonic` instant by which the current unit gives up any wait."""
    return _DEADLINE.get()


def remaining_seconds() -> float | None:
    """Seconds left before :func:`unit_deadline` (``0`` when past), or ``None`` without one."""
    deadline = _DEADLINE.get()
    return None if deadline is None else max(deadline - time.monotonic(), 0.0)
