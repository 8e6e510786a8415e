"""The backfill job and partition ledger: in the database, or as JSON under ``_state/``.

:func:`open_ledger` picks the database (tables ``etl_backfill_job`` and
``etl_backfill_partition`` of the schema) when a database URL is configured and the
``schema`` extra is installed, and otherwise one JSON document per job at
``_state/data_pipeline/backfills/<job id>.json`` in the object store. The store
ledger changes a job's document only by compare-and-put
(:class:`etl_core.storage.Records`): workers on several hosts updating partitions
of one job re-read and retry instead of overwriting each other, so no update is
lost.

A job records its owner (this process run's holder id, not ``host:pid``). While a
job runs, its process holds the job's lease
(``_state/data_pipeline/backfill-leases/<job id>.json``, renewed by a heartbeat;
:mod:`etl_core.storage.leases`), in both ledgers: a running job blocks another
backfill of overlapping dates of the same dataset, and once its lease is free
(released, expired, or its process known gone) the job can be resumed. A job
recorded as running without a lease (written before job leases) has no heartbeat
and counts as not running.

A job also records who runs it (:class:`Runner`, ``parameters["runner"]``): the
executor, the process that started or resumed it (host, pid, the process's start
time) and when, and when it was handed over; :mod:`data_pipeline.backfill_status`
reads it, with the leases, to tell a running job from a stalled one. A job recorded
before runners has none (owner unknown).

A job enqueued with ``--no-wait`` is handed over (:meth:`Ledger.hand_over`): its
process records the hand-over and releases the lease as it returns, the job stays
``running``, and the workers record each partition's end and the job's. No process
runs such a job, so nothing refuses a resume or an overlapping backfill while its
units are queued; either one only repeats work (partition units are idempotent, and
a partition's own lease keeps two writers of it apart). Holding the lease instead
would leave it to a process that is gone: free at once on its own host, held until
its expiry on every other one.
"""

from __future__ import annotations

import json
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime
from typing import Any, Protocol

from data_pipeline import db
from data_pipeline.db import BackfillJobRecord, BackfillPartitionRecord
from data_pipeline.errors import BackfillConflictError
from etl_core.errors import FieldError, LeaseBusyError
from etl_core.layout import state_key, state_prefix
from etl_core.storage import (
    NO_CHANGE,
    Holder,
    Lease,
    NoChange,
    ObjectStore,
    Records,
    acquire_lease,
    read_lease,
    this_holder,
)

__all__ = [
    "JOB_LEASE_SECONDS",
    "DatabaseLedger",
    "JobLeases",
    "Ledger",
    "Runner",
    "StoreLedger",
    "job_lease_key",
    "open_ledger",
    "this_process",
]

_LANE = "data_pipeline"
_PREFIX = state_prefix(_LANE, "backfills")
JOB_LEASE_SECONDS = 300.0
"""How long a job's lease lasts without a heartbeat (a dead job on another host is
resumable after at most this long; on the same host and pid namespace at once)."""


def this_process() -> str:
    """This process run's holder id, as ledgers record owners (unique per run)."""
    return this_holder().id


@dataclass(frozen=True)
class Runner:
    """Who runs a backfill job, as recorded when it starts or resumes.

    Attributes:
        executor: ``local`` (the process, its pool) or ``celery`` (units on workers).
        holder: The process that started or resumed the job (host, pid, start time).
        started_at: When it did (epoch seconds).
        handed_over_at: When the job was left to the workers (``--no-wait``), else ``None``.
    """

    executor: str
    holder: Holder
    started_at: float
    handed_over_at: float | None = None

    @classmethod
    def this(cls, executor: str) -> Runner:
        """This process, starting or resuming a job now with ``executor``."""
        return cls(executor, this_holder(), time.time())

    @classmethod
    def of(cls, job: BackfillJobRecord) -> Runner | None:
        """The job's runner; ``None`` for a job recorded without one (or unreadable)."""
        raw = job.parameters.get("runner")
        if not isinstance(raw, dict):
            return None
        started, handed = _moment(raw.get("started_at")), _moment(raw.get("handed_over_at"))
        if started is None:
            return None
        return cls(
            executor=str(raw.get("executor", "")),
            holder=Holder.from_dict(raw.get("holder")),
            started_at=started,
            handed_over_at=handed,
        )

    def to_dict(self) -> dict[str, Any]:
        """The runner as the job's parameters hold it."""
        return {
            "executor": self.executor,
            "holder": self.holder.to_dict(),
            "started_at": self.started_at,
            "handed_over_at": self.handed_over_at,
        }


def _moment(raw: Any) -> float | None:
    """An epoch time as a runner records it: a finite number, never a boolean; else ``None``."""
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        return None
    return float(raw)


def _handed_over(parameters: dict[str, Any], job: BackfillJobRecord) -> dict[str, Any]:
    """``parameters`` with the job's runner marked as handed over to the workers now."""
    runner = Runner.of(job) or Runner.this("celery")
    return {**parameters, "runner": replace(runner, handed_over_at=time.time()).to_dict()}


def job_lease_key(job_id: str) -> str:
    """Where the lease of a running backfill job lives."""
    return state_key(_LANE, "backfill-leases", f"{job_id}.json")


class Ledger(Protocol):
    """Where backfill jobs and their partitions are recorded."""

    kind: str
    store: ObjectStore
    """Where the job and partition leases live."""

    def create(
        self,
        dataset: str,
        start: date,
        end: date,
        dates: list[date],
        *,
        parameters: dict[str, Any],
        max_attempts: int,
        runner: Runner | None = None,
    ) -> BackfillJobRecord:
        """Record a new running job owned (and leased) by this process, run by ``runner``
        (default: this process, executor ``local``)."""

    def get(self, job_id: str) -> BackfillJobRecord | None:
        """The job, or ``None``."""

    def running(self, dataset: str) -> list[BackfillJobRecord]:
        """Jobs of ``dataset`` recorded as running (alive or not)."""

    def alive(self, job: BackfillJobRecord) -> bool:
        """Whether a job recorded as running is still run by a live process (its lease)."""

    def set_state(
        self, job_id: str, state: str, *, owner: str | None = None, runner: Runner | None = None
    ) -> None:
        """Move the job to ``state``; ``owner`` (and ``runner``) takes it over (resume)."""

    def update(self, job_id: str, partition: BackfillPartitionRecord) -> None:
        """Record one partition's state."""

    def hand_over(self, job_id: str) -> None:
        """Record the hand-over in the job's runner and release its lease, its state
        unchanged: its units are on the broker's queue and the workers record their ends
        (``--no-wait``)."""

    def end_partition(self, job_id: str, ended: BackfillPartitionRecord) -> bool:
        """Record how a partition's unit ended (its attempts as counted when they started),
        and the job's end once none of its partitions is left to run; ``False`` when the
        job has no such partition."""


def check_no_overlap(
    ledger: Ledger, dataset: str, start: date, end: date, *, besides: str | None = None
) -> None:
    """Refuse a backfill while a live job of the same dataset (other than job ``besides``,
    the one asking) covers any of its dates.

    Raises:
        BackfillConflictError: naming the running job.
    """
    for job in ledger.running(dataset):
        if job.job_id == besides:
            continue
        if job.start <= end and start <= job.end and ledger.alive(job):
            raise BackfillConflictError(
                f"backfill job {job.job_id} of dataset {dataset!r} "
                f"({job.start}..{job.end}) is running (owner {job.parameters.get('owner')}); "
                "wait for it or choose dates that do not overlap",
                [FieldError("start/end", "overlaps a running backfill", "backfill request")],
            )


class JobLeases:
    """The leases of the backfill jobs this process runs, taken on start or resume.

    Args:
        store: Where the leases live (the store, whichever ledger holds the jobs).
        ttl: Seconds a lease lasts without a heartbeat.
    """

    def __init__(self, store: ObjectStore, ttl: float = JOB_LEASE_SECONDS) -> None:
        self.store = store
        self.ttl = ttl
        self._held: dict[str, Lease] = {}
        self._lock = threading.Lock()

    def take(self, job_id: str) -> None:
        """Hold job ``job_id``'s lease (renewed by a heartbeat) until :meth:`give_up`.

        Raises:
            BackfillConflictError: a live process runs the job.
        """
        try:
            lease = acquire_lease(
                self.store, job_lease_key(job_id), ttl=self.ttl, purpose=f"backfill {job_id}"
            )
        except LeaseBusyError as busy:
            raise BackfillConflictError(
                f"backfill job {job_id} is still running ({busy.holder})",
                [FieldError("job_id", "job is running", "backfill request")],
            ) from busy
        with self._lock:
            self._held[job_id] = lease

    def give_up(self, job_id: str) -> None:
        """Release job ``job_id``'s lease, if this process holds it."""
        with self._lock:
            lease = self._held.pop(job_id, None)
        if lease is not None:
            lease.release()

    def alive(self, job: BackfillJobRecord) -> bool:
        """Whether ``job`` is running and its lease is held by a live process."""
        if job.state != "running":
            return False
        held = read_lease(self.store, job_lease_key(job.job_id))
        return held is not None and not held.is_free(time.time())


class StoreLedger:
    """A JSON document per job in the object store (no database configured)."""

    kind = "store"

    def __init__(self, store: ObjectStore, *, lease_seconds: float = JOB_LEASE_SECONDS) -> None:
        self.store = store
        self._jobs = Records(store, decode=_decode_job, encode=_encode_job)
        self._leases = JobLeases(store, lease_seconds)

    def create(
        self,
        dataset: str,
        start: date,
        end: date,
        dates: list[date],
        *,
        parameters: dict[str, Any],
        max_attempts: int,
        runner: Runner | None = None,
    ) -> BackfillJobRecord:
        job_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
        job = BackfillJobRecord(
            job_id=job_id,
            dataset=dataset,
            start=start,
            end=end,
            state="running",
            parameters=_owned(parameters, runner),
            max_attempts=max_attempts,
            partitions=tuple(
                BackfillPartitionRecord(dt, "pending", 0, "", None, "") for dt in dates
            ),
        )
        self._jobs.put(_job_key(job_id), job, expect=None)
        self._leases.take(job_id)
        return job

    def get(self, job_id: str) -> BackfillJobRecord | None:
        try:
            found = self._jobs.read(_job_key(job_id))
        except BackfillConflictError:  # unreadable
            return None
        return found.value if found is not None else None

    def running(self, dataset: str) -> list[BackfillJobRecord]:
        jobs = []
        for info in self.store.list(_PREFIX):
            job = self.get(info.key[len(_PREFIX) :].removesuffix(".json"))
            if job is not None and job.dataset == dataset and job.state == "running":
                jobs.append(job)
        return jobs

    def alive(self, job: BackfillJobRecord) -> bool:
        return self._leases.alive(job)

    def set_state(
        self, job_id: str, state: str, *, owner: str | None = None, runner: Runner | None = None
    ) -> None:
        if state == "running":
            self._leases.take(job_id)
        owned = _taken_over(owner, runner)
        self._change(
            job_id, lambda job: replace(job, state=state, parameters={**job.parameters, **owned})
        )
        if state != "running":
            self._leases.give_up(job_id)

    def update(self, job_id: str, partition: BackfillPartitionRecord) -> None:
        def record(job: BackfillJobRecord) -> BackfillJobRecord:
            partitions = tuple(partition if p.dt == partition.dt else p for p in job.partitions)
            return replace(job, partitions=partitions)

        self._change(job_id, record)

    def hand_over(self, job_id: str) -> None:
        self._change(job_id, lambda job: replace(job, parameters=_handed_over(job.parameters, job)))
        self._leases.give_up(job_id)

    def end_partition(self, job_id: str, ended: BackfillPartitionRecord) -> bool:
        """One compare-and-put records the partition's end and, when it was the last, the
        job's (a worker's unit ends with one write, not three reads and a write)."""

        def end(job: BackfillJobRecord | None) -> BackfillJobRecord | NoChange:
            after = _with_end(job, ended) if job is not None else None
            if after is None or _job_ended(after) == job:
                return NO_CHANGE
            return _job_ended(after)

        try:
            update = self._jobs.update(_job_key(job_id), end)
        except BackfillConflictError:  # unreadable, as get() finds none
            return False
        return update.before is not None and _has_partition(update.before.value, ended)

    def _change(self, job_id: str, fn: Callable[[BackfillJobRecord], BackfillJobRecord]) -> None:
        """Change the job's document by compare-and-put; one the change leaves as it is is
        not written again (a worker already recorded what a following backfill records)."""

        def change(job: BackfillJobRecord | None) -> BackfillJobRecord | NoChange:
            if job is None:
                raise BackfillConflictError(f"backfill job {job_id!r} is not in the ledger")
            changed = fn(job)
            return NO_CHANGE if changed == job else changed

        self._jobs.update(_job_key(job_id), change)


class DatabaseLedger:
    """The schema's ``etl_backfill_job`` / ``etl_backfill_partition`` tables.

    Args:
        store: Where the jobs' leases live.
        lease_seconds: How long a job's lease lasts without a heartbeat.
    """

    kind = "database"

    def __init__(self, store: ObjectStore, *, lease_seconds: float = JOB_LEASE_SECONDS) -> None:
        self.store = store
        self._leases = JobLeases(store, lease_seconds)

    def create(
        self,
        dataset: str,
        start: date,
        end: date,
        dates: list[date],
        *,
        parameters: dict[str, Any],
        max_attempts: int,
        runner: Runner | None = None,
    ) -> BackfillJobRecord:
        job_id = db.create_backfill_job(
            dataset,
            start,
            end,
            dates,
            parameters=_owned(parameters, runner),
            max_attempts=max_attempts,
            requested_by=this_process(),
        )
        self._leases.take(job_id)
        job = db.backfill_job(job_id)
        assert job is not None
        return job

    def get(self, job_id: str) -> BackfillJobRecord | None:
        return db.backfill_job(job_id)

    def running(self, dataset: str) -> list[BackfillJobRecord]:
        return db.running_backfill_jobs(dataset)

    def alive(self, job: BackfillJobRecord) -> bool:
        return self._leases.alive(job)

    def set_state(
        self, job_id: str, state: str, *, owner: str | None = None, runner: Runner | None = None
    ) -> None:
        if state == "running":
            self._leases.take(job_id)
        job = db.backfill_job(job_id)
        parameters = None
        owned = _taken_over(owner, runner)
        if owned and job is not None:
            parameters = {**job.parameters, **owned}
        db.set_backfill_job_state(job_id, state, parameters=parameters)
        if state != "running":
            self._leases.give_up(job_id)

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

    def hand_over(self, job_id: str) -> None:
        job = db.backfill_job(job_id)
        if job is not None:
            handed = _handed_over({}, job)
            db.merge_backfill_job_parameters(job_id, handed)
        self._leases.give_up(job_id)

    def end_partition(self, job_id: str, ended: BackfillPartitionRecord) -> bool:
        if not db.end_backfill_partition(job_id, ended, lambda job: _job_ended(job).state):
            return False
        job = db.backfill_job(job_id)
        if job is not None and job.state != "running":
            self._leases.give_up(job_id)
        return True


def _owned(parameters: dict[str, Any], runner: Runner | None) -> dict[str, Any]:
    """A new job's parameters: owned by this process, run by ``runner`` (default local)."""
    chosen = runner or Runner.this("local")
    return {**parameters, "owner": this_process(), "runner": chosen.to_dict()}


def _taken_over(owner: str | None, runner: Runner | None) -> dict[str, Any]:
    """The parameters a resume changes: the owner, and the runner when given."""
    changes: dict[str, Any] = {"owner": owner} if owner else {}
    if runner is not None:
        changes["runner"] = runner.to_dict()
    return changes


def _has_partition(job: BackfillJobRecord, ended: BackfillPartitionRecord) -> bool:
    return any(p.dt == ended.dt for p in job.partitions)


def _with_end(job: BackfillJobRecord, ended: BackfillPartitionRecord) -> BackfillJobRecord | None:
    """``job`` with its partition's end, the attempts it counted kept; ``None`` when the
    job has no such partition."""
    if not _has_partition(job, ended):
        return None
    partitions = tuple(
        replace(ended, attempts=p.attempts) if p.dt == ended.dt else p for p in job.partitions
    )
    return replace(job, partitions=partitions)


def _job_ended(job: BackfillJobRecord) -> BackfillJobRecord:
    """A running job whose partitions all ended, as succeeded or failed; else unchanged."""
    states = {p.state for p in job.partitions}
    if job.state != "running" or states & {"pending", "running", "cancelled"}:
        return job
    return replace(job, state="failed" if "failed" in states else "succeeded")


def open_ledger(
    store: ObjectStore, database_url: str | None, *, lease_seconds: float = JOB_LEASE_SECONDS
) -> Ledger:
    """The database ledger when a URL is given and the schema extra installed, else the
    store's. The URL is the settings' (``ETL_DATABASE_URL``, else ``DATABASE_URL``, blank
    counting as unset); ``None`` keeps the ledger in the store whatever the environment
    says (a local ``--no-load`` backfill)."""
    if database_url and db.schema_installed():
        db.connect(database_url, feature="the backfill ledger")
        return DatabaseLedger(store, lease_seconds=lease_seconds)
    return StoreLedger(store, lease_seconds=lease_seconds)


def _job_key(job_id: str) -> str:
    return f"{_PREFIX}{job_id}.json"


def _encode_job(job: BackfillJobRecord) -> bytes:
    return json.dumps(asdict(job), default=str, indent=1).encode()


def _decode_job(data: bytes, key: str) -> BackfillJobRecord:
    """A stored job document.

    Raises:
        BackfillConflictError: the document is unreadable.
    """
    try:
        raw = json.loads(data)
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
    except (ValueError, TypeError, KeyError) as exc:
        raise BackfillConflictError(f"backfill job document {key} is unreadable: {exc}") from exc
