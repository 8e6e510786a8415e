"""The operations ledger's queries, shipped with its tables: run history, freshness, gauges.

Every function is one unit of work through the door (:func:`~etl_database_schema.models`),
so it needs :func:`~etl_database_schema.connect` first and raises the door's errors. They
take and return plain values (dataclasses, datetimes, ints), never Django objects, so a
runtime can use them without knowing the ORM.
"""

from __future__ import annotations

import logging
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from etl_database_schema.door import LEDGER_APP, connected_url, models
from etl_database_schema.errors import (
    DatabaseRefusedError,
    DatabaseUnavailableError,
    SchemaError,
)
from etl_database_schema.load_fences import check_store

__all__ = [
    "ALERT_STATES",
    "FRESHNESS_LEVELS",
    "LANES",
    "LOAD_JOBS",
    "OWED_FIELDS",
    "RUN_OUTCOMES",
    "AlertRecord",
    "EndpointFailure",
    "FreshnessRecord",
    "JobSuccess",
    "RunHealth",
    "RunRecord",
    "abandon_runs",
    "alerts",
    "change_alerts",
    "failing_endpoints",
    "finish_run",
    "get_run",
    "job_last_successes",
    "last_loads",
    "last_success",
    "last_successes",
    "latest_freshness",
    "ledger_gauges",
    "other_stores",
    "owed_alerts",
    "record_freshness",
    "run_health",
    "settle_alerts",
    "start_run",
    "warn_other_stores",
]

LANES = ("file_processing", "data_pipeline", "observability")
"""The runtimes a run row may name (the ``lane`` column's choices)."""
RUN_OUTCOMES = ("succeeded", "partial", "failed")
"""How a run may end; ``partial`` is exit code 3 (completed, some inputs quarantined)."""
FRESHNESS_LEVELS = ("ok", "warning", "critical", "unknown")
"""A dataset's freshness levels; ``unknown`` means no data was seen."""
ALERT_STATES = ("open", "acknowledged", "snoozed", "resolved")
"""An alert's states; every one but ``resolved`` is active (one per fingerprint at most)."""
_SUCCESSFUL = ("succeeded", "partial")
LOAD_JOBS = ("load", "run", "backfill")
"""The data_pipeline jobs that load curated partitions into the database."""
_SHARED_RUNS = 500
logger = logging.getLogger(__name__)
_BACKFILL_STATES = ("pending", "running", "succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class RunRecord:
    """One run of a job by a runtime, as the ledger holds it."""

    run_id: str
    lane: str
    job: str
    dataset: str
    status: str
    parameters: dict[str, Any]
    started_at: datetime
    finished_at: datetime | None
    inputs_count: int
    outputs_count: int
    quarantined_count: int
    failed_count: int
    rows_written: int
    error: str


@dataclass(frozen=True)
class FreshnessRecord:
    """A dataset's freshness level since ``changed_at``; age ``None`` means no data seen."""

    dataset: str
    level: str
    observed_age_seconds: float | None
    latest_partition: date | None
    message: str
    changed_at: datetime


@dataclass(frozen=True)
class RunHealth:
    """How the runs of one lane and dataset that finished in a window went.

    Attributes:
        lane: The lane.
        dataset: The dataset, ``""`` for runs about several or none.
        succeeded: Runs that succeeded.
        partial: Runs that completed with some inputs quarantined.
        failed: Runs that failed.
        duration_p50: Median run duration in seconds.
        duration_p90: 90th percentile of run durations in seconds.
        duration_p99: 99th percentile of run durations in seconds.
        duration_max: The longest run in seconds.
    """

    lane: str
    dataset: str
    succeeded: int
    partial: int
    failed: int
    duration_p50: float
    duration_p90: float
    duration_p99: float
    duration_max: float

    @property
    def finished(self) -> int:
        """Runs that finished in the window."""
        return self.succeeded + self.partial + self.failed

    @property
    def success_rate(self) -> float:
        """The share of finished runs that succeeded or were partial, 0 to 1."""
        return (self.succeeded + self.partial) / self.finished if self.finished else 0.0


@dataclass(frozen=True)
class JobSuccess:
    """When the latest successful (or partial) run of one job of a lane and dataset finished."""

    lane: str
    job: str
    dataset: str
    finished_at: datetime


@dataclass(frozen=True)
class EndpointFailure:
    """An API endpoint whose latest ingestion attempts failed."""

    source: str
    endpoint: str
    consecutive_failures: int
    last_success_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str


@dataclass(frozen=True)
class AlertRecord:
    """One alert (``etl_alert``): a monitor's condition on a dataset, opened to resolved."""

    fingerprint: str
    dataset: str
    monitor: str
    subject: str
    level: str
    state: str
    summary: str
    opened_at: datetime
    updated_at: datetime
    notified_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str
    snoozed_until: datetime | None
    resolved_at: datetime | None
    owed_event: str | None = None
    owed_at: datetime | None = None
    owed_to: tuple[str, ...] = ()


OWED_FIELDS = ("owed_event", "owed_at", "owed_to")
"""The alert's outbox: what :func:`settle_alerts` writes."""

_R = TypeVar("_R", "RunRecord", "FreshnessRecord", "AlertRecord")

# ------------------------------------------------------------------ writers


def _serialise_writers(model: Any, key: str) -> None:
    """Wait until no other transaction writes ``model``'s rows of ``key`` (a store's alerts,
    a dataset's freshness history), then keep them to this transaction until it ends.

    A writer that reads rows to decide what to insert (is this alert already open? did
    the level change?) cannot lock a row that does not exist yet: two writers both find
    none and both insert (a unique violation, a duplicated history row). So the writers
    of one key queue up before reading. On PostgreSQL a transaction-scoped advisory lock
    (``pg_advisory_xact_lock``, keyed by the table's name and ``key``, both CRC-32:
    a collision only makes two keys wait for each other; released at commit or rollback,
    nothing to leak). On SQLite a write that changes nothing takes the database's write
    lock at once, so the transaction is a writer from its start even with
    ``transaction_mode=DEFERRED`` (``IMMEDIATE``, the default, already takes it at
    ``BEGIN``); readers are not held up (WAL). Call it first in the transaction.

    The queue needs each statement after it to see what the writer before committed:
    PostgreSQL's READ COMMITTED. A transaction of its own is set to it, whatever the
    server's ``default_transaction_isolation`` (under REPEATABLE READ the snapshot is
    taken by the first statement, the lock's, before it waits); inside a caller's
    transaction, that transaction's level stands.
    """
    from django.db import connection

    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            if len(connection.atomic_blocks) == 1 and connection.commit_on_exit:  # it began
                cursor.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            _queue_up(cursor, table, key)
        else:
            cursor.execute(f"UPDATE {connection.ops.quote_name(table)} SET id = id WHERE 1 = 0")


WRITERS_WAIT = 60.0
"""Seconds a ledger writer waits in its queue (:func:`_serialise_writers`) on PostgreSQL
before it gives up as :class:`~etl_database_schema.errors.DatabaseUnavailableError`: a
writer ahead that never ends its transaction (a paused process, a half-open TCP
connection the server has not noticed yet) no longer holds every later one for ever. A
caller's shorter ``lock_timeout`` stands."""
_LOCK_NOT_AVAILABLE = "55P03"
"""PostgreSQL's ``lock_not_available`` (``lock_timeout`` ran out)."""


def _queue_up(cursor: Any, table: str, key: str) -> None:
    """Take the advisory lock of ``table``'s writers of ``key``, waiting :data:`WRITERS_WAIT`
    seconds at most (``lock_timeout`` set for this statement only, unless the session's
    or transaction's is shorter; restored once the lock is held, so the rest of the
    transaction keeps the caller's).

    Raises:
        DatabaseUnavailableError: The wait ran out (retry the unit later).
    """
    from django.db import OperationalError

    wait_ms = max(1, round(WRITERS_WAIT * 1000))
    cursor.execute(
        "SELECT current_setting('lock_timeout'), setting::bigint FROM pg_settings "
        "WHERE name = 'lock_timeout'"
    )
    previous, current_ms = cursor.fetchone()
    bounded = current_ms == 0 or current_ms > wait_ms
    if bounded:
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{wait_ms}ms"])
    try:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_lock_key(table), _lock_key(key)])
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
            raise
        shown = connected_url() or ""
        waited = WRITERS_WAIT if bounded else current_ms / 1000
        raise DatabaseUnavailableError(
            f"database {shown} is unavailable: waited {waited:g} s for the ledger's writers "
            f"queue of {table} ({' '.join(key.split())}), the advisory lock "
            f"pg_advisory_xact_lock({_lock_key(table)}, {_lock_key(key)}), held by another "
            "transaction that does not end (a hung writer: a paused process, a half-open "
            "connection; see pg_locks and pg_stat_activity); a unit tried again once it "
            "ends succeeds",
            url=shown,
        ) from exc
    if bounded:
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [previous])


def _lock_key(text: str) -> int:
    """A signed 32-bit key of ``text`` (CRC-32), what ``pg_advisory_xact_lock`` takes."""
    crc = zlib.crc32(text.encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


# ------------------------------------------------------------------------ runs


def start_run(
    run_id: str,
    *,
    lane: str,
    job: str,
    dataset: str = "",
    parameters: Mapping[str, Any] | None = None,
    started_at: datetime | None = None,
    holder: Mapping[str, Any] | None = None,
) -> None:
    """Record that a run started: a ``running`` row of ``etl_pipeline_run``.

    Args:
        run_id: The runtime's run id (unique: a second start of it is refused).
        lane: One of :data:`LANES`.
        job: The subcommand or job name (``scan``, ``transform``…).
        dataset: The dataset the run is about, ``""`` for several or none.
        parameters: What the run was asked to do, JSON-serialisable.
        started_at: When it started (timezone-aware); now when ``None``.
        holder: The process running it (JSON-serialisable: host, pid...), which
            :func:`abandon_runs` judges once the run is left running.

    Raises:
        DatabaseRefusedError: The run id is already recorded, or the lane is unknown.
    """
    from django.utils import timezone

    with models(LEDGER_APP) as ledger:
        ledger["PipelineRun"].objects.create(
            run_id=run_id,
            lane=lane,
            job=job,
            dataset=dataset,
            parameters=dict(parameters or {}),
            started_at=started_at or timezone.now(),
            holder=dict(holder or {}),
        )


_ABANDONED = "abandoned: "
"""How the error of a run :func:`abandon_runs` finished begins; its own process's
:func:`finish_run` still replaces that verdict."""


def abandon_runs(is_gone: Callable[[Mapping[str, Any]], bool]) -> list[str]:
    """Finish as ``failed`` each ``running`` run whose process ``is_gone`` says has ended.

    A process killed outright (SIGKILL, the OOM killer, a lost host) cannot finish its
    run; without this its row stays ``running`` for ever (``runs_running`` never falls).
    A run recorded without a holder is left alone. Safe beside other callers: a row is
    only changed while it is still ``running``.

    Returns:
        The run ids finished here.
    """
    from django.utils import timezone

    finished: list[str] = []
    with models(LEDGER_APP) as ledger:
        table = ledger["PipelineRun"].objects
        for run_id, job, holder in table.filter(status="running").values_list(
            "run_id", "job", "holder"
        ):
            if not isinstance(holder, dict) or not holder or not is_gone(holder):
                continue
            who = f"{holder.get('host', '?')}:{holder.get('pid', '?')}"
            updated = table.filter(run_id=run_id, status="running").update(
                status="failed",
                finished_at=timezone.now(),
                error=f"{_ABANDONED}its process {who} ended without finishing the {job} "
                "(killed?); found by a later run",
            )
            if updated:
                finished.append(run_id)
    return finished


def finish_run(
    run_id: str,
    status: str,
    *,
    inputs: int = 0,
    outputs: int = 0,
    quarantined: int = 0,
    failed: int = 0,
    rows_written: int = 0,
    error: str = "",
) -> None:
    """Record how a running run ended: ``succeeded``, ``partial`` or ``failed``, with its counts.

    A run that :func:`abandon_runs` judged left by a dead process is finished too: the
    verdict was a guess from its pid, and the run's own process, still there to finish
    it, knows better (without this its true outcome was refused and lost).

    Raises:
        ValueError: ``status`` is not one of :data:`RUN_OUTCOMES`.
        DatabaseRefusedError: No run with this id is running or abandoned (unknown, or
            already finished).
    """
    if status not in RUN_OUTCOMES:
        raise ValueError(f"run status {status!r} is not one of {', '.join(RUN_OUTCOMES)}")
    from django.db.models import Q
    from django.utils import timezone

    open_or_abandoned = Q(status="running") | Q(status="failed", error__startswith=_ABANDONED)
    with models(LEDGER_APP) as ledger:
        updated = (
            ledger["PipelineRun"]
            .objects.filter(open_or_abandoned, run_id=run_id)
            .update(
                status=status,
                finished_at=timezone.now(),
                inputs_count=inputs,
                outputs_count=outputs,
                quarantined_count=quarantined,
                failed_count=failed,
                rows_written=rows_written,
                error=error,
            )
        )
    if not updated:
        shown = connected_url() or ""
        raise DatabaseRefusedError(
            f"run {run_id!r} is not a running run in the ledger of database {shown}", url=shown
        )


def get_run(run_id: str) -> RunRecord | None:
    """The ledger's record of ``run_id``, or ``None`` when there is none."""
    with models(LEDGER_APP) as ledger:
        run = ledger["PipelineRun"].objects.filter(run_id=run_id).first()
    return None if run is None else _run_record(run)


def last_success(dataset: str | None = None, *, lane: str | None = None) -> datetime | None:
    """When the latest successful (or partial) run finished, of ``dataset`` and/or ``lane``.

    With neither, the latest successful run of any dataset in any lane.
    """
    conditions: dict[str, str] = {}
    if dataset is not None:
        conditions["dataset"] = dataset
    if lane is not None:
        conditions["lane"] = lane
    with models(LEDGER_APP) as ledger:
        finished: datetime | None = (
            ledger["PipelineRun"]
            .objects.filter(status__in=_SUCCESSFUL, **conditions)
            .order_by("-finished_at")
            .values_list("finished_at", flat=True)
            .first()
        )
    return finished


def last_successes() -> dict[str, RunRecord]:
    """The latest successful (or partial) run of each lane that has one, by lane."""
    latest: dict[str, RunRecord] = {}
    with models(LEDGER_APP) as ledger:
        runs = ledger["PipelineRun"].objects.filter(status__in=_SUCCESSFUL)
        for lane in LANES:
            run = runs.filter(lane=lane).order_by("-finished_at", "-id").first()
            if run is not None:
                latest[lane] = _run_record(run)
    return latest


def run_health(since: datetime) -> list[RunHealth]:
    """Outcomes and duration percentiles of the runs that finished since ``since``.

    One entry per lane and dataset that finished a run in the window, sorted by both.
    Durations are kept per group for the percentiles: memory grows with the runs of the
    window, not of the ledger.
    """
    outcomes: dict[tuple[str, str], dict[str, int]] = {}
    durations: dict[tuple[str, str], list[float]] = {}
    with models(LEDGER_APP) as ledger:
        finished = (
            ledger["PipelineRun"]
            .objects.filter(finished_at__gte=since, status__in=RUN_OUTCOMES)
            .values_list("lane", "dataset", "status", "started_at", "finished_at")
        )
        for lane, dataset, status, started, ended in finished.iterator(chunk_size=2000):
            key = (lane, dataset)
            counts = outcomes.setdefault(key, dict.fromkeys(RUN_OUTCOMES, 0))
            counts[status] += 1
            durations.setdefault(key, []).append(max(0.0, (ended - started).total_seconds()))
    health = []
    for key in sorted(outcomes):
        spans = sorted(durations[key])
        counts = outcomes[key]
        health.append(
            RunHealth(
                lane=key[0],
                dataset=key[1],
                succeeded=counts["succeeded"],
                partial=counts["partial"],
                failed=counts["failed"],
                duration_p50=_percentile(spans, 0.50),
                duration_p90=_percentile(spans, 0.90),
                duration_p99=_percentile(spans, 0.99),
                duration_max=spans[-1],
            )
        )
    return health


def _percentile(ordered: list[float], fraction: float) -> float:
    """The ``fraction`` percentile of sorted values, linearly interpolated (like PostgreSQL's
    ``percentile_cont``)."""
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def job_last_successes() -> list[JobSuccess]:
    """The latest successful (or partial) run of every lane, job and dataset, sorted by them."""
    from django.db.models import Max

    with models(LEDGER_APP) as ledger:
        rows = (
            ledger["PipelineRun"]
            .objects.filter(status__in=_SUCCESSFUL)
            .values("lane", "job", "dataset")
            .annotate(last=Max("finished_at"))
            .order_by("lane", "job", "dataset")
        )
        return [JobSuccess(r["lane"], r["job"], r["dataset"], r["last"]) for r in rows]


def last_loads() -> dict[str, datetime]:
    """When each dataset's latest load that wrote rows finished, by dataset.

    A load is a successful (or partial) ``data_pipeline`` run of a loading job
    (:data:`LOAD_JOBS`) that wrote rows and was not asked to skip loads: one about the
    dataset, or one about several whose ``parameters["datasets"]`` lists it (the latest
    :data:`_SHARED_RUNS` of those are read). A run over several datasets records its rows
    in total, so it counts for each of them.
    """
    from django.db.models import Max, Q

    with models(LEDGER_APP) as ledger:
        runs = (
            ledger["PipelineRun"]
            .objects.filter(
                lane="data_pipeline", job__in=LOAD_JOBS, status__in=_SUCCESSFUL, rows_written__gt=0
            )
            .exclude(Q(parameters__has_key="load") & Q(parameters__load=False))
        )
        own = runs.exclude(dataset="").values("dataset").annotate(last=Max("finished_at"))
        loads: dict[str, datetime] = {row["dataset"]: row["last"] for row in own}
        shared = runs.filter(dataset="").order_by("-finished_at")
        for parameters, finished in shared.values_list("parameters", "finished_at")[:_SHARED_RUNS]:
            named = parameters.get("datasets") if isinstance(parameters, dict) else None
            for dataset in named if isinstance(named, list) else ():
                if isinstance(dataset, str) and (dataset not in loads or loads[dataset] < finished):
                    loads[dataset] = finished
    return loads


def failing_endpoints() -> list[EndpointFailure]:
    """The API endpoints whose latest attempts failed, the longest-failing first."""
    with models(LEDGER_APP) as ledger:
        rows = (
            ledger["ApiIngestionState"]
            .objects.filter(consecutive_failures__gt=0)
            .order_by("-consecutive_failures", "source", "endpoint")
        )
        return [
            EndpointFailure(
                row.source,
                row.endpoint,
                row.consecutive_failures,
                row.last_success_at,
                row.last_attempt_at,
                row.last_error,
            )
            for row in rows
        ]


# ------------------------------------------------------------------- freshness


def latest_freshness(dataset: str, *, store: str) -> FreshnessRecord | None:
    """The dataset's current freshness in ``store`` (its latest history row there);
    ``None`` if ``store`` never checked it.

    ``store`` is the canonical root URL of the deployment's object store
    (``etl_core.storage.url.store_identity``): two deployments sharing the database each
    read their own history of a dataset of one name. The dataset's rows written before
    the store was kept (``store`` empty) are adopted first (:func:`_adopt_history`).

    Raises:
        ValueError: ``store`` is empty.
    """
    check_store(store, of=_FRESHNESS_OF)
    with models(LEDGER_APP) as ledger:
        history = _adopt_history(ledger["FreshnessStatus"].objects, store, dataset)
        row = history.order_by("-changed_at", "-id").first()
    return None if row is None else _freshness_record(row)


def record_freshness(
    dataset: str,
    level: str,
    observed_age_seconds: float | None,
    *,
    store: str,
    latest_partition: date | None = None,
    message: str = "",
) -> bool:
    """Record a freshness observation of ``store``'s dataset; its history grows only when
    the level changes from the latest one ``store`` recorded (another store's level of a
    dataset of the same name is no change). The dataset's rows written before the store
    was kept (``store`` empty) are adopted first (:func:`_adopt_history`).

    Writers of one store's freshness of a dataset (a service's cycle, a ``check`` run)
    queue up before reading its level (:func:`_serialise_writers`), so a change two of them see
    at once is appended once: the second finds the level already recorded.

    Returns:
        True when a new history row was written (the level changed, or first observation).

    Raises:
        ValueError: ``level`` is not one of :data:`FRESHNESS_LEVELS`, the age is negative,
            or ``store`` is empty.
    """
    if level not in FRESHNESS_LEVELS:
        raise ValueError(f"freshness level {level!r} is not one of {', '.join(FRESHNESS_LEVELS)}")
    if observed_age_seconds is not None and observed_age_seconds < 0:
        raise ValueError(f"observed age of {dataset} is negative: {observed_age_seconds}s")
    check_store(store, of=_FRESHNESS_OF)
    from django.db import transaction

    age = None if observed_age_seconds is None else timedelta(seconds=observed_age_seconds)
    with models(LEDGER_APP) as ledger, transaction.atomic():
        _serialise_writers(ledger["FreshnessStatus"], f"{store}\n{dataset}")
        history = _adopt_history(ledger["FreshnessStatus"].objects, store, dataset)
        current = history.order_by("-changed_at", "-id").values_list("level", flat=True).first()
        if current == level:
            return False
        history.create(
            store=store,
            dataset=dataset,
            level=level,
            observed_age=age,
            latest_partition=latest_partition,
            message=message,
        )
    logger.info(
        "freshness level changed",
        extra={"dataset": dataset, "level": level, "previous": current, "store": store},
    )
    return True


_FRESHNESS_OF = "the freshness history's object"
"""Whose store :func:`check_store` names in its message."""


def _adopt_history(table: Any, store: str, dataset: str) -> Any:
    """``store``'s history of ``dataset`` (a query set), after adopting the dataset's rows
    written before the store was kept (``store`` empty, migration
    ``etl_ledger.0008_freshness_store``): the first deployment recording or reading the
    dataset's level takes its history of before over (:func:`_adopt_rows`); a dataset it
    never touches stays for the deployment that does."""
    return _adopt_rows(table, store, what=f"freshness history rows of {dataset}", dataset=dataset)


# ---------------------------------------------------------------------- alerts


def alerts(*, store: str, include_resolved: bool = False, limit: int = 1000) -> list[AlertRecord]:
    """The active alerts of ``store`` (and, with ``include_resolved``, its latest resolved
    ones), newest first.

    ``store`` is the canonical root URL of the deployment's object store
    (``etl_core.storage.url.store_identity``): two deployments sharing the database see
    only their own alerts. Rows written before the store was kept (``store`` empty) are
    adopted first (:func:`_adopt`). At most ``limit`` alerts are returned.

    Raises:
        ValueError: ``store`` is empty.
    """
    check_store(store, of=_ALERTS_OF)
    with models(LEDGER_APP) as ledger:
        rows = _adopt(ledger["Alert"].objects, store)
        if not include_resolved:
            rows = rows.exclude(state="resolved")
        return [_alert_record(row) for row in rows.order_by("-opened_at", "-id")[:limit]]


def change_alerts(
    change: Callable[[list[AlertRecord]], Iterable[AlertRecord]], *, store: str
) -> list[AlertRecord]:
    """Change ``store``'s active alerts in one transaction: ``change`` gets them, returns
    what to write.

    The writers of ``store``'s alerts queue up before its active rows are read (an
    advisory lock on PostgreSQL, the write lock on SQLite: :func:`_serialise_writers`;
    :func:`settle_alerts` takes the same), and those rows are locked (``SELECT … FOR
    UPDATE``) while ``change`` runs, so two writers (a service's cycle, a ``check`` run,
    an operator's ``ack``) never lose each other's changes, and two opening the same new
    alert at once (no row to lock yet) do not both insert it: the second gets the
    first's row and updates it (or leaves it). A returned alert whose fingerprint is
    active in ``store`` updates that row; any other is inserted for ``store``. Another
    store's alerts are neither given to ``change`` nor written.

    Returns:
        The alerts written.

    Raises:
        ValueError: ``store`` is empty, a returned alert has an unknown state, or two have
            one fingerprint (nothing is written).
        DatabaseRefusedError: the database refused a row (a second active fingerprint:
            only beside a writer of a release before the queue, or one writing the table
            without these functions).
    """
    from django.db import transaction

    check_store(store, of=_ALERTS_OF)
    with models(LEDGER_APP) as ledger, transaction.atomic():
        _serialise_writers(ledger["Alert"], store)
        table = ledger["Alert"].objects
        active = _adopt(table, store).select_for_update().exclude(state="resolved")
        rows = {row.fingerprint: row for row in active}
        written = list(change([_alert_record(row) for row in rows.values()]))
        counts = Counter(record.fingerprint for record in written)
        twice = sorted(key for key, n in counts.items() if n > 1)
        if twice:
            raise ValueError(f"alert {twice[0]}: written twice in one change")
        for record in written:
            if record.state not in ALERT_STATES:
                states = ", ".join(ALERT_STATES)
                raise ValueError(
                    f"alert {record.fingerprint}: state {record.state!r} not in {states}"
                )
            values = {f.name: getattr(record, f.name) for f in fields(AlertRecord)}
            values["owed_to"] = list(record.owed_to)
            row = rows.get(record.fingerprint)
            if row is None:
                table.create(store=store, **values)
                continue
            for name, value in values.items():
                setattr(row, name, value)
            row.save()
    return written


def owed_alerts(*, store: str) -> list[AlertRecord]:
    """``store``'s alerts, active or resolved, that still owe a channel their latest event,
    oldest first.

    Raises:
        ValueError: ``store`` is empty.
    """
    check_store(store, of=_ALERTS_OF)
    with models(LEDGER_APP) as ledger:
        rows = _adopt(ledger["Alert"].objects, store).filter(owed_event__isnull=False)
        return [_alert_record(row) for row in rows.order_by("owed_at", "id")]


def settle_alerts(
    change: Callable[[list[AlertRecord]], Iterable[AlertRecord]], *, store: str
) -> list[AlertRecord]:
    """Change the outbox of ``store``'s owing alerts in one transaction, their rows locked.

    It queues up with the other writers of ``store``'s alerts first, as
    :func:`change_alerts` does, so a settle and a change of the store never lock each
    other's rows in opposite orders (a deadlock, one of them failed).

    ``change`` gets the alerts :func:`owed_alerts` lists and returns those whose
    :data:`OWED_FIELDS` to write; a returned alert updates the owing row of its
    fingerprint and ``opened_at`` (one episode) in ``store``, only those fields. One that
    matches no owing row of ``store`` (settled meanwhile, another store's) is left out of
    what is returned.

    Returns:
        The alerts written.

    Raises:
        ValueError: ``store`` is empty.
    """
    from django.db import transaction

    check_store(store, of=_ALERTS_OF)
    with models(LEDGER_APP) as ledger, transaction.atomic():
        _serialise_writers(ledger["Alert"], store)
        owing = (
            _adopt(ledger["Alert"].objects, store)
            .select_for_update()
            .filter(owed_event__isnull=False)
            .order_by("owed_at", "id")
        )
        rows = {(row.fingerprint, row.opened_at): row for row in owing}
        written: list[AlertRecord] = []
        for record in change([_alert_record(row) for row in rows.values()]):
            row = rows.get((record.fingerprint, record.opened_at))
            if row is None:
                continue
            row.owed_event, row.owed_at = record.owed_event, record.owed_at
            row.owed_to = list(record.owed_to)
            row.save(update_fields=list(OWED_FIELDS))
            written.append(_alert_record(row))
    return written


_ALERTS_OF = "the alerts' object"
"""Whose store :func:`check_store` names in its message."""


def _adopt(table: Any, store: str) -> Any:
    """``store``'s alerts (a query set), after adopting the rows written before the store
    was kept (``store`` empty, migration ``etl_ledger.0007_alert_store``): the first
    deployment touching its alerts takes them over (:func:`_adopt_rows`), as the load
    fence's first load takes its day's row. An active one whose fingerprint ``store``
    already has active stays unadopted (one active alert per store and fingerprint), for
    another store or a later touch once that alert is resolved.
    """
    from django.db.models import Exists, OuterRef, Q

    active_here = table.filter(store=store, fingerprint=OuterRef("fingerprint")).exclude(
        state="resolved"
    )
    return _adopt_rows(
        table, store, what="alerts", adoptable=Q(state="resolved") | ~Exists(active_here)
    )


def _adopt_rows(table: Any, store: str, *, what: str, adoptable: Any = None, **scope: Any) -> Any:
    """``store``'s rows of ``table`` (a ledger table with a ``store`` column) matching
    ``scope``, as a query set, after adopting for ``store`` those of them written before
    the store was kept (``store`` empty) that are ``adoptable`` (a ``Q``; all when
    ``None``): the one way the ledger's per-store tables (the alerts, the freshness
    history) take their rows of before over. Runs in the caller's transaction, if any: a
    reader opens none, so it takes no write lock (SQLite's transactions are IMMEDIATE) and
    the adoption is a statement of its own. Two stores adopting at once take each row
    once (the UPDATE's ``store = ''`` is checked again on the locked row).

    What is adopted is logged (a warning naming ``store``, ``what`` and how many, with
    ``scope`` in the record), so the operator sees which deployment took them over. The
    UPDATE runs only when a row is there to adopt (an indexed look-up first): once the
    rows of before are adopted, reading writes nothing, so a read-only role or a read
    replica's connection can read them, and a reader's every cycle costs no write.
    """
    legacy = table.filter(store="", **scope)
    if adoptable is not None:
        legacy = legacy.filter(adoptable)
    if legacy.exists() and (adopted := legacy.update(store=store)):
        logger.warning(
            "adopted %d %s written before they were kept per store (%s.store empty) into the "
            "store %s: its deployment now owns them; if this is not their deployment (a "
            "command run with another store), set their store back to '' (SQL) for their "
            "deployment to adopt them",
            adopted,
            what,
            table.model._meta.db_table,
            store,
            extra={"store": store, "adopted": adopted, **scope},
        )
    return table.filter(store=store, **scope)


def _alert_record(row: Any) -> AlertRecord:
    """The row as a record; ``owed_to`` a tuple when a list (NULL from a previous release:
    empty), else as stored, for the caller to refuse (a hand-edited string, an object)."""
    owed_to = row.owed_to or ()
    listed = tuple(owed_to) if isinstance(owed_to, list) else owed_to
    return _plain(AlertRecord, row, owed_to=listed)


# -------------------------------------------------------- one database per deployment

_STORE_MODELS = ("Alert", "FreshnessStatus", "LoadFence")
"""The ledger's models kept per object store (``store``; each indexed by it first)."""
OTHER_STORES_SHOWN = 10
"""How many other stores :func:`other_stores` lists at most."""
_DEPLOYMENT_OF = "the deployment's object"
_warned_stores: set[str] = set()


def other_stores(store: str, *, limit: int = OTHER_STORES_SHOWN) -> list[str]:
    """The object stores other than ``store`` that the ledger's per-store rows name (the
    alerts, the freshness history, the load fence), sorted, at most ``limit``.

    Any means the database is (or was) used by another deployment: docs/architecture.md
    section 5, one database per deployment. Rows written before the store was kept
    (``store`` empty) are no other store's. Cheap: each table is read by its index on
    ``store`` one distinct value at a time (a loose index scan), never scanned.

    Raises:
        ValueError: ``store`` is empty.
    """
    check_store(store, of=_DEPLOYMENT_OF)
    found: set[str] = set()
    with models(LEDGER_APP) as ledger:
        for name in _STORE_MODELS:
            rows = ledger[name].objects
            after = ""
            while len(found) < limit:
                following = (
                    rows.filter(store__gt=after)
                    .order_by("store")
                    .values_list("store", flat=True)
                    .first()
                )
                if following is None:
                    break
                if following != store:
                    found.add(following)
                after = following
    return sorted(found)[:limit]


def warn_other_stores(store: str) -> list[str]:
    """Log a warning, once per process and store, when :func:`other_stores` finds any:
    a deployment pointed at another deployment's database by mistake is said, not silent.
    A warning, not a refusal: a store moved or re-created elsewhere legitimately leaves
    rows under its old identity (the schema's README says how to clear them). Best-effort:
    a database error while looking (a role without ``SELECT`` on one of the tables, a
    locked SQLite file, an outage) is logged at DEBUG and the caller goes on.

    Returns:
        The other stores warned about now (``[]`` when none, already checked, or the
        check could not be made).

    Raises:
        ValueError: ``store`` is empty.
    """
    check_store(store, of=_DEPLOYMENT_OF)
    if store in _warned_stores:
        return []
    _warned_stores.add(store)  # checked once per process, whether or not it could be
    try:
        others = other_stores(store)
    except SchemaError as exc:  # best-effort: never fails a command that worked without it
        logger.debug(
            "could not check for other object stores in the ledger (etl_alert, "
            "etl_freshness_status, etl_load_fence) of the database %s; going on: %s",
            connected_url(),
            exc,
            extra={"store": store},
        )
        return []
    if others:
        logger.warning(
            "the database %s holds ledger rows (etl_alert, etl_freshness_status, "
            "etl_load_fence) of other object store(s) %s besides this deployment's store %s: "
            "two deployments share one database? Give each deployment its own database "
            "(docs/architecture.md section 5, one database per deployment); if a store was "
            "moved or retired, clear its rows (etl-database-schema README, 'Rows of another "
            "store')",
            connected_url(),
            ", ".join(others),
            store,
            extra={"store": store, "other_stores": others},
        )
    return others


# ---------------------------------------------------------------------- gauges


def ledger_gauges() -> dict[str, int]:
    """Counts for health metrics: running runs, open quarantine, failing API endpoints,
    backfill partitions by state (``backfill_partitions_<state>``, every state present)."""
    from django.db.models import Count

    with models(LEDGER_APP) as ledger:
        gauges = {
            "runs_running": ledger["PipelineRun"].objects.filter(status="running").count(),
            "quarantine_open": ledger["QuarantineRecord"]
            .objects.filter(released_at__isnull=True)
            .count(),
            "api_endpoints_failing": ledger["ApiIngestionState"]
            .objects.filter(consecutive_failures__gt=0)
            .count(),
        }
        states = dict.fromkeys(_BACKFILL_STATES, 0)
        for row in ledger["BackfillPartition"].objects.values("state").annotate(n=Count("id")):
            states[row["state"]] = row["n"]
    gauges.update({f"backfill_partitions_{state}": n for state, n in states.items()})
    return gauges


def _plain(record: type[_R], row: Any, **computed: Any) -> _R:
    """``record`` (a dataclass) from a model row's attributes of the same names, or ``computed``."""
    return record(
        **{
            field.name: computed[field.name] if field.name in computed else getattr(row, field.name)
            for field in fields(record)
        }
    )


def _run_record(run: Any) -> RunRecord:
    return _plain(RunRecord, run, parameters=dict(run.parameters))


def _freshness_record(row: Any) -> FreshnessRecord:
    age = row.observed_age
    return _plain(
        FreshnessRecord, row, observed_age_seconds=None if age is None else age.total_seconds()
    )
