"""Backfills: one work unit per partition over a date range, with a ledger, retries and resume.

:func:`plan_backfill` lists the partitions of a range (plus ``lookback`` days before
it) that have validated input, with their objects and bytes. :func:`run_backfill`
hands a job's unfinished partitions to an executor of :mod:`etl_core.work`, one
unit each; a retryable failure is retried up to the job's ``max_attempts``, a fatal
one is not, and a failure does not stop the others.
Every state change is written to the ledger first, so a killed job resumes with
exactly the partitions not recorded as succeeded (a partition caught mid-way is
simply redone: its output is replaced whole and its load replaces its rows).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import partial

from data_pipeline.db import BackfillJobRecord, BackfillPartitionRecord
from data_pipeline.errors import BackfillConflictError
from data_pipeline.layout import input_objects, inputs_by_day
from data_pipeline.ledger import Ledger, Runner, check_no_overlap, this_process
from data_pipeline.pipeline import PartitionOutcome, withdrawal_due
from data_pipeline.withdraw import noticed_dates
from data_pipeline.work import (
    WITHDRAWN_NOTE,
    PipelineContext,
    partition_of,
    partition_unit,
    run_unit,
    succeeded_record,
)
from etl_core.contracts import Contract
from etl_core.errors import ConfigError, FieldError
from etl_core.logging import bound_context
from etl_core.metrics import counter
from etl_core.storage import ObjectInfo, ObjectStore
from etl_core.work import Executor, UnitResult, WorkUnit

__all__ = [
    "BackfillSummary",
    "PlannedPartition",
    "backfill_units",
    "find_backfill_job",
    "plan_backfill",
    "resume_backfill",
    "run_backfill",
    "start_backfill",
]

logger = logging.getLogger(__name__)

MAX_RANGE_DAYS = 3660
_REQUEST = "backfill request"
JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
"""A job id as the ledgers make them (a number, or a time and a random suffix): a name
of the store's ledger, never a path."""
PROBE_DAYS = 31
"""The longest range planned by asking each day for its deliveries; a longer one lists
the dataset's validated prefix once (:func:`plan_backfill`)."""
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
    withdrawn: int = 0
    """Of the succeeded, the partitions withdrawn (their validated deliveries all gone)."""


def plan_backfill(
    store: ObjectStore,
    contract: Contract,
    start: date,
    end: date,
    *,
    lookback: int = 0,
    load: bool = True,
) -> list[PlannedPartition]:
    """The partitions from ``start - lookback`` days to ``end`` that have validated input,
    and those the pipeline built in the range whose validated deliveries the file lane
    withdrew (:func:`~data_pipeline.pipeline.withdrawal_due`, with ``load`` a day left with
    only its load marker too: withdrawn by their unit; planned with no objects). Their
    candidates are the days of the dataset's withdrawal notices (one listing): a day merely
    without input is not planned.

    Raises:
        ConfigError: the range is reversed, longer than :data:`MAX_RANGE_DAYS` with its
            lookback, or ``lookback`` is negative or reaches before 0001-01-01.
    """
    first = _first_day(start, end, lookback)
    planned = {
        dt: PlannedPartition(dt, len(objects), sum(o.size for o in objects))
        for dt, objects in _inputs(store, contract.dataset, first, end)
    }
    for dt in noticed_dates(store, contract.dataset) - planned.keys():
        if first <= dt <= end and withdrawal_due(store, contract, dt, load=load):
            planned[dt] = PlannedPartition(dt, 0, 0)
    return [planned[dt] for dt in sorted(planned)]


def _inputs(
    store: ObjectStore, dataset: str, first: date, end: date
) -> list[tuple[date, list[ObjectInfo]]]:
    """The input objects of each day from ``first`` to ``end`` that has some.

    Up to :data:`PROBE_DAYS` days, each day is asked (a listing of its deliveries, one
    of its files); a longer range is planned from one listing of the dataset's validated
    prefix (:func:`~data_pipeline.layout.inputs_by_day`): ten years asked a day at a time
    are thousands of listings (minutes on S3) before the first partition starts.
    """
    days = (end - first).days + 1
    if days > PROBE_DAYS:
        return list(inputs_by_day(store, dataset, first, end).items())
    asked = ((first + timedelta(days=offset)) for offset in range(days))
    return [(dt, found) for dt in asked if (found := input_objects(store, dataset, dt))]


def _first_day(start: date, end: date, lookback: int) -> date:
    """The first day a backfill of ``start``..``end`` with ``lookback`` covers.

    The lookback counts towards :data:`MAX_RANGE_DAYS` (a range of a few days with a
    lookback of a century is a century of partitions to look up) and cannot reach before
    the first day of the calendar.

    Raises:
        ConfigError: the range is reversed, too long, or ``lookback`` is negative or
            reaches before 0001-01-01; naming the option at fault.
    """
    errors = []
    if end < start:
        errors.append(
            FieldError(
                "--from/--to",
                f"expected --from on or before --to, got {start} after {end}",
                _REQUEST,
            )
        )
    if lookback < 0:
        errors.append(
            FieldError("--lookback", f"expected 0 days or more, got {lookback}", _REQUEST)
        )
    elif start.toordinal() - lookback < date.min.toordinal():
        reach = f"reaches before {date.min} (at most {start.toordinal() - 1} days before {start})"
        errors.append(FieldError("--lookback", f"{lookback} days {reach}", _REQUEST))
    elif not errors and (end - start).days + lookback > MAX_RANGE_DAYS:
        days = (end - start).days + lookback
        errors.append(
            FieldError(
                "--from/--to/--lookback",
                f"expected at most {MAX_RANGE_DAYS} days from the first day (--from less "
                f"--lookback) to --to, got {days}; split the backfill",
                _REQUEST,
            )
        )
    if errors:
        raise ConfigError(
            f"backfill range {start}..{end} (lookback {lookback}) is invalid",
            errors,
        )
    return start - timedelta(days=lookback)


def start_backfill(
    ledger: Ledger,
    contract: Contract,
    start: date,
    end: date,
    plan: list[PlannedPartition],
    *,
    max_attempts: int,
    lookback: int,
    executor: str = "local",
    no_load: bool = False,
    elsewhere: Sequence[Callable[[], Ledger]] = (),
) -> BackfillJobRecord:
    """Record a new job for ``plan`` run by this process with ``executor``, refusing one
    that overlaps a running job of ``ledger`` or of the ledgers ``elsewhere`` opens;
    ``no_load`` (the job loads nothing: ``--no-load``, or a contract without ``[load]``)
    is recorded so that a resume does as the start did, whatever the contract says by
    then (a job kept in the store's ledger for want of loads stays resumable there)."""
    first = min([start, *(p.dt for p in plan)])
    others = [opener() for opener in elsewhere]
    _check_no_overlap(ledger, others, contract.dataset, first, end)
    job = ledger.create(
        contract.dataset,
        first,
        end,
        [p.dt for p in plan],
        parameters={
            "from": start.isoformat(),
            "to": end.isoformat(),
            "lookback": lookback,
            "no_load": no_load,
        },
        max_attempts=max_attempts,
        runner=Runner.this(executor),
    )
    _check_alone(ledger, others, job)
    return job


def _refuse_kept_elsewhere(
    ledger: Ledger,
    elsewhere: Sequence[Callable[[], Ledger]],
    dataset: str,
    job_id: str,
    *,
    no_load: bool,
) -> None:
    """Refuse the resume of job ``job_id`` that ``ledger`` lacks but another ledger keeps,
    naming that ledger and the option to change (else return: the job is unknown).

    Which ledger a backfill uses follows its options (``--no-load`` without a database,
    ``--executor celery``, ``database_url``): a resume asked differently from the start
    looks in the other one, and "unknown job" would send the operator looking for a
    job that is there.

    Raises:
        ConfigError: naming the ledger that keeps the job and the option to change.
    """
    for opener in elsewhere:
        other = opener()
        job = other.get(job_id)
        if job is None or job.dataset != dataset:
            continue
        if other.kind == "store" and not no_load:
            field, expected = "--no-load", "with --no-load (the store ledger keeps such jobs)"
        elif other.kind == "database" and no_load:
            field, expected = "--no-load", "without --no-load (the database ledger keeps it)"
        else:
            field, expected = (
                "--executor/--database-url",
                "the executor and database the job ran with",
            )
        raise ConfigError(
            f"backfill job {job_id} is in the {other.kind} ledger, not the {ledger.kind} ledger "
            f"this resume uses; resume it {expected}",
            [FieldError(field, f"expected {expected}", _REQUEST)],
        )


def _check_no_overlap(
    ledger: Ledger,
    others: Sequence[Ledger],
    dataset: str,
    start: date,
    end: date,
    *,
    besides: str | None = None,
) -> None:
    """:func:`check_no_overlap` in ``ledger`` and in each of ``others``: a backfill with
    ``--no-load`` keeps its job in the store's ledger and a loading one in the database's,
    and each ledger alone would let both run the same days.

    Raises:
        BackfillConflictError: naming the running job.
    """
    check_no_overlap(ledger, dataset, start, end, besides=besides)
    for other in others:
        check_no_overlap(other, dataset, start, end)


def _check_alone(ledger: Ledger, others: Sequence[Ledger], job: BackfillJobRecord) -> None:
    """Check again, now that ``job`` holds its lease, that no live job overlaps it (in
    ``ledger`` or ``others``), and give way (``job`` cancelled, its lease released) if one
    does.

    Two backfills started at the same moment both pass the check made before either is
    recorded; made again once each holds its lease, at least the one recorded last sees
    the other (both may, and both give way: each refused loudly, never both running).

    Raises:
        BackfillConflictError: naming the other job.
    """
    try:
        _check_no_overlap(ledger, others, job.dataset, job.start, job.end, besides=job.job_id)
    except BackfillConflictError:
        ledger.set_state(job.job_id, "cancelled")
        raise


def find_backfill_job(
    ledgers: Sequence[Callable[[], Ledger]], dataset: str, job_id: str
) -> tuple[Ledger, BackfillJobRecord]:
    """Job ``job_id`` of ``dataset`` in the first of ``ledgers`` that holds it; each ledger
    is opened only when those before it do not hold the job (the store's first: a job
    made there needs no database, which may be down).

    Raises:
        BackfillConflictError: ``job_id`` is not a job id, or no ledger holds such a job.
    """
    if not JOB_ID.fullmatch(job_id):
        raise BackfillConflictError(
            f"{job_id!r} is not a backfill job id",
            [
                FieldError(
                    "job_id",
                    "expected the id `backfill` printed (letters, digits, '-', '_', '.'; no path)",
                    _REQUEST,
                )
            ],
        )
    kinds = []
    others = []
    for opener in ledgers:
        ledger = opener()
        job = ledger.get(job_id)
        if job is not None and job.dataset == dataset:
            return ledger, job
        if job is not None:
            others.append(f"{job.dataset!r} in the {ledger.kind} ledger")
        kinds.append(f"the {ledger.kind} ledger")
    found = f"; job {job_id} is of dataset {' and '.join(others)}" if others else ""
    raise BackfillConflictError(
        f"no backfill job {job_id!r} of dataset {dataset!r} in {' or '.join(kinds)}{found}",
        [FieldError("job_id", "unknown job" if not others else "another dataset's job", _REQUEST)],
    )


def resume_backfill(
    ledger: Ledger,
    contract: Contract,
    job_id: str,
    *,
    executor: str = "local",
    no_load: bool = False,
    elsewhere: Sequence[Callable[[], Ledger]] = (),
) -> BackfillJobRecord:
    """Take over job ``job_id`` for this process, to run with ``executor``.

    ``no_load`` (this resume loads nothing) must be what the job was started with: a
    loading job resumed without its loads would end ``succeeded`` with days transformed
    and never loaded (a job recorded before the flag was is resumed as asked).
    ``elsewhere`` opens the ledgers this resume does not use: one keeping the job (that
    ``ledger`` lacks) is named with the option that resumes it, and a job running there
    on the same days is refused as one of ``ledger``.

    Raises:
        BackfillConflictError: the job is unknown, of another dataset, or still running.
        ConfigError: ``no_load`` differs from the job's start, or another ledger keeps it.
    """
    try:
        _, job = find_backfill_job([lambda: ledger], contract.dataset, job_id)
    except BackfillConflictError:
        _refuse_kept_elsewhere(ledger, elsewhere, contract.dataset, job_id, no_load=no_load)
        raise
    started = job.parameters.get("no_load")
    if isinstance(started, bool) and started != no_load:
        expected = "with --no-load" if started else "without --no-load"
        raise ConfigError(
            f"backfill job {job_id} was started {expected}; resume it the same way",
            [FieldError("--no-load", f"expected the job's start: {expected}", _REQUEST)],
        )
    if ledger.alive(job):
        raise BackfillConflictError(
            f"backfill job {job_id} is still running (owner {job.parameters.get('owner')})",
            [FieldError("job_id", "job is running", "backfill request")],
        )
    others = [opener() for opener in elsewhere]
    _check_no_overlap(ledger, others, contract.dataset, job.start, job.end)
    ledger.set_state(job_id, "running", owner=this_process(), runner=Runner.this(executor))
    resumed = ledger.get(job_id)
    assert resumed is not None
    _check_alone(ledger, others, resumed)
    return resumed


def run_backfill(
    context: PipelineContext,
    contract: Contract,
    job: BackfillJobRecord,
    executor: Executor,
    *,
    only_failed: bool = False,
    load: bool = True,
    progress: Progress | None = None,
    sizes: Mapping[date, int] | None = None,
) -> BackfillSummary:
    """Process the job's partitions not yet succeeded (or only its failed ones).

    Each partition is one unit on ``executor``, whose policy retries retryable
    errors (a busy partition, a store or database outage) and never a fatal one
    (bad SQL, a missing column). Ctrl-C stops handing out partitions, lets the
    running ones finish (each recording its own success: :func:`_run_recorded`), records
    the job as cancelled (ended as usual when no partition was left) and returns with
    ``interrupted`` set; resume it later. ``sizes`` (input bytes by partition, from
    the plan) hands out the largest partitions first (:func:`backfill_units`).
    """
    ledger = context.ledger
    if ledger is None:
        raise ValueError("run_backfill needs a context with the backfill ledger")
    todo = {p.dt: p for p in _todo(job, only_failed)}
    done = [p for p in job.partitions if p.dt not in todo]
    units = backfill_units(contract, job, only_failed=only_failed, load=load, sizes=sizes)
    results: list[BackfillPartitionRecord] = []
    interrupted = False
    with bound_context(dataset=contract.dataset, backfill_job=job.job_id):
        try:
            for result in executor.run(partial(_run_recorded, context, job.job_id), units):
                record = _final_record(result, todo[partition_of(result.unit)[1]])
                ledger.update(job.job_id, record)
                results.append(record)
                if progress is not None:
                    progress(record)
        except KeyboardInterrupt:
            interrupted = True
            logger.warning("backfill interrupted; running partitions finished, the rest wait")
            for record in _ended_meanwhile(ledger, job.job_id, todo, results):
                results.append(record)
                if progress is not None:
                    progress(record)
            _release_abandoned(ledger, job.job_id, todo)
    succeeded = sum(r.state == "succeeded" for r in results)
    failed = sum(r.state == "failed" for r in results)
    left = interrupted and len(results) < len(todo)  # an interrupt after the last end: done
    state = "cancelled" if left else ("failed" if failed else "succeeded")
    if not left and any(p.state == "failed" for p in done) and only_failed is False:
        state = "failed"
    ledger.set_state(job.job_id, state)
    return BackfillSummary(
        job_id=job.job_id,
        succeeded=succeeded,
        failed=failed,
        skipped=len(done),
        rows=sum(r.rows or 0 for r in results),
        interrupted=interrupted,
        withdrawn=sum(r.state == "succeeded" and r.error == WITHDRAWN_NOTE for r in results),
    )


def backfill_units(
    contract: Contract,
    job: BackfillJobRecord,
    *,
    only_failed: bool = False,
    load: bool = True,
    sizes: Mapping[date, int] | None = None,
) -> list[WorkUnit]:
    """One unit per partition of ``job`` not yet succeeded (or only its failed ones).

    In date order; with ``sizes`` (input bytes by partition date, as the plan found
    them), largest first, dates in order among equal sizes: with several partitions at
    once (threads, Celery workers), the last to start is then a small one, so the run
    does not end waiting on one big partition while the other workers stand idle.
    A partition ``sizes`` does not name counts as empty.
    """
    todo = _todo(job, only_failed)
    if sizes:
        todo.sort(key=lambda p: -sizes.get(p.dt, 0))  # stable: dates in order among equals
    return [
        partition_unit(
            contract.dataset, p.dt, load=load, purpose=f"backfill {job.job_id}", job=job.job_id
        )
        for p in todo
    ]


def _run_recorded(context: PipelineContext, job_id: str, unit: WorkUnit) -> PartitionOutcome:
    """Run ``unit`` and record its partition's success in the job's ledger at once.

    An interrupted local executor lets the units in flight finish but hands back no
    result of theirs (its pool is shut down as the interrupt leaves it): without this
    record, a partition transformed and loaded after Ctrl-C or SIGTERM would stay
    ``running``, be left out of the summary, and be redone by the resume. A failure to
    record is only logged: the unit's work is done, and its result records it again.
    """
    outcome = run_unit(context, unit)
    ledger = context.ledger
    if ledger is None:
        return outcome
    _, dt = partition_of(unit)
    try:
        job = ledger.get(job_id)
        before = next((p for p in job.partitions if p.dt == dt), None) if job else None
        attempts = before.attempts if before is not None else 1
        ledger.update(job_id, succeeded_record(dt, attempts, outcome))
    except Exception as exc:  # the result records it again
        logger.warning("backfill partition's end not recorded yet: %s", exc)
    return outcome


def _ended_meanwhile(
    ledger: Ledger,
    job_id: str,
    todo: Mapping[date, BackfillPartitionRecord],
    results: list[BackfillPartitionRecord],
) -> list[BackfillPartitionRecord]:
    """The partitions of ``todo`` the ledger records as succeeded whose result the
    executor never handed back (in flight when the run was interrupted)."""
    job = ledger.get(job_id)
    if job is None:
        return []
    seen = {r.dt for r in results}
    return [
        p for p in job.partitions if p.dt in todo and p.dt not in seen and p.state == "succeeded"
    ]


def _release_abandoned(
    ledger: Ledger, job_id: str, todo: Mapping[date, BackfillPartitionRecord]
) -> None:
    """Record as ``cancelled`` the partitions this process left ``running`` when its run
    was interrupted (a unit given up without handing back a result): none of its units
    runs any more, and ``--status`` should not show them in flight. A partition another
    process claimed (a Celery worker's) is left as it is."""
    job = ledger.get(job_id)
    me = this_process()
    for p in job.partitions if job is not None else ():
        if p.dt in todo and p.state == "running" and p.claimed_by == me:
            ledger.update(job_id, replace(p, state="cancelled"))


def _todo(job: BackfillJobRecord, only_failed: bool) -> list[BackfillPartitionRecord]:
    wanted = {"failed"} if only_failed else {"pending", "running", "failed", "cancelled"}
    return [p for p in job.partitions if p.state in wanted]


def _final_record(
    result: UnitResult[PartitionOutcome], before: BackfillPartitionRecord
) -> BackfillPartitionRecord:
    """The partition's ledger record once its unit ended (attempts of earlier runs included)."""
    attempts = before.attempts + result.attempts
    failed_attempts = result.attempts - (1 if result.ok else 0)
    if failed_attempts:
        _attempts.labels(dataset=result.unit.key.split("/")[0], outcome="failed").inc(
            failed_attempts
        )
    if result.ok and result.value is not None:
        _attempts.labels(dataset=result.value.dataset, outcome="succeeded").inc()
        return succeeded_record(before.dt, attempts, result.value)
    logger.warning(
        "backfill partition failed after %d attempt(s): %s",
        result.attempts,
        result.error,
        extra={"dt": before.dt.isoformat(), "attempts": result.attempts},
    )
    return BackfillPartitionRecord(before.dt, "failed", attempts, str(result.error), None, "")
