"""Backfills: one work unit per partition over a date range, with a ledger, retries and resume.

:func:`plan_backfill` lists the partitions of a range (plus ``lookback`` days before
it) that have validated input, with their objects and bytes. :func:`run_backfill`
processes a job's unfinished partitions in a bounded thread pool; each partition is
retried up to the job's ``max_attempts`` and a failure does not stop the others.
Every state change is written to the ledger first, so a killed job resumes with
exactly the partitions not recorded as succeeded (a partition caught mid-way is
simply redone: its output is replaced whole and its load replaces its rows).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from datetime import date, timedelta

from data_pipeline.db import BackfillJobRecord, BackfillPartitionRecord
from data_pipeline.errors import BackfillConflictError
from data_pipeline.layout import input_objects
from data_pipeline.ledger import Ledger, check_no_overlap, this_process
from data_pipeline.pipeline import process_partition
from data_pipeline.settings import PipelineSettings
from etl_core.contracts import Contract
from etl_core.errors import ConfigError, FieldError
from etl_core.logging import bound_context
from etl_core.metrics import counter
from etl_core.storage import ObjectStore
from etl_core.threads import ContextThreadPoolExecutor

__all__ = [
    "BackfillSummary",
    "PlannedPartition",
    "plan_backfill",
    "resume_backfill",
    "run_backfill",
    "start_backfill",
]

logger = logging.getLogger(__name__)

MAX_RANGE_DAYS = 3660
_BACKOFF_SECONDS = (0.5, 2.0, 5.0)
_attempts = counter(
    "etl_data_pipeline_backfill_attempts_total",
    "Backfill partition attempts, by dataset and outcome.",
    ["dataset", "outcome"],
)

Progress = Callable[[BackfillPartitionRecord], None]


@dataclass(frozen=True)
class PlannedPartition:
    """One partition a backfill would process."""

    dt: date
    objects: int
    bytes: int


@dataclass(frozen=True)
class BackfillSummary:
    """How a backfill run ended."""

    job_id: str
    succeeded: int
    failed: int
    skipped: int
    rows: int
    interrupted: bool = False


def plan_backfill(
    store: ObjectStore, contract: Contract, start: date, end: date, *, lookback: int = 0
) -> list[PlannedPartition]:
    """The partitions from ``start - lookback`` days to ``end`` that have validated input.

    Raises:
        ConfigError: the range is reversed, too long, or ``lookback`` is negative.
    """
    if end < start or (end - start).days > MAX_RANGE_DAYS or lookback < 0:
        raise ConfigError(
            f"backfill range {start}..{end} (lookback {lookback}) is invalid",
            [
                FieldError(
                    "--from/--to/--lookback",
                    f"expected --from <= --to, at most {MAX_RANGE_DAYS} days, lookback >= 0",
                    "command line",
                )
            ],
        )
    first = start - timedelta(days=lookback)
    plan = []
    for offset in range((end - first).days + 1):
        dt = first + timedelta(days=offset)
        objects = input_objects(store, contract.dataset, dt)
        if objects:
            plan.append(PlannedPartition(dt, len(objects), sum(o.size for o in objects)))
    return plan


def start_backfill(
    ledger: Ledger,
    contract: Contract,
    start: date,
    end: date,
    plan: list[PlannedPartition],
    *,
    max_attempts: int,
    lookback: int,
) -> BackfillJobRecord:
    """Record a new job for ``plan``, refusing one that overlaps a running job."""
    first = min([start, *(p.dt for p in plan)])
    check_no_overlap(ledger, contract.dataset, first, end)
    return ledger.create(
        contract.dataset,
        first,
        end,
        [p.dt for p in plan],
        parameters={"from": start.isoformat(), "to": end.isoformat(), "lookback": lookback},
        max_attempts=max_attempts,
    )


def resume_backfill(ledger: Ledger, contract: Contract, job_id: str) -> BackfillJobRecord:
    """Take over job ``job_id`` for this process.

    Raises:
        BackfillConflictError: the job is unknown, of another dataset, or still running.
    """
    job = ledger.get(job_id)
    if job is None or job.dataset != contract.dataset:
        raise BackfillConflictError(
            f"no backfill job {job_id!r} of dataset {contract.dataset!r} "
            f"in the {ledger.kind} ledger",
            [FieldError("--resume", "unknown job", "command line")],
        )
    if ledger.alive(job):
        raise BackfillConflictError(
            f"backfill job {job_id} is still running (owner {job.parameters.get('owner')})",
            [FieldError("--resume", "job is running", "command line")],
        )
    check_no_overlap(ledger, contract.dataset, job.start, job.end)
    ledger.set_state(job_id, "running", owner=this_process())
    resumed = ledger.get(job_id)
    assert resumed is not None
    return resumed


def run_backfill(
    store: ObjectStore,
    contract: Contract,
    settings: PipelineSettings,
    ledger: Ledger,
    job: BackfillJobRecord,
    *,
    concurrency: int = 1,
    only_failed: bool = False,
    load: bool = True,
    run_id: str = "",
    progress: Progress | None = None,
) -> BackfillSummary:
    """Process the job's partitions not yet succeeded (or only its failed ones).

    Ctrl-C stops handing out partitions, lets the running ones finish, records the job
    as cancelled and returns with ``interrupted`` set; resume it later.
    """
    if concurrency < 1 or concurrency > 64:
        raise ConfigError(
            f"--concurrency {concurrency} is invalid",
            [FieldError("--concurrency", "expected 1 to 64", "command line")],
        )
    wanted = {"failed"} if only_failed else {"pending", "running", "failed", "cancelled"}
    todo = [p for p in job.partitions if p.state in wanted]
    done = [p for p in job.partitions if p not in todo]
    results: list[BackfillPartitionRecord] = []
    interrupted = False
    with (
        bound_context(dataset=contract.dataset, backfill_job=job.job_id),
        ContextThreadPoolExecutor(max_workers=concurrency) as pool,
    ):
        futures: set[Future[BackfillPartitionRecord]] = {
            pool.submit(
                _partition,
                store,
                contract,
                settings,
                ledger,
                job,
                record,
                load=load,
                run_id=run_id,
            )
            for record in todo
        }
        try:
            while futures:
                finished, futures = wait(futures, timeout=1.0, return_when=FIRST_COMPLETED)
                for future in finished:
                    record = future.result()
                    results.append(record)
                    if progress is not None:
                        progress(record)
        except KeyboardInterrupt:
            interrupted = True
            for future in futures:
                future.cancel()
            logger.warning("backfill interrupted; running partitions finish, then it stops")
    succeeded = sum(r.state == "succeeded" for r in results)
    failed = sum(r.state == "failed" for r in results)
    state = "cancelled" if interrupted else ("failed" if failed else "succeeded")
    if not interrupted and any(p.state == "failed" for p in done) and only_failed is False:
        state = "failed"
    ledger.set_state(job.job_id, state)
    return BackfillSummary(
        job_id=job.job_id,
        succeeded=succeeded,
        failed=failed,
        skipped=len(done),
        rows=sum(r.rows or 0 for r in results),
        interrupted=interrupted,
    )


def _partition(
    store: ObjectStore,
    contract: Contract,
    settings: PipelineSettings,
    ledger: Ledger,
    job: BackfillJobRecord,
    record: BackfillPartitionRecord,
    *,
    load: bool,
    run_id: str,
) -> BackfillPartitionRecord:
    """Process one partition with retries; always returns its final ledger record."""
    attempts = record.attempts
    error = ""
    with bound_context(dt=record.dt.isoformat()):
        for attempt in range(job.max_attempts):
            attempts += 1
            ledger.update(
                job.job_id,
                BackfillPartitionRecord(
                    record.dt, "running", attempts, error, None, this_process()
                ),
            )
            try:
                outcome = process_partition(
                    store,
                    contract,
                    record.dt,
                    settings,
                    load=load,
                    run_id=run_id,
                    purpose=f"backfill {job.job_id}",
                )
            except Exception as exc:
                error = str(exc)
                _attempts.labels(dataset=contract.dataset, outcome="failed").inc()
                logger.warning(
                    "backfill partition attempt failed",
                    extra={"attempt": attempts, "error": error},
                )
                if attempt + 1 < job.max_attempts:
                    time.sleep(_BACKOFF_SECONDS[min(attempt, len(_BACKOFF_SECONDS) - 1)])
                continue
            _attempts.labels(dataset=contract.dataset, outcome="succeeded").inc()
            rows = outcome.transform.rows if outcome.transform else 0
            final = BackfillPartitionRecord(record.dt, "succeeded", attempts, "", rows, "")
            ledger.update(job.job_id, final)
            return final
    final = BackfillPartitionRecord(record.dt, "failed", attempts, error, None, "")
    ledger.update(job.job_id, final)
    return final
