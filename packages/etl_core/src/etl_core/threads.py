"""Threads that carry the caller's context (log context, run id) with them.

A plain ``threading.Thread`` or ``ThreadPoolExecutor`` starts each task in an
empty :mod:`contextvars` context, so log lines from worker threads would lose
``run_id`` and ``dataset``. Everything the platform runs in threads goes through
these two helpers instead.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, ParamSpec, TypeVar

__all__ = [
    "SIGNAL_CHECK",
    "ContextThreadPoolExecutor",
    "join",
    "put",
    "result_of",
    "start_thread",
    "wait_done",
]

P = ParamSpec("P")
T = TypeVar("T")

SIGNAL_CHECK = 0.1
"""Seconds the main thread waits for another thread at most before it looks at signals."""


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` whose tasks run in a copy of the submitter's context."""

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        context = contextvars.copy_context()
        return super().submit(context.run, fn, *args, **kwargs)  # type: ignore[arg-type]


def start_thread(
    target: Callable[..., Any], *args: Any, name: str | None = None, daemon: bool = True
) -> threading.Thread:
    """Start a thread running ``target(*args)`` in a copy of the caller's context."""
    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(target, *args), name=name, daemon=daemon)
    thread.start()
    return thread


def result_of(future: Future[T]) -> T:
    """``future.result()``, waited for in :data:`SIGNAL_CHECK` slices.

    On CPython a signal (Ctrl-C, SIGTERM) arriving just as the main thread starts an untimed
    lock wait, or handled by another thread, wakes nothing: its handler would run only once
    ``future`` ends. Waited for in slices, it runs within a slice. A ``TimeoutError`` the
    task itself raised is raised as is.
    """
    while not wait((future,), timeout=SIGNAL_CHECK).done:
        pass
    return future.result()


def wait_done(futures: Iterable[Future[Any]]) -> None:
    """Wait until every one of ``futures`` is done (their results untouched), in
    :data:`SIGNAL_CHECK` slices, as :func:`result_of` does."""
    pending = set(futures)
    while pending:
        pending = wait(pending, timeout=SIGNAL_CHECK).not_done


def join(thread: threading.Thread) -> None:
    """``thread.join()``, in :data:`SIGNAL_CHECK` slices: a Ctrl-C/SIGTERM arriving meanwhile
    is handled within a slice, not once the thread ends."""
    while thread.is_alive():
        thread.join(SIGNAL_CHECK)


def put(into: queue.Queue[T], item: T) -> None:
    """``into.put(item)`` on a bounded queue, waiting for room in :data:`SIGNAL_CHECK` slices."""
    while True:
        try:
            into.put(item, timeout=SIGNAL_CHECK)
        except queue.Full:
            continue
        return
