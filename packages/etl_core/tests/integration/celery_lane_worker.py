"""A worker process of the test lane, as a runtime's ``worker`` command runs one.

Usage: ``python celery_lane_worker.py <broker URL> <queue prefix> [<concurrency> [<soft
time limit, seconds>]]``; ``ETL_RESULT_BACKEND``, when set, is its result backend,
``WORKER_STORAGE_URL`` its store and ``WORKER_DATABASE_URL`` its database. A
unit's value is ``{"key": <its key>}``; a unit whose key starts with ``poison`` fails with
a retryable error every time (a message that keeps failing), one whose key starts with
``broken`` with a fatal error (a unit that fails for good at once); one whose key starts
with ``cores`` also says how many units its worker process shares the cores with; one whose
key starts with ``overrun`` sleeps past any soft time limit and its cleanup fails; one whose
key starts with ``leased`` takes the lease ``_state/test/busy.json`` of its store, waiting up
to ``LEASE_WAIT_SECONDS`` (120) for another run to release it. ``WORKER_MAX_DELIVERIES``,
when set, is its delivery limit (counted in its store).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from datetime import timedelta

from etl_core.config import URL, DatabaseURL, ResultBackendURL
from etl_core.errors import FatalError, RetryableError
from etl_core.logging import configure_logging
from etl_core.runtime import RuntimeSettings
from etl_core.storage import acquire_lease, open_store
from etl_core.work import InvalidUnitError, WorkUnit
from etl_core.work.celery import (
    DeliveryCounter,
    DeliveryLimit,
    celery_app,
    lane_queues,
    register_lane_task,
    run_worker,
    task_policy,
)
from etl_core.work.cores import units_at_once
from etl_core.work.limits import unit_stop

LANE = "test_lane"


def run(unit: WorkUnit) -> dict[str, object]:
    if unit.kind != "item":  # as a lane refuses a kind it does not run
        raise InvalidUnitError(f"expected kind 'item', got {unit.kind!r}", field="kind")
    unit.checked_params({"n": int})
    if unit.key.startswith("poison"):
        raise RetryableError(f"{unit.key} never works")
    if unit.key.startswith("broken"):
        raise FatalError(f"{unit.key} is refused for good")
    if unit.key.startswith("overrun"):  # past the soft limit; its cleanup fails meanwhile
        try:
            time.sleep(60)
        finally:
            raise RuntimeError("Connection Error: connection is busy")
    if unit.key.startswith("slow"):  # a unit that runs a while (the broker may go meanwhile)
        time.sleep(float(os.environ.get("SLOW_UNIT_SECONDS", "5")))
        return {"key": unit.key}
    if unit.key.startswith("leased"):  # waits while another live run holds the lease
        wait = float(os.environ.get("LEASE_WAIT_SECONDS", "120"))
        with (
            open_store(os.environ["WORKER_STORAGE_URL"]) as store,
            acquire_lease(
                store, "_state/test/busy.json", ttl=60, wait=wait, poll=0.5, stop=unit_stop()
            ),
        ):
            return {"key": unit.key}
    if unit.key.startswith("cores"):
        return {"key": unit.key, "units_at_once": units_at_once()}
    return {"key": unit.key}


def build(_: contextlib.ExitStack) -> object:
    return run


def main() -> int:
    url, prefix = sys.argv[1:3]
    concurrency = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    soft = timedelta(seconds=float(sys.argv[4])) if len(sys.argv) > 4 else timedelta(minutes=55)
    configure_logging(level="INFO", fmt="json")
    backend = os.environ.get("ETL_RESULT_BACKEND")
    database = os.environ.get("WORKER_DATABASE_URL")
    store = os.environ.get("WORKER_STORAGE_URL")
    settings = RuntimeSettings(
        **({"storage_url": store} if store else {}),  # type: ignore[arg-type]
        database_url=DatabaseURL(database) if database else None,
        broker_url=URL(url),
        result_backend=ResultBackendURL(backend) if backend else None,
        queue_prefix=prefix,
        task_attempts=3,
        task_soft_time_limit=soft,
        task_time_limit=soft + timedelta(seconds=10),
    )
    app = celery_app(settings, LANE)
    most = os.environ.get("WORKER_MAX_DELIVERIES")

    def open_counter(opened: contextlib.ExitStack) -> DeliveryCounter:
        return DeliveryCounter(opened.enter_context(open_store(settings.storage_url)), LANE)

    register_lane_task(
        app,
        LANE,
        build,  # type: ignore[arg-type]
        encode=lambda value: value,
        policy=task_policy(settings),
        dead_queue=lane_queues(settings, LANE).dead,
        deliveries=DeliveryLimit(int(most), open_counter) if most else None,
    )
    return run_worker(app, settings, LANE, concurrency=concurrency)


if __name__ == "__main__":
    sys.exit(main())
