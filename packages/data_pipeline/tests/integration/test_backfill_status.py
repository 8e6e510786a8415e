"""What ``backfill --status`` judges a job recorded as running to be doing, from the leases,
and how a backfill's unit meets a partition another writer holds."""

from __future__ import annotations

import time
from datetime import date

from data_pipeline.backfill_status import job_status
from data_pipeline.db import BackfillJobRecord, BackfillPartitionRecord
from data_pipeline.lease import partition_lease
from data_pipeline.ledger import Runner, StoreLedger
from data_pipeline.settings import PipelineSettings
from data_pipeline.work import PipelineContext, partition_unit, run_unit
from etl_core.contracts import load_contracts
from etl_core.storage import ObjectStore
from etl_core.threads import ContextThreadPoolExecutor

D1, D2 = date(2026, 11, 1), date(2026, 11, 2)


def _handed_over_job(store: ObjectStore) -> tuple[StoreLedger, str]:
    """A job enqueued with ``--no-wait``: its units are the workers' now, D1 in flight."""
    ledger = StoreLedger(store)
    job = ledger.create(
        "pos", D1, D2, [D1, D2], parameters={}, max_attempts=3, runner=Runner.this("celery")
    )
    ledger.hand_over(job.job_id)
    ledger.update(job.job_id, BackfillPartitionRecord(D1, "running", 1, "", None, "w"))
    return ledger, job.job_id


def test_a_unit_between_two_attempts_keeps_its_job_running(store: ObjectStore) -> None:
    ledger, job_id = _handed_over_job(store)
    with partition_lease(store, "pos", D1, purpose="backfill", ttl_seconds=600):
        pass  # its first attempt failed: the lease is released, the next one is due

    job = ledger.get(job_id)
    assert job is not None
    soon = job_status(store, job, now=time.time() + 50)  # within the policy's longest wait
    late = job_status(store, job, now=time.time() + 3600)  # nobody took it up again

    assert soon.state == "running", soon.detail
    assert late.state == "stalled", late.detail


def test_a_backfill_unit_waits_for_a_busy_partition_while_its_writer_is_alive(
    local_store: ObjectStore, settings: PipelineSettings
) -> None:
    ledger = StoreLedger(local_store)
    job = ledger.create("pos", D1, D1, [D1], parameters={}, max_attempts=1)
    context = PipelineContext(
        local_store, load_contracts(settings.config_dir), settings, ledger=ledger
    )
    unit = partition_unit("pos", D1, load=False, purpose=f"backfill {job.job_id}", job=job.job_id)
    with (
        ContextThreadPoolExecutor(max_workers=1) as pool,
        partition_lease(local_store, "pos", D1, purpose="run", ttl_seconds=600) as held,
    ):  # a scheduled run writes the partition as the backfill reaches it
        waiting = pool.submit(run_unit, context, unit)
        time.sleep(1.0)
        assert not waiting.done()
        held.release()
        outcome = waiting.result(timeout=60)

    assert outcome.transform is not None
    assert outcome.transform.rows > 0


def test_a_runner_recorded_with_a_time_that_is_not_a_number_reads_as_unrecorded(
    store: ObjectStore,
) -> None:
    garbled = {"executor": "local", "holder": {}, "started_at": float("nan")}  # a hand edit
    job = BackfillJobRecord(
        "j", "pos", D1, D1, "running", {"runner": garbled}, 3,
        (BackfillPartitionRecord(D1, "pending", 0, "", None, ""),),
    )  # fmt: skip

    status = job_status(store, job)

    assert Runner.of(job) is None
    assert status.state == "unknown", status.detail
