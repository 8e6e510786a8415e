"""The executor interface: run units, yield each result as it ends, retrying what may pass.

An executor decides *where* units run (this thread, a local pool, a broker's
workers); what a unit does is the lane's ``run_unit``. Every implementation
honours the same contract (the shared tests in ``tests/unit/test_work_executors.py``):

* each unit is run until it succeeds, fails with a non-retryable error (a
  :class:`~etl_core.errors.FatalError` is never retried), or spends the policy's
  attempts on retryable ones (:class:`~etl_core.errors.RetryableError`);
* a unit's error is its result, never the run's: the other units go on;
* interrupted (Ctrl-C, SIGTERM turned into ``KeyboardInterrupt``, or the caller
  leaving the loop), no new unit starts, units in flight finish, and the
  interruption propagates to the caller.
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from etl_core.retry import RetryPolicy
from etl_core.work.limits import remaining_seconds, unit_stop
from etl_core.work.result import UnitResult
from etl_core.work.unit import WorkUnit

__all__ = ["DEFAULT_POLICY", "Executor", "RunUnit", "attempt_unit"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

RunUnit = Callable[[WorkUnit], T]
"""A lane's entry point with its context bound: ``partial(run_unit, context)``."""

DEFAULT_POLICY = RetryPolicy(attempts=3, initial_delay=1.0, max_delay=30.0)
"""Three attempts, one to thirty seconds apart, for retryable errors only."""


class Executor(abc.ABC):
    """Runs work units somewhere and yields their results as they end."""

    name: str = "executor"

    def __init__(self, *, policy: RetryPolicy = DEFAULT_POLICY) -> None:
        self.policy = policy

    @abc.abstractmethod
    def run(self, run_unit: RunUnit[T], units: Iterable[WorkUnit]) -> Iterator[UnitResult[T]]:
        """Run every unit through ``run_unit``; yield each result in the order they end."""


def attempt_unit(run_unit: RunUnit[T], unit: WorkUnit, policy: RetryPolicy) -> UnitResult[T]:
    """Run one unit under ``policy``: its value, or the error that ended it (never raised).

    No retry starts once the run is interrupted (:func:`~etl_core.work.limits.unit_stop`
    set; the back-off ends at once then too), nor when its back-off would end past the
    unit's deadline (:func:`~etl_core.work.limits.unit_deadline`): the last error is the
    result. ``KeyboardInterrupt`` and ``SystemExit`` are not results: they propagate.
    """
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            value = run_unit(unit)
        except Exception as error:
            elapsed = time.monotonic() - started
            delay = policy.next_delay(attempt, error, elapsed)
            stop, left = unit_stop(), remaining_seconds()
            if (
                delay is None
                or (stop is not None and stop.is_set())
                or (left is not None and delay >= left)
            ):
                return UnitResult(unit, "failed", error=error, attempts=attempt, seconds=elapsed)
            logger.warning(
                "work unit attempt %d failed, retrying in %.1f s: %s",
                attempt,
                delay,
                error,
                extra={"unit": unit.id, "attempt": attempt},
            )
            if stop is None or policy.sleep is not time.sleep:  # a policy's own sleep: as is
                policy.sleep(delay)
            elif stop.wait(delay):  # interrupted during the back-off: no retry
                elapsed = time.monotonic() - started
                return UnitResult(unit, "failed", error=error, attempts=attempt, seconds=elapsed)
            continue
        return UnitResult(
            unit, "succeeded", value=value, attempts=attempt, seconds=time.monotonic() - started
        )
