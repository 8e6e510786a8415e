"""Fixtures of etl_core's tests: the Celery executor on a real broker with an in-test worker."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import pytest

from etl_core.retry import RetryPolicy
from etl_core.testing.brokers import broker_for, celery_broker
from etl_core.work import RunUnit, UnitResult, WorkUnit
from etl_core.work.celery import CeleryExecutor, celery_app, lane_queues, register_lane_task

__all__ = ["celery_broker", "in_test_celery"]

T = TypeVar("T")

TEST_LANE = "test_lane"


class _InTestWorkerExecutor(CeleryExecutor):
    """The Celery executor whose in-test worker runs the caller's ``run_unit``.

    A function does not cross a broker: a real worker runs its lane's registered
    ``run_unit``. The test lane's task calls whatever ``run`` was last handed, which
    the worker thread of this same process can reach; units and results still travel
    through the broker and the result backend.
    """

    def __init__(self, app: Any, handler: list[RunUnit[Any]], **options: Any) -> None:
        super().__init__(app, **options)
        self._handler = handler

    def run(self, run_unit: RunUnit[T], units: Iterable[WorkUnit]) -> Iterator[UnitResult[T]]:
        self._handler[:] = [run_unit]
        return super().run(run_unit, units)


@contextlib.contextmanager
def in_test_celery_executor(kind: str, policy: RetryPolicy) -> Iterator[CeleryExecutor]:
    """A Celery executor on the ``kind`` broker with a 3-thread worker in this process."""
    from celery.contrib.testing.worker import start_worker

    with broker_for(kind) as broker:
        settings = broker.settings(task_attempts=policy.attempts)
        app = celery_app(settings, TEST_LANE)
        # the in-test worker's event loop sleeps until its next timer, 10 s at most, before it
        # sees it is asked to stop: on RabbitMQ none came sooner, and every test's teardown
        # waited ~10 s (a real worker is woken by the signal); a 1 s heartbeat checks twice a
        # second
        app.conf.broker_heartbeat = 1
        handler: list[RunUnit[Any]] = []
        queues = lane_queues(settings, TEST_LANE)

        def build(_: contextlib.ExitStack) -> RunUnit[Any]:
            return lambda unit: handler[0](unit)

        register_lane_task(
            app, TEST_LANE, build, encode=lambda v: v, policy=policy, dead_queue=queues.dead
        )
        with start_worker(
            app,
            pool="threads",
            concurrency=3,
            perform_ping_check=False,
            queues=[queues.work],
            shutdown_timeout=30,
        ):
            yield _InTestWorkerExecutor(app, handler, window=3, drain_timeout=20)


@pytest.fixture
def in_test_celery() -> Any:
    """:func:`in_test_celery_executor`, for a fixture that picks its executor at run time."""
    return in_test_celery_executor
