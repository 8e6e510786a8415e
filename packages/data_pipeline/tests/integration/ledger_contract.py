"""The ledger contract: how a partition's end is recorded, on every :class:`Ledger`.

``test_backfill_ledger`` runs the checks on the store ledger in-process and, through
``contract_worker.py``, on the database ledger in a process of their own (Django is
configured once per process). Each check creates its own job.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, timedelta

from data_pipeline.backfill_status import QUEUED, STALLED, job_status
from data_pipeline.db import BackfillPartitionRecord
from data_pipeline.ledger import Ledger, Runner, this_process
from etl_core.storage import this_holder

Check = Callable[[Ledger], None]
FIRST = date(2026, 11, 1)
DAYS = [FIRST + timedelta(days=n) for n in range(8)]


def running_job(ledger: Ledger, days: list[date]) -> str:
    job = ledger.create("pos", days[0], days[-1], days, parameters={}, max_attempts=3)
    for day in days:
        ledger.update(job.job_id, BackfillPartitionRecord(day, "running", 2, "", None, "w"))
    return job.job_id


def a_partition_end_keeps_its_attempts_and_the_last_one_ends_the_job(ledger: Ledger) -> None:
    job_id = running_job(ledger, DAYS[:2])

    first = BackfillPartitionRecord(DAYS[0], "succeeded", 0, "", 10, "")
    assert ledger.end_partition(job_id, first)
    halfway = ledger.get(job_id)
    assert halfway is not None
    assert halfway.state == "running"
    assert halfway.partitions[0] == BackfillPartitionRecord(DAYS[0], "succeeded", 2, "", 10, "")

    last = BackfillPartitionRecord(DAYS[1], "failed", 0, "boom", None, "")
    assert ledger.end_partition(job_id, last)
    ended = ledger.get(job_id)
    assert ended is not None
    assert ended.state == "failed"
    assert ended.partitions[1] == BackfillPartitionRecord(DAYS[1], "failed", 2, "boom", None, "")


def an_end_of_an_unknown_job_or_partition_is_refused(ledger: Ledger) -> None:
    job_id = running_job(ledger, DAYS[:1])
    outside = BackfillPartitionRecord(DAYS[5], "succeeded", 0, "", 1, "")

    assert not ledger.end_partition(job_id, outside)
    assert not ledger.end_partition("12345678", outside)
    assert not ledger.end_partition("no-such-job", outside)
    ledger.set_state(job_id, "cancelled")


def partitions_ended_at_once_end_the_job(ledger: Ledger) -> None:
    job_id = running_job(ledger, DAYS)
    start = threading.Barrier(len(DAYS))
    results: list[bool] = []

    def end(day: date) -> None:
        start.wait(timeout=30)
        results.append(
            ledger.end_partition(job_id, BackfillPartitionRecord(day, "succeeded", 0, "", 1, ""))
        )

    workers = [threading.Thread(target=end, args=(day,)) for day in DAYS]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)

    job = ledger.get(job_id)
    assert job is not None
    assert results == [True] * len(DAYS)
    assert {p.state for p in job.partitions} == {"succeeded"}
    assert job.state == "succeeded"


def an_end_leaves_a_cancelled_job_cancelled(ledger: Ledger) -> None:
    job_id = running_job(ledger, DAYS[:1])
    ledger.set_state(job_id, "cancelled")

    assert ledger.end_partition(job_id, BackfillPartitionRecord(DAYS[0], "succeeded", 0, "", 1, ""))
    job = ledger.get(job_id)
    assert job is not None
    assert job.state == "cancelled"
    assert job.partitions[0].state == "succeeded"


def a_job_records_who_runs_it_and_its_status_tells_the_truth(ledger: Ledger) -> None:
    job = ledger.create(
        "pos", DAYS[0], DAYS[1], DAYS[:2], parameters={}, max_attempts=3,
        runner=Runner.this("celery"),
    )  # fmt: skip
    job_id = job.job_id
    runner = Runner.of(job)
    assert runner is not None
    assert (runner.executor, runner.holder, runner.handed_over_at) == (
        "celery",
        this_holder(),
        None,
    )
    assert job_status(ledger.store, job).state == "running"  # this process holds its lease

    ledger.hand_over(job_id)  # --no-wait: the units are on the queue
    handed = ledger.get(job_id)
    assert handed is not None
    handed_runner = Runner.of(handed)
    assert handed_runner is not None
    assert handed_runner.handed_over_at is not None
    assert handed_runner.started_at == runner.started_at
    assert job_status(ledger.store, handed).state == QUEUED

    ledger.update(job_id, BackfillPartitionRecord(DAYS[0], "running", 1, "", None, "w"))
    taken = ledger.get(job_id)  # a worker marked it running, then vanished: no lease
    assert taken is not None
    stalled = job_status(ledger.store, taken)
    assert stalled.state == STALLED
    assert f"--resume {job_id} --executor celery" in stalled.resume

    ledger.set_state(job_id, "running", owner=this_process(), runner=Runner.this("local"))
    resumed = ledger.get(job_id)
    assert resumed is not None
    resumed_runner = Runner.of(resumed)
    assert resumed_runner is not None
    assert (resumed_runner.executor, resumed_runner.handed_over_at) == ("local", None)
    assert job_status(ledger.store, resumed).state == "running"
    ledger.set_state(job_id, "cancelled")
    cancelled = ledger.get(job_id)
    assert cancelled is not None
    assert job_status(ledger.store, cancelled).state == "cancelled"


CHECKS: list[Check] = [
    a_partition_end_keeps_its_attempts_and_the_last_one_ends_the_job,
    an_end_of_an_unknown_job_or_partition_is_refused,
    partitions_ended_at_once_end_the_job,
    an_end_leaves_a_cancelled_job_cancelled,
    a_job_records_who_runs_it_and_its_status_tells_the_truth,
]
