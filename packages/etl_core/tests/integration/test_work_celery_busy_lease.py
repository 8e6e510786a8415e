"""A unit waiting for a busy lease on a worker gives up before ``task_soft_time_limit``
with its busy error, which is not a poison message (issue 15)."""

from __future__ import annotations

import contextlib
import time
from datetime import timedelta
from pathlib import Path

import pytest

from etl_core.config import URL
from etl_core.errors import LeaseBusyError
from etl_core.retry import RetryPolicy
from etl_core.runtime import RuntimeSettings
from etl_core.storage import LocalObjectStore, acquire_lease
from etl_core.work import WorkUnit
from etl_core.work.celery import celery_app, register_lane_task
from etl_core.work.celery.messages import unit_result
from etl_core.work.limits import remaining_seconds

LANE = "test_lane"
UNIT = WorkUnit(LANE, "item", "busy-1")


def test_a_unit_behind_a_busy_lease_gives_up_before_the_soft_limit_and_is_not_dead_lettered(
    tmp_path: Path,
) -> None:
    # issue 15: its wait met task_soft_time_limit, and a busy unit was dead-lettered
    pytest.importorskip("celery")
    settings = RuntimeSettings(
        broker_url=URL("redis://127.0.0.1:6379/0"),
        task_soft_time_limit=timedelta(seconds=3),
        task_time_limit=timedelta(seconds=10),
    )
    app = celery_app(settings, LANE)
    store = LocalObjectStore(tmp_path)

    def run(unit: WorkUnit) -> object:
        left = remaining_seconds()
        assert left is not None
        assert left < 3
        with acquire_lease(store, "_state/test/busy.json", ttl=60, wait=left, poll=5.0):
            return "ran"

    def build(_: contextlib.ExitStack) -> object:
        return run

    policy = RetryPolicy(attempts=3, initial_delay=1.0)
    task = register_lane_task(
        app, LANE, build, encode=lambda value: value, policy=policy,  # type: ignore[arg-type]
        dead_queue=f"{LANE}.dead",
    )  # fmt: skip
    with acquire_lease(store, "_state/test/busy.json", ttl=60, purpose="another run"):
        started = time.monotonic()
        document = task.apply(args=[UNIT.to_dict()]).get(disable_sync_subtasks=False)
        waited = time.monotonic() - started
    result = unit_result(document, UNIT, lambda value: value)
    assert (result.status, result.attempts, document["dead_lettered"]) == ("failed", 1, False)
    assert isinstance(result.error, LeaseBusyError)
    assert "(another run)" in str(result.error)
    # waited out the lease until just before the 3 s limit; a retry would be attempt 2 (above),
    # so the upper bound only has to allow a loaded machine's overhead after the wait
    assert 2.0 < waited < 4.0, waited
