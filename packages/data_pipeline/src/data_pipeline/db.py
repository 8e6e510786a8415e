"""The data pipeline's only door to the database (Django models of ``etl-database-schema``).

This is the one module of the runtime allowed to import ``django`` or
``etl_database_schema`` (import-linter enforces it), and it does so lazily inside
functions: without the ``schema`` extra the rest of the runtime works, and using a
database feature raises :class:`~data_pipeline.errors.SchemaNotInstalledError` naming
the extra. There is no silent SQLite default: a database feature without
``--database-url`` / ``DATABASE_URL`` raises
:class:`~data_pipeline.errors.DatabaseNotConfiguredError`.

Every function returns plain values (dataclasses, ints), never Django objects, and
translates database failures at the boundary: a lost or refused connection becomes
:class:`~etl_core.errors.RetryableError`, anything else :class:`~etl_core.errors.FatalError`.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import ModuleType
from typing import Any

from data_pipeline.errors import DatabaseNotConfiguredError, SchemaNotInstalledError
from etl_core.errors import ConfigError, FatalError, FieldError, RetryableError

__all__ = [
    "CURATED_TABLES",
    "REFERENCE_TABLES",
    "RUN_OUTCOMES",
    "ApiState",
    "BackfillJobRecord",
    "BackfillPartitionRecord",
    "RunRecord",
    "backfill_job",
    "connect",
    "create_backfill_job",
    "finish_run",
    "get_run",
    "iter_reference_rows",
    "load_api_state",
    "load_batches",
    "load_partition",
    "record_api_failure",
    "running_backfill_jobs",
    "save_api_state",
    "schema_installed",
    "set_backfill_job_state",
    "start_run",
    "table_columns",
    "update_backfill_partition",
]

logger = logging.getLogger(__name__)

LANE = "data_pipeline"
RUN_OUTCOMES = ("succeeded", "partial", "failed")
# Curated table → (app label, model name) of the schema; loads may write only these.
CURATED_TABLES = {
    "retail_daily_sales": ("etl_retail", "DailySales"),
    "retail_sales_transaction": ("etl_retail", "SalesTransaction"),
}
# Reference tables enrichment joins may read.
REFERENCE_TABLES = {
    "retail_product": ("etl_retail", "Product"),
    "retail_store": ("etl_retail", "Store"),
}
_SQLITE_BATCH_ROWS = 1000
_REFERENCE_CHUNK_ROWS = 2000

_lock = threading.Lock()
_connected_url: str | None = None


@dataclass(frozen=True)
class RunRecord:
    """One run of this runtime as the ledger holds it."""

    run_id: str
    job: str
    dataset: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    inputs_count: int
    outputs_count: int
    quarantined_count: int
    failed_count: int
    rows_written: int
    error: str


@dataclass(frozen=True)
class ApiState:
    """Where ingestion of one API endpoint stands."""

    source: str
    endpoint: str
    cursor: str
    high_water_mark: datetime | None
    last_success_at: datetime | None
    consecutive_failures: int
    records_total: int


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


def schema_installed() -> bool:
    """True when the ``schema`` extra (``etl-database-schema``) is importable."""
    try:
        import etl_database_schema  # noqa: F401
    except ImportError:
        return False
    return True


def connect(
    database_url: str | None = None, *, feature: str = "the database ledger", migrate: bool = False
) -> None:
    """Configure the database for this process and check that its schema is up to date.

    Args:
        database_url: the URL; ``None`` reads ``DATABASE_URL``.
        feature: what needs the database, named in errors.
        migrate: apply pending migrations instead of refusing them (embedded SQLite use).

    Raises:
        SchemaNotInstalledError: the ``schema`` extra is not installed.
        DatabaseNotConfiguredError: no URL given and ``DATABASE_URL`` unset.
        ConfigError: the URL is invalid, another database is already connected, or the
            database lacks migrations (run ``etl-schema migrate``).
        RetryableError: the database could not be reached.
    """
    global _connected_url
    schema = _schema(feature)
    source = "argument" if database_url else "environment"
    url = (database_url or os.environ.get("DATABASE_URL", "")).strip()
    if not url:
        raise DatabaseNotConfiguredError(feature)
    with _lock:
        if _connected_url == url:
            return
        try:
            schema.setup(url)
        except schema.SchemaError as exc:
            raise ConfigError(
                f"{feature}: cannot use the database",
                [FieldError("DATABASE_URL", str(exc), source)],
            ) from exc
        shown = schema.redact_url(url)
        with _translated(shown):
            if migrate:
                applied = schema.migrate()
                logger.info("database migrated", extra={"database": shown, "applied": applied})
            pending = schema.pending_migrations()
        if pending:
            raise ConfigError(
                f"{feature}: database {shown} lacks {len(pending)} schema migration(s) "
                f"({', '.join(pending)}); run `etl-schema migrate`",
                [FieldError("DATABASE_URL", "schema not migrated", source)],
            )
        _connected_url = url


def start_run(
    job: str,
    *,
    dataset: str = "",
    parameters: Mapping[str, Any] | None = None,
    run_id: str | None = None,
) -> str:
    """Record that a run of ``job`` started; returns its run id (a new UUID unless given)."""
    run_id = run_id or uuid.uuid4().hex
    with _models("run ledger") as models:
        models["PipelineRun"].objects.create(
            run_id=run_id, lane=LANE, job=job, dataset=dataset, parameters=dict(parameters or {})
        )
    return run_id


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
    """Record the outcome of a running run: ``succeeded``, ``partial`` or ``failed``.

    Raises:
        ValueError: ``status`` is not one of :data:`RUN_OUTCOMES`.
        FatalError: no run with this id is running.
    """
    if status not in RUN_OUTCOMES:
        raise ValueError(f"run status {status!r} is not one of {', '.join(RUN_OUTCOMES)}")
    from django.utils import timezone

    with _models("run ledger") as models:
        updated = (
            models["PipelineRun"]
            .objects.filter(run_id=run_id, status="running")
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
        raise FatalError(f"run {run_id!r} is not a running run in the ledger")


def get_run(run_id: str) -> RunRecord | None:
    """The ledger's record of ``run_id``, or ``None`` when there is none."""
    with _models("run ledger") as models:
        run = models["PipelineRun"].objects.filter(run_id=run_id).first()
    if run is None:
        return None
    return RunRecord(
        run_id=run.run_id,
        job=run.job,
        dataset=run.dataset,
        status=run.status,
        started_at=run.started_at,
        finished_at=run.finished_at,
        inputs_count=run.inputs_count,
        outputs_count=run.outputs_count,
        quarantined_count=run.quarantined_count,
        failed_count=run.failed_count,
        rows_written=run.rows_written,
        error=run.error,
    )


def load_api_state(source: str, endpoint: str) -> ApiState | None:
    """The saved cursor and high-water mark of an API endpoint; ``None`` before its first run."""
    with _models("API ingestion state") as models:
        state = models["ApiIngestionState"].objects.filter(source=source, endpoint=endpoint).first()
    if state is None:
        return None
    return ApiState(
        source=state.source,
        endpoint=state.endpoint,
        cursor=state.cursor,
        high_water_mark=state.high_water_mark,
        last_success_at=state.last_success_at,
        consecutive_failures=state.consecutive_failures,
        records_total=state.records_total,
    )


def save_api_state(
    source: str,
    endpoint: str,
    *,
    cursor: str = "",
    high_water_mark: datetime | None = None,
    records: int = 0,
    run_id: str | None = None,
) -> None:
    """Record a successful ingestion window: new cursor / high-water mark, failures reset."""
    from django.db.models import F
    from django.utils import timezone

    now = timezone.now()
    with _models("API ingestion state") as models:
        state, _ = models["ApiIngestionState"].objects.get_or_create(
            source=source, endpoint=endpoint
        )
        run = models["PipelineRun"].objects.filter(run_id=run_id).first() if run_id else None
        models["ApiIngestionState"].objects.filter(pk=state.pk).update(
            cursor=cursor,
            high_water_mark=high_water_mark,
            last_attempt_at=now,
            last_success_at=now,
            last_error="",
            consecutive_failures=0,
            records_total=F("records_total") + records,
            last_run=run,
            updated_at=now,
        )


def record_api_failure(source: str, endpoint: str, error: str) -> None:
    """Record a failed ingestion attempt; the cursor and high-water mark stay where they were."""
    from django.db.models import F
    from django.utils import timezone

    now = timezone.now()
    with _models("API ingestion state") as models:
        state, _ = models["ApiIngestionState"].objects.get_or_create(
            source=source, endpoint=endpoint
        )
        models["ApiIngestionState"].objects.filter(pk=state.pk).update(
            last_attempt_at=now,
            last_error=error,
            consecutive_failures=F("consecutive_failures") + 1,
            updated_at=now,
        )


def load_partition(
    table: str, dt: date, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Replace partition ``dt`` of a curated table with ``rows``, in one transaction.

    Deletes the partition's rows, then inserts the new ones: with ``COPY`` on
    PostgreSQL, in batches elsewhere. ``rows`` is consumed as a stream (memory stays
    bounded); each row gives the values of ``columns`` in order, and a ``dt`` column,
    if given, must equal ``dt``. Re-running a load replaces rather than duplicates.

    Returns:
        The number of rows inserted.

    Raises:
        ValueError: unknown table or column, a row of the wrong length or partition.
    """
    names = _load_columns(table, columns)
    blank_columns = _blank_text_columns(table)
    blanks = [i for i, name in enumerate(names) if name in blank_columns]
    dt_index = names.index("dt") if "dt" in names else None
    if dt_index is None:
        names = ["dt", *names]

    def tagged() -> Iterator[Sequence[Any]]:
        for number, row in enumerate(rows, start=1):
            if len(row) != len(columns):
                raise ValueError(
                    f"{table} row {number} has {len(row)} values; expected {len(columns)}"
                )
            if blanks and any(row[i] is None for i in blanks):
                row = [("" if i in blanks and v is None else v) for i, v in enumerate(row)]
            if dt_index is None:
                yield (dt, *row)
            elif row[dt_index] != dt:
                raise ValueError(f"{table} row {number} has dt={row[dt_index]!r}; expected {dt}")
            else:
                yield row

    with _replacing(table, dt) as (cursor, connection):
        if connection.vendor == "postgresql":
            return _copy(cursor, connection, table, names, tagged())
        return _insert_batches(cursor, connection, table, names, tagged())


def load_batches(table: str, dt: date, columns: Sequence[str], batches: Iterable[Any]) -> int:
    """Like :func:`load_partition`, from Arrow record batches (columns named ``columns``).

    On PostgreSQL each batch is written as CSV by Arrow straight into ``COPY``: no
    Python object per value, which is what makes bulk loads fast. Elsewhere the
    batches become rows for batched inserts.

    Raises:
        ValueError: unknown table or column, or a ``dt`` value other than ``dt``.
    """
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.compute as pc  # type: ignore[import-untyped]

    names = _load_columns(table, columns)
    blanks = sorted(_blank_text_columns(table) & set(names))

    def tagged() -> Iterator[Any]:
        for batch in batches:
            for name in blanks:  # an unmatched enrichment leaves nulls; the table wants ''
                index = batch.schema.get_field_index(name)
                filled = pc.fill_null(batch.column(index), "")
                batch = batch.set_column(index, name, filled)
            if "dt" in names:
                if not pc.all(pc.equal(batch.column("dt"), pa.scalar(dt))).as_py():
                    raise ValueError(f"{table}: a batch holds dt values other than {dt}")
                yield batch.select(names)
            else:
                day = pa.array([dt] * batch.num_rows, type=pa.date32())
                yield batch.select(names).append_column("dt", day)

    loaded = names if "dt" in names else [*names, "dt"]
    with _replacing(table, dt) as (cursor, connection):
        if connection.vendor == "postgresql":
            return _copy_csv(cursor, connection, table, loaded, tagged())
        rows = (row for batch in tagged() for row in zip(*batch.to_pydict().values(), strict=True))
        return _insert_batches(cursor, connection, table, loaded, rows)


@contextmanager
def _replacing(table: str, dt: date) -> Iterator[tuple[Any, Any]]:
    """A transaction in which partition ``dt`` of ``table`` has been deleted."""
    from django.db import connection, transaction

    with _models("curated loads"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {_quoted(connection, table)} WHERE dt = %s", [dt])
        yield cursor, connection


def _blank_text_columns(table: str) -> set[str]:
    """Text columns that may be blank but not NULL: a missing value is loaded as ''."""
    with _models("curated loads"):
        from django.apps import apps
        from django.db import models

        model = apps.get_model(*CURATED_TABLES[table])
        return {
            field.column
            for field in model._meta.concrete_fields
            if isinstance(field, models.CharField | models.TextField)
            and field.blank
            and not field.null
        }


def table_columns(table: str) -> list[str]:
    """The loadable columns of a curated table (every concrete column but the primary key).

    Raises:
        ValueError: ``table`` is not a curated table.
    """
    if table not in CURATED_TABLES:
        raise ValueError(
            f"table {table!r} is not a curated table; expected one of "
            f"{', '.join(sorted(CURATED_TABLES))}"
        )
    with _models("curated loads"):
        from django.apps import apps

        model = apps.get_model(*CURATED_TABLES[table])
        return [field.column for field in model._meta.concrete_fields if not field.primary_key]


def iter_reference_rows(table: str, columns: Sequence[str]) -> Iterator[tuple[Any, ...]]:
    """Stream the ``columns`` of a reference table, in chunks (memory stays bounded).

    Raises:
        ValueError: unknown table or column.
    """
    if table not in REFERENCE_TABLES:
        raise ValueError(
            f"table {table!r} is not a reference table; expected one of "
            f"{', '.join(sorted(REFERENCE_TABLES))}"
        )
    with _models("reference tables"):
        from django.apps import apps

        model = apps.get_model(*REFERENCE_TABLES[table])
        known = {field.column: field.name for field in model._meta.concrete_fields}
        unknown = [column for column in columns if column not in known]
        if unknown:
            raise ValueError(
                f"{table} has no column(s) {', '.join(unknown)}; expected among "
                f"{', '.join(sorted(known))}"
            )
        fields = [known[column] for column in columns]
        query = model.objects.order_by("pk").values_list(*fields)
        yield from query.iterator(chunk_size=_REFERENCE_CHUNK_ROWS)


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

    with _models("backfill ledger") as models, transaction.atomic():
        job = models["BackfillJob"].objects.create(
            dataset=dataset,
            start_date=start,
            end_date=end,
            state="running",
            parameters=dict(parameters),
            max_attempts=max_attempts,
            requested_by=requested_by,
            started_at=timezone.now(),
        )
        models["BackfillPartition"].objects.bulk_create(
            models["BackfillPartition"](job=job, partition_date=dt) for dt in dates
        )
    return str(job.pk)


def backfill_job(job_id: str) -> BackfillJobRecord | None:
    """A backfill job with its partitions, or ``None`` when the id is unknown."""
    if not job_id.isdigit():
        return None
    with _models("backfill ledger") as models:
        job = models["BackfillJob"].objects.filter(pk=int(job_id)).first()
        return None if job is None else _job_record(models, job)


def running_backfill_jobs(dataset: str) -> list[BackfillJobRecord]:
    """Every backfill job of ``dataset`` the ledger says is running."""
    with _models("backfill ledger") as models:
        jobs = models["BackfillJob"].objects.filter(dataset=dataset, state="running")
        return [_job_record(models, job) for job in jobs]


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
    with _models("backfill ledger") as models:
        models["BackfillJob"].objects.filter(pk=int(job_id)).update(**changes)


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
    with _models("backfill ledger") as models:
        models["BackfillPartition"].objects.filter(job_id=int(job_id), partition_date=dt).update(
            **changes
        )


def _job_record(models: dict[str, Any], job: Any) -> BackfillJobRecord:
    partitions = models["BackfillPartition"].objects.filter(job=job).order_by("partition_date")
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


# --------------------------------------------------------------------------- internals


def _schema(feature: str) -> ModuleType:
    try:
        import etl_database_schema
    except ImportError as exc:
        raise SchemaNotInstalledError(feature) from exc
    return etl_database_schema


@contextmanager
def _models(feature: str) -> Iterator[dict[str, Any]]:
    """Connect if needed (from ``DATABASE_URL``) and yield the ledger's model classes by name."""
    if _connected_url is None:
        connect(feature=feature)
    from django.apps import apps
    from django.db import close_old_connections

    close_old_connections()
    try:
        with _translated(_schema(feature).redact_url(_connected_url or "")):
            yield {
                model.__name__: model for model in apps.get_app_config("etl_ledger").get_models()
            }
    finally:
        close_old_connections()


@contextmanager
def _translated(shown: str) -> Iterator[None]:
    """Translate Django database errors into the platform's retry semantics."""
    from django.db import Error, OperationalError

    try:
        yield
    except OperationalError as exc:
        raise RetryableError(f"database {shown} is unavailable: {exc}") from exc
    except Error as exc:
        raise FatalError(f"database {shown} refused the operation: {exc}") from exc


def _load_columns(table: str, columns: Sequence[str]) -> list[str]:
    if table not in CURATED_TABLES:
        raise ValueError(
            f"table {table!r} is not a curated table; expected one of "
            f"{', '.join(sorted(CURATED_TABLES))}"
        )
    with _models("curated loads"):
        from django.apps import apps

        model = apps.get_model(*CURATED_TABLES[table])
        known = {field.column for field in model._meta.concrete_fields if not field.primary_key}
    unknown = [column for column in columns if column not in known]
    if unknown or not columns or len(set(columns)) != len(columns):
        raise ValueError(
            f"columns {list(columns)!r} for {table} are invalid (unknown: {unknown}); expected "
            f"distinct names among {', '.join(sorted(known))}"
        )
    return list(columns)


def _quoted(connection: Any, name: str) -> str:
    quoted: str = connection.ops.quote_name(name)
    return quoted


def _copy(
    cursor: Any, connection: Any, table: str, names: list[str], rows: Iterable[Sequence[Any]]
) -> int:
    columns = ", ".join(_quoted(connection, name) for name in names)
    count = 0
    # cursor.cursor is the psycopg 3 cursor under Django's wrapper.
    with cursor.cursor.copy(f"COPY {_quoted(connection, table)} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def _copy_csv(
    cursor: Any, connection: Any, table: str, names: list[str], batches: Iterable[Any]
) -> int:
    import pyarrow.csv as pacsv  # type: ignore[import-untyped]

    columns = ", ".join(_quoted(connection, name) for name in names)
    options = pacsv.WriteOptions(include_header=False)
    count = 0
    statement = f"COPY {_quoted(connection, table)} ({columns}) FROM STDIN (FORMAT csv)"
    with cursor.cursor.copy(statement) as copy:
        for batch in batches:
            sink = io.BytesIO()
            pacsv.write_csv(batch, sink, options)
            copy.write(sink.getbuffer())
            count += batch.num_rows
    return count


def _insert_batches(
    cursor: Any, connection: Any, table: str, names: list[str], rows: Iterable[Sequence[Any]]
) -> int:
    columns = ", ".join(_quoted(connection, name) for name in names)
    placeholders = ", ".join(["%s"] * len(names))
    statement = f"INSERT INTO {_quoted(connection, table)} ({columns}) VALUES ({placeholders})"
    count = 0
    batch: list[Sequence[Any]] = []
    for row in rows:
        batch.append([_naive_utc(value) for value in row])
        if len(batch) == _SQLITE_BATCH_ROWS:
            cursor.executemany(statement, batch)
            count += len(batch)
            batch.clear()
    if batch:
        cursor.executemany(statement, batch)
        count += len(batch)
    return count


def _naive_utc(value: Any) -> Any:
    """SQLite stores datetimes as naive UTC text, as Django itself writes them."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value
