"""The backfill job and partition ledger: in the database, or as JSON under ``_state/``.

:func:`open_ledger` picks the database (tables ``etl_backfill_job`` and
``etl_backfill_partition`` of the schema) when a database URL is configured and the
``schema`` extra is installed, and otherwise one JSON document per job at
``_state/data_pipeline/backfills/<job id>.json`` in the object store. A job records
its owner (``host:pid``) so that a job whose process died can be told from one that
still runs: a running job blocks another backfill of overlapping dates of the same
dataset, a dead one can be resumed.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
from dataclasses import asdict, replace
from datetime import UTC, date, datetime
from typing import Any, Protocol

from data_pipeline import db
from data_pipeline.db import BackfillJobRecord, BackfillPartitionRecord
from data_pipeline.errors import BackfillConflictError
from etl_core.errors import FieldError, ObjectNotFoundError
from etl_core.layout import state_prefix
from etl_core.runtime import process_alive
from etl_core.storage import ObjectStore

__all__ = ["DatabaseLedger", "Ledger", "StoreLedger", "job_alive", "open_ledger", "this_process"]

_PREFIX = state_prefix("data_pipeline", "backfills")


def this_process() -> str:
    """``host:pid`` of this process, as ledgers record owners."""
    return f"{socket.gethostname()}:{os.getpid()}"


def job_alive(job: BackfillJobRecord) -> bool:
    """Whether a running job's owner process may still be running it."""
    if job.state != "running":
        return False
    host, _, pid = str(job.parameters.get("owner", "")).rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another host's process: assume it runs
    return process_alive(int(pid))


class Ledger(Protocol):
    """Where backfill jobs and their partitions are recorded."""

    kind: str

    def create(
        self,
        dataset: str,
        start: date,
        end: date,
        dates: list[date],
        *,
        parameters: dict[str, Any],
        max_attempts: int,
    ) -> BackfillJobRecord:
        """Record a new running job owned by this process."""

    def get(self, job_id: str) -> BackfillJobRecord | None:
        """The job, or ``None``."""

    def running(self, dataset: str) -> list[BackfillJobRecord]:
        """Jobs of ``dataset`` recorded as running (alive or not)."""

    def set_state(self, job_id: str, state: str, *, owner: str | None = None) -> None:
        """Move the job to ``state``; ``owner`` takes it over (resume)."""

    def update(self, job_id: str, partition: BackfillPartitionRecord) -> None:
        """Record one partition's state."""


def check_no_overlap(ledger: Ledger, dataset: str, start: date, end: date) -> None:
    """Refuse a backfill while a live job of the same dataset covers any of its dates.

    Raises:
        BackfillConflictError: naming the running job.
    """
    for job in ledger.running(dataset):
        if job.start <= end and start <= job.end and job_alive(job):
            raise BackfillConflictError(
                f"backfill job {job.job_id} of dataset {dataset!r} "
                f"({job.start}..{job.end}) is running (owner {job.parameters.get('owner')}); "
                "wait for it or choose dates that do not overlap",
                [FieldError("--from/--to", "overlaps a running backfill", "command line")],
            )


class StoreLedger:
    """A JSON document per job in the object store (no database configured)."""

    kind = "store"

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._lock = threading.Lock()

    def create(
        self,
        dataset: str,
        start: date,
        end: date,
        dates: list[date],
        *,
        parameters: dict[str, Any],
        max_attempts: int,
    ) -> BackfillJobRecord:
        job_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
        job = BackfillJobRecord(
            job_id=job_id,
            dataset=dataset,
            start=start,
            end=end,
            state="running",
            parameters={**parameters, "owner": this_process()},
            max_attempts=max_attempts,
            partitions=tuple(
                BackfillPartitionRecord(dt, "pending", 0, "", None, "") for dt in dates
            ),
        )
        self._write(job)
        return job

    def get(self, job_id: str) -> BackfillJobRecord | None:
        try:
            raw = json.loads(self.store.read_bytes(f"{_PREFIX}{job_id}.json"))
        except (ObjectNotFoundError, ValueError):
            return None
        return _job_from_json(raw)

    def running(self, dataset: str) -> list[BackfillJobRecord]:
        jobs = []
        for info in self.store.list(_PREFIX):
            job = self.get(info.key[len(_PREFIX) :].removesuffix(".json"))
            if job is not None and job.dataset == dataset and job.state == "running":
                jobs.append(job)
        return jobs

    def set_state(self, job_id: str, state: str, *, owner: str | None = None) -> None:
        with self._lock:
            job = self._require(job_id)
            parameters = {**job.parameters, **({"owner": owner} if owner else {})}
            self._write(replace(job, state=state, parameters=parameters))

    def update(self, job_id: str, partition: BackfillPartitionRecord) -> None:
        with self._lock:
            job = self._require(job_id)
            partitions = tuple(partition if p.dt == partition.dt else p for p in job.partitions)
            self._write(replace(job, partitions=partitions))

    def _require(self, job_id: str) -> BackfillJobRecord:
        job = self.get(job_id)
        if job is None:
            raise BackfillConflictError(f"backfill job {job_id!r} is not in the ledger")
        return job

    def _write(self, job: BackfillJobRecord) -> None:
        self.store.write_bytes(
            f"{_PREFIX}{job.job_id}.json", json.dumps(asdict(job), default=str, indent=1).encode()
        )


class DatabaseLedger:
    """The schema's ``etl_backfill_job`` / ``etl_backfill_partition`` tables."""

    kind = "database"

    def create(
        self,
        dataset: str,
        start: date,
        end: date,
        dates: list[date],
        *,
        parameters: dict[str, Any],
        max_attempts: int,
    ) -> BackfillJobRecord:
        job_id = db.create_backfill_job(
            dataset,
            start,
            end,
            dates,
            parameters={**parameters, "owner": this_process()},
            max_attempts=max_attempts,
            requested_by=this_process(),
        )
        job = db.backfill_job(job_id)
        assert job is not None
        return job

    def get(self, job_id: str) -> BackfillJobRecord | None:
        return db.backfill_job(job_id)

    def running(self, dataset: str) -> list[BackfillJobRecord]:
        return db.running_backfill_jobs(dataset)

    def set_state(self, job_id: str, state: str, *, owner: str | None = None) -> None:
        job = db.backfill_job(job_id)
        parameters = None
        if owner and job is not None:
            parameters = {**job.parameters, "owner": owner}
        db.set_backfill_job_state(job_id, state, parameters=parameters)

    def update(self, job_id: str, partition: BackfillPartitionRecord) -> None:
        db.update_backfill_partition(
            job_id,
            partition.dt,
            state=partition.state,
            attempts=partition.attempts,
            error=partition.error[:4000],
            rows=partition.rows,
            claimed_by=partition.claimed_by,
        )


def open_ledger(store: ObjectStore, database_url: str | None) -> Ledger:
    """The database ledger when a URL is set and the schema extra installed, else the store's."""
    url = database_url or os.environ.get("DATABASE_URL")
    if url and db.schema_installed():
        db.connect(url, feature="the backfill ledger")
        return DatabaseLedger()
    return StoreLedger(store)


def _job_from_json(raw: dict[str, Any]) -> BackfillJobRecord:
    return BackfillJobRecord(
        job_id=raw["job_id"],
        dataset=raw["dataset"],
        start=date.fromisoformat(raw["start"]),
        end=date.fromisoformat(raw["end"]),
        state=raw["state"],
        parameters=raw["parameters"],
        max_attempts=raw["max_attempts"],
        partitions=tuple(
            BackfillPartitionRecord(
                dt=date.fromisoformat(p["dt"]),
                state=p["state"],
                attempts=p["attempts"],
                error=p["error"],
                rows=p["rows"],
                claimed_by=p["claimed_by"],
            )
            for p in raw["partitions"]
        ),
    )
