"""Time a block or a function into a histogram of seconds.

:class:`Timer` works as a context manager (``with timed(h): ...``) and as a
decorator on plain and ``async`` functions. It observes the elapsed seconds even
when the block raises, and can count calls and failures alongside.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import ParamSpec, TypeVar, cast

from etl_core.metrics.registry import Counter, Histogram, MetricError

__all__ = ["Timer", "timed"]

P = ParamSpec("P")
R = TypeVar("R")


class Timer:
    """Observes elapsed seconds into ``histogram``; optionally counts calls and errors.

    As a decorator every call is timed independently, so decorated functions may run
    concurrently. As a context manager one instance times one block at a time; build a
    fresh one per block (``with timed(h):``) when blocks can overlap.

    Args:
        histogram: where the elapsed seconds go (bound to its labels, if it has any).
        calls: incremented once per timed block, whatever the outcome.
        errors: incremented when the block raises.
        clock: monotonic seconds source; tests pass a fake one.
    """

    def __init__(
        self,
        histogram: Histogram,
        *,
        calls: Counter | None = None,
        errors: Counter | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        for role, metric in (("histogram", histogram), ("calls", calls), ("errors", errors)):
            if metric is not None and not metric.is_bound:
                raise MetricError(
                    f"timer {role} {metric.name!r} has labels ({', '.join(metric.label_names)}); "
                    "pass metric.labels(...)"
                )
        self._histogram = histogram
        self._calls = calls
        self._errors = errors
        self._clock = clock
        self._started: float | None = None
        self.elapsed: float | None = None
        """Seconds the last completed block took (``None`` until one completes)."""

    def _record(self, elapsed: float, failed: bool) -> None:
        self.elapsed = elapsed
        self._histogram.observe(elapsed)
        if self._calls is not None:
            self._calls.inc()
        if failed and self._errors is not None:
            self._errors.inc()

    def __enter__(self) -> Timer:
        if self._started is not None:
            raise MetricError(
                f"timer for {self._histogram.name!r} is already timing a block; "
                "use a fresh timed(...) per block"
            )
        self._started = self._clock()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        started, self._started = self._started, None
        if started is not None:
            self._record(self._clock() - started, failed=exc_type is not None)

    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        """Decorate ``func`` (sync or async) so every call is timed."""
        if inspect.iscoroutinefunction(func):
            return cast(Callable[P, R], self._wrap_async(func))
        return self._wrap_sync(func)

    def _wrap_sync(self, func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def timed_call(*args: P.args, **kwargs: P.kwargs) -> R:
            started = self._clock()
            failed = True
            try:
                result = func(*args, **kwargs)
                failed = False
                return result
            finally:
                self._record(self._clock() - started, failed)

        return timed_call

    def _wrap_async(self, func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(func)
        async def timed_call(*args: P.args, **kwargs: P.kwargs) -> R:
            started = self._clock()
            failed = True
            try:
                result = await func(*args, **kwargs)
                failed = False
                return result
            finally:
                self._record(self._clock() - started, failed)

        return timed_call


def timed(
    histogram: Histogram,
    *,
    calls: Counter | None = None,
    errors: Counter | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> Timer:
    """A :class:`Timer` for ``histogram``: ``with timed(h):`` or ``@timed(h)``."""
    return Timer(histogram, calls=calls, errors=errors, clock=clock)
