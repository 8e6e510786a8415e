"""What ``backfill --status`` judges a job recorded as running to be doing, from the leases."""

from __future__ import annotations

import time
from datetime import date

from data_pipeline.backfill_status import job_status
from data_pipeline.db import BackfillPartitionRecord
from data_pipeline.lease import partition_lease
from data_pipeline.ledger import Runner, StoreLedger
from etl_core.storage import ObjectStore

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
