"""Threads that carry the caller's context (log context, run id) with them.

A plain ``threading.Thread`` or ``ThreadPoolExecutor`` starts each task in an
empty :mod:`contextvars` context, so log lines from worker threads would lose
``run_id`` and ``dataset``. Everything the platform runs in threads goes through
these two helpers instead.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

__all__ = ["ContextThreadPoolExecutor", "start_thread"]

P = ParamSpec("P")
T = TypeVar("T")


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
