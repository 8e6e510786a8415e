"""The local pool executor: units on a bounded pool of threads of this process.

Units spend their time in I/O, gpg and DuckDB, which release the GIL, so
threads give real parallelism without pickling the lane's context.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sized
from concurrent.futures import FIRST_COMPLETED, Future, wait
from threading import Event
from typing import TypeVar

from etl_core.retry import RetryPolicy
from etl_core.threads import SIGNAL_CHECK, ContextThreadPoolExecutor
from etl_core.work.cores import sharing_cores
from etl_core.work.executor import DEFAULT_POLICY, Executor, RunUnit, attempt_unit
from etl_core.work.limits import unit_limits
from etl_core.work.result import UnitResult
from etl_core.work.unit import WorkUnit

__all__ = ["ThreadExecutor"]

T = TypeVar("T")


class ThreadExecutor(Executor):
    """Runs up to ``workers`` units at once on threads that carry the caller's log context.

    Each unit's engines share the host's cores with the others running at once
    (:func:`~etl_core.work.cores.unit_threads`): ``workers`` of them, or fewer when fewer
    units are given.

    Raises:
        ValueError: ``workers`` is not from 1 to 256.
    """

    name = "threads"

    def __init__(self, workers: int, *, policy: RetryPolicy = DEFAULT_POLICY) -> None:
        if not 1 <= workers <= 256:
            raise ValueError(f"workers must be from 1 to 256, got {workers}")
        super().__init__(policy=policy)
        self.workers = workers

    def run(self, run_unit: RunUnit[T], units: Iterable[WorkUnit]) -> Iterator[UnitResult[T]]:
        at_once = min(self.workers, len(units)) if isinstance(units, Sized) else self.workers
        pool = ContextThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="unit")
        pending = iter(units)
        running: set[Future[UnitResult[T]]] = set()
        stop = Event()  # set when the run ends early: units in flight stop waiting
        try:
            while True:
                while len(running) < self.workers:  # hand out work only as threads free up
                    unit = next(pending, None)
                    if unit is None:
                        break
                    running.add(pool.submit(_sharing, at_once, run_unit, unit, self.policy, stop))
                if not running:
                    return
                # in slices: a signal (Ctrl-C, SIGTERM) arriving just before the wait blocks,
                # or handled by another thread, wakes nothing; its handler runs at the next
                # slice, not once a unit ends (after sleeping out its back-off and retrying)
                done, running = wait(running, timeout=SIGNAL_CHECK, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        finally:  # interrupted or done: nothing new starts, units in flight finish (a unit
            # waiting for a busy lease or a retry's back-off stops waiting: unit_stop())
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)


def _sharing(
    at_once: int, run_unit: RunUnit[T], unit: WorkUnit, policy: RetryPolicy, stop: Event
) -> UnitResult[T]:
    """``unit`` run on a pool thread, its engines sharing the cores with ``at_once`` units,
    its waits ended by ``stop``."""
    with sharing_cores(at_once), unit_limits(stop=stop):
        return attempt_unit(run_unit, unit, policy)
