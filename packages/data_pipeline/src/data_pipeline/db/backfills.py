"""The backfill ledger's tables (``etl_backfill_job``, ``etl_backfill_partition``).

What :class:`data_pipeline.ledger.DatabaseLedger` reads and writes; each function is one
unit of work through the door and returns plain records, never Django objects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from data_pipeline.db.door import door

__all__ = [
    "BackfillJobRecord",
    "BackfillPartitionRecord",
    "backfill_job",
    "create_backfill_job",
    "end_backfill_partition",
    "merge_backfill_job_parameters",
    "running_backfill_jobs",
    "set_backfill_job_state",
    "update_backfill_partition",
]

_FEATURE = "the backfill ledger"


@dataclass(frozen=True)
class BackfillPartitionRecord:
    """One partition of a backfill job as the ledger holds it."""

    dt: date
    state: str
    attempts: int
    error: str
    rows: int | None
    claimed_by: str


@dataclass(frozen=True)
class BackfillJobRecord:
    """A backfill job and its partitions."""

    job_id: str
    dataset: str
    start: date
    end: date
    state: str
    parameters: dict[str, Any]
    max_attempts: int
    partitions: tuple[BackfillPartitionRecord, ...]


def create_backfill_job(
    dataset: str,
    start: date,
    end: date,
    dates: Sequence[date],
    *,
    parameters: Mapping[str, Any],
    max_attempts: int,
    requested_by: str = "",
) -> str:
    """Record a new running backfill job with one pending row per partition; returns its id."""
    from django.db import transaction
    from django.utils import timezone

    with (
        door(_FEATURE) as schema,
        schema.models(schema.LEDGER_APP) as ledger,
        transaction.atomic(),
    ):
        job = ledger["BackfillJob"].objects.create(
            dataset=dataset,
            start_date=start,
            end_date=end,
            state="running",
            parameters=dict(parameters),
            max_attempts=max_attempts,
            requested_by=requested_by,
            started_at=timezone.now(),
        )
        ledger["BackfillPartition"].objects.bulk_create(
            ledger["BackfillPartition"](job=job, partition_date=dt) for dt in dates
        )
    return str(job.pk)


def backfill_job(job_id: str) -> BackfillJobRecord | None:
    """A backfill job with its partitions, or ``None`` when the id is unknown."""
    if not job_id.isdigit():
        return None
    with door(_FEATURE) as schema, schema.models(schema.LEDGER_APP) as ledger:
        job = ledger["BackfillJob"].objects.filter(pk=int(job_id)).first()
        return None if job is None else _job_record(ledger, job)


def running_backfill_jobs(dataset: str) -> list[BackfillJobRecord]:
    """Every backfill job of ``dataset`` the ledger says is running."""
    with door(_FEATURE) as schema, schema.models(schema.LEDGER_APP) as ledger:
        jobs = ledger["BackfillJob"].objects.filter(dataset=dataset, state="running")
        return [_job_record(ledger, job) for job in jobs]


def set_backfill_job_state(
    job_id: str, state: str, *, parameters: Mapping[str, Any] | None = None
) -> None:
    """Move a backfill job to ``state`` (``running`` also refreshes its parameters)."""
    from django.utils import timezone

    now = timezone.now()
    changes: dict[str, Any] = {"state": state}
    if state == "running":
        changes.update(started_at=now, finished_at=None)
    else:
        changes["finished_at"] = now
    if parameters is not None:
        changes["parameters"] = dict(parameters)
    with door(_FEATURE) as schema, schema.models(schema.LEDGER_APP) as ledger:
        ledger["BackfillJob"].objects.filter(pk=int(job_id)).update(**changes)


def merge_backfill_job_parameters(job_id: str, changes: Mapping[str, Any]) -> None:
    """Merge ``changes`` into a backfill job's parameters, its state unchanged (in one
    transaction holding the job's row lock); nothing for an unknown job."""
    from django.db import transaction

    if not job_id.isdigit():
        return
    with (
        door(_FEATURE) as schema,
        schema.models(schema.LEDGER_APP) as ledger,
        transaction.atomic(),
    ):
        jobs = ledger["BackfillJob"].objects
        job = jobs.select_for_update().filter(pk=int(job_id)).first()
        if job is not None:
            jobs.filter(pk=job.pk).update(parameters={**dict(job.parameters), **changes})


def update_backfill_partition(
    job_id: str,
    dt: date,
    *,
    state: str,
    attempts: int,
    error: str = "",
    rows: int | None = None,
    claimed_by: str = "",
) -> None:
    """Record the state of one partition of a backfill job."""
    changes = _partition_changes(state, error, rows, claimed_by)
    changes["attempts"] = attempts
    with door(_FEATURE) as schema, schema.models(schema.LEDGER_APP) as ledger:
        ledger["BackfillPartition"].objects.filter(job_id=int(job_id), partition_date=dt).update(
            **changes
        )


def end_backfill_partition(
    job_id: str,
    ended: BackfillPartitionRecord,
    job_state: Callable[[BackfillJobRecord], str],
) -> bool:
    """Record a partition's end (its attempts as counted) and then the job's state as
    ``job_state`` reads it off the job, in one transaction holding the job's row lock:
    workers ending a job's last partitions at once, or a cancel meanwhile, never leave it
    running nor overwrite each other. ``False`` when the job has no such partition."""
    from django.db import transaction
    from django.utils import timezone

    if not job_id.isdigit():
        return False
    changes = _partition_changes(ended.state, ended.error, ended.rows, ended.claimed_by)
    with (
        door(_FEATURE) as schema,
        schema.models(schema.LEDGER_APP) as ledger,
        transaction.atomic(),
    ):
        partition = ledger["BackfillPartition"].objects.filter(
            job_id=int(job_id), partition_date=ended.dt
        )
        if not partition.update(**changes):  # first: SQLite's write lock before any read
            return False
        job = ledger["BackfillJob"].objects.select_for_update().get(pk=int(job_id))
        state = job_state(_job_record(ledger, job))
        if state != job.state:
            finished = None if state == "running" else timezone.now()
            ledger["BackfillJob"].objects.filter(pk=job.pk).update(
                state=state, finished_at=finished
            )
    return True


def _partition_changes(state: str, error: str, rows: int | None, claimed_by: str) -> dict[str, Any]:
    """A partition row's columns for ``state`` (its start or its end stamped now)."""
    from django.utils import timezone

    now = timezone.now()
    changes: dict[str, Any] = {
        "state": state,
        "last_error": error[:4000],
        "rows_written": rows,
        "claimed_by": claimed_by,
        "updated_at": now,
    }
    changes["started_at" if state == "running" else "finished_at"] = now
    return changes


def _job_record(ledger: Mapping[str, Any], job: Any) -> BackfillJobRecord:
    partitions = ledger["BackfillPartition"].objects.filter(job=job).order_by("partition_date")
    return BackfillJobRecord(
        job_id=str(job.pk),
        dataset=job.dataset,
        start=job.start_date,
        end=job.end_date,
        state=job.state,
        parameters=dict(job.parameters),
        max_attempts=job.max_attempts,
        partitions=tuple(
            BackfillPartitionRecord(
                dt=p.partition_date,
                state=p.state,
                attempts=p.attempts,
                error=p.last_error,
                rows=p.rows_written,
                claimed_by=p.claimed_by,
            )
            for p in partitions
        ),
    )
