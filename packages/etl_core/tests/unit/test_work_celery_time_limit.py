"""A unit a worker stops at ``task_soft_time_limit`` fails with the limit, never retried."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest

from etl_core.config import URL
from etl_core.errors import RetryableError
from etl_core.retry import RetryPolicy
from etl_core.runtime import RuntimeSettings
from etl_core.work import UnitResult, WorkUnit
from etl_core.work.celery import UnitTimeLimitError, celery_app, register_lane_task
from etl_core.work.celery.messages import unit_result

LANE = "test_lane"
UNIT = WorkUnit(LANE, "item", "slow-1")


def test_a_soft_time_limit_striking_between_two_attempts_fails_the_unit_with_the_limit() -> None:
    # the limit struck in the backoff after a retryable error: the task ended as Celery's
    # own failure, the unit's end never recorded (on_result) nor logged by the lane
    exceptions = pytest.importorskip("celery.exceptions")
    settings = RuntimeSettings(
        broker_url=URL("redis://127.0.0.1:6379/0"),
        task_soft_time_limit=timedelta(seconds=30),
        task_time_limit=timedelta(seconds=40),
    )
    app = celery_app(settings, LANE)
    runs: list[str] = []
    ended: list[UnitResult[object]] = []

    def run(unit: WorkUnit) -> object:
        runs.append(unit.key)
        raise RetryableError("the store is slow")

    def build(_: contextlib.ExitStack) -> object:
        return run

    def limit_strikes(_: float) -> None:  # as Celery's signal handler raises it
        raise exceptions.SoftTimeLimitExceeded()

    policy = RetryPolicy(attempts=3, initial_delay=1.0, sleep=limit_strikes)
    task = register_lane_task(
        app, LANE, build, encode=lambda value: value, policy=policy,  # type: ignore[arg-type]
        dead_queue=f"{LANE}.dead", on_result=ended.append,
    )  # fmt: skip
    document = task.apply(args=[UNIT.to_dict()]).get(disable_sync_subtasks=False)
    result = unit_result(document, UNIT, lambda value: value)
    assert (result.status, result.attempts, document["dead_lettered"]) == ("failed", 1, False)
    assert isinstance(result.error, UnitTimeLimitError)
    assert str(result.error) == (
        "work unit test_lane:item:slow-1 ran past task_soft_time_limit (30 s): stopped"
    )
    assert runs == ["slow-1"]  # not tried again after the limit
    assert [(r.status, type(r.error)) for r in ended] == [("failed", UnitTimeLimitError)]
