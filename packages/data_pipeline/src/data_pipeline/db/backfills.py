"""The backfill ledger's tables (``etl_backfill_job``, ``etl_backfill_partition``).

What :class:`data_pipeline.ledger.DatabaseLedger` reads and writes; each function is one
unit of work through the door and returns plain records, never Django objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from data_pipeline.db.door import door

__all__ = [
    "BackfillJobRecord",
    "BackfillPartitionRecord",
    "backfill_job",
    "create_backfill_job",
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
    from django.utils import timezone

    now = timezone.now()
    changes: dict[str, Any] = {
        "state": state,
        "attempts": attempts,
        "last_error": error,
        "rows_written": rows,
        "claimed_by": claimed_by,
        "updated_at": now,
    }
    if state == "running":
        changes["started_at"] = now
    else:
        changes["finished_at"] = now
    with door(_FEATURE) as schema, schema.models(schema.LEDGER_APP) as ledger:
        ledger["BackfillPartition"].objects.filter(job_id=int(job_id), partition_date=dt).update(
            **changes
        )


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
