"""What a backfill job recorded as ``running`` is doing now: running, queued or stalled.

The ledger says ``running`` from a job's start to its end, and a job whose process was
killed (SIGKILL, a lost host) never reaches its end. :func:`job_status` reads the job's
:class:`~data_pipeline.ledger.Runner` and the leases to tell the truth:

- ``running``: the process that runs the job holds its lease, or a partition of it in
  flight is being written (its partition lease is live: a worker on it);
- ``queued``: handed to the Celery workers (``--no-wait``), partitions pending and none
  in flight: its units wait on the broker's queue;
- ``stalled``: run by a process that is gone (same host and pid namespace, no such pid,
  or the pid now another process's: its start time differs) or whose lease expired
  without a heartbeat, or whose in-flight partitions' leases all expired (nobody writes
  them), with nothing else live: it ends only when resumed;
- ``unknown``: a job recorded before runners (owner unknown) with no lease held and no
  partition in flight: queued on workers, or stalled, cannot be told apart.

A partition lease released less than :data:`RELEASED_GRACE_SECONDS` ago still counts as
in hand (a unit between two attempts, or recording its end): a release marks the lease
expired at once. Jobs in any other state are reported as recorded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from data_pipeline.db import BackfillJobRecord, BackfillPartitionRecord
from data_pipeline.lease import lease_key
from data_pipeline.ledger import Runner, job_lease_key
from etl_core.storage import LeaseState, ObjectStore, read_lease

__all__ = [
    "QUEUED",
    "RELEASED_GRACE_SECONDS",
    "STALLED",
    "UNKNOWN",
    "JobStatus",
    "job_status",
    "resume_command",
]

STALLED = "stalled"
QUEUED = "queued"
UNKNOWN = "unknown"

RELEASED_GRACE_SECONDS = 120.0
"""How long a released partition lease still counts as its unit's: twice the longest wait
between two attempts of a unit (``max_delay``: 30 s local, 60 s on Celery workers)."""


@dataclass(frozen=True)
class JobStatus:
    """A backfill job's state as things stand.

    Attributes:
        state: The ledger's state, or for a job recorded ``running``: ``running``,
            ``queued``, ``stalled`` or ``unknown``.
        detail: Who runs it and why the state was judged so (empty for an ended job).
        resume: The command that resumes it, when it needs one (stalled, unknown).
    """

    state: str
    detail: str = ""
    resume: str = ""


def job_status(
    store: ObjectStore, job: BackfillJobRecord, *, now: float | None = None
) -> JobStatus:
    """The state of ``job`` now, judged by its runner and the leases in ``store``."""
    if job.state != "running":
        return JobStatus(job.state)
    moment = time.time() if now is None else now
    runner = Runner.of(job)
    held = read_lease(store, job_lease_key(job.job_id))
    in_flight = [p for p in job.partitions if p.state == "running"]
    writers = _writers(store, job.dataset, in_flight, moment)
    pending = sum(p.state == "pending" for p in job.partitions)
    resume = resume_command(job, runner)
    if held is not None and not held.is_free(moment):
        how = (
            f" (executor {runner.executor}) since {_when(runner.started_at)}"
            if runner is not None
            else " (who runs it was not recorded)"
        )
        return JobStatus(
            "running",
            f"run by {held.holder.describe()}{how}; its lease is renewed until at least "
            f"{_when(held.expires_at)}",
        )
    if writers:
        names = sorted({w.holder.describe() for w in writers})
        written = f"{len(writers)} partition(s) being written by {', '.join(names[:5])}"
        return JobStatus("running", f"{written}; {_who(runner, held)}")
    if in_flight:
        why = (
            f"none of its {len(in_flight)} partition(s) in flight "
            f"({', '.join(p.dt.isoformat() for p in in_flight[:5])}) has a live lease: "
            "no process writes them"
        )
        return JobStatus(STALLED, f"{_who(runner, held)}; {why}", resume)
    if runner is None:
        why = (
            "who runs it was not recorded (a job from before runners were) and no lease "
            "is held: its units may wait on the workers' queue, or its process is gone"
        )
        return JobStatus(UNKNOWN, why, resume)
    if runner.handed_over_at is not None and pending:
        return JobStatus(
            QUEUED,
            f"{_who(runner, held)}; {pending} partition(s) wait on the queue, none is being "
            "written now (a worker consuming the data_pipeline queue takes them)",
        )
    if runner.handed_over_at is not None:
        why = "no partition is left pending or in flight, yet the job was not ended"
        return JobStatus(STALLED, f"{_who(runner, held)}; {why}", resume)
    return JobStatus(STALLED, _who(runner, held), resume)


def resume_command(job: BackfillJobRecord, runner: Runner | None) -> str:
    """The command that resumes ``job`` (with the executor it ran with, and ``--no-load``
    when it was started with it: a resume must do as the start did)."""
    executor = " --executor celery" if runner is not None and runner.executor == "celery" else ""
    no_load = " --no-load" if job.parameters.get("no_load") is True else ""
    return (
        f"etl-data-pipeline backfill --dataset {job.dataset} --resume {job.job_id}"
        f"{executor}{no_load}"
    )


def _writers(
    store: ObjectStore, dataset: str, in_flight: list[BackfillPartitionRecord], now: float
) -> list[LeaseState]:
    """The live leases of the partitions in flight: unexpired (or released within
    :data:`RELEASED_GRACE_SECONDS`: between two attempts, or recording its end), their
    holder not known gone."""
    live = []
    for partition in in_flight:
        lease = read_lease(store, lease_key(dataset, partition.dt))
        if lease is None or lease.holder.is_gone():
            continue
        until = lease.expires_at + (RELEASED_GRACE_SECONDS if lease.released else 0.0)
        if until > now:
            live.append(lease)
    return live


def _who(runner: Runner | None, held: LeaseState | None) -> str:
    """Who ran the job and how it is known gone: its process, or its lease."""
    if runner is None:
        return "who runs it was not recorded"
    process = (
        f"started by {runner.holder.describe()} (executor {runner.executor}) at "
        f"{_when(runner.started_at)}"
    )
    if runner.handed_over_at is not None:
        return f"{process}, handed to the workers at {_when(runner.handed_over_at)}"
    if runner.holder.is_gone():
        return f"{process}: that process is gone (no such pid on this host, or a new one)"
    if held is None:
        return f"{process}: it holds no lease"
    if held.released:
        return f"{process}: its lease was released without ending the job"
    return (
        f"{process}: its lease expired at {_when(held.expires_at)} without a heartbeat "
        "(the process died or hangs)"
    )


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")
