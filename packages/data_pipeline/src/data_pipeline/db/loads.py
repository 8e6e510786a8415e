"""Loads of curated partitions into their tables: a day replaced whole, never half.

On PostgreSQL a curated table is partitioned by day of ``dt`` (migration
``etl_retail.0003_partitioned_curated``): a load removes, by name, the staging tables a
cut-short load of the day left, ``COPY``s the rows (Arrow batches in PostgreSQL's binary
format, :mod:`data_pipeline.db.binary_copy`, or CSV written by Arrow; no Python object per
value; the next batch encoded on a thread while the server parses this one) into a fresh
staging table shaped like the day's partition (``FREEZE``: created in the same
transaction; ids numbered by the client from one block of the table's sequence when the
caller gives the row count), builds its indexes after the data, then,
in one short transaction, detaches and drops the day's partition and attaches the staging
table in its place (:mod:`etl_database_schema.partitions`). Readers see the old rows
until that commit and the new rows after it. Elsewhere (SQLite, or a table that is not
partitioned) a load deletes the day's rows and inserts the new ones in one transaction;
on PostgreSQL its steps before the first row is read wait for other sessions' locks no
longer than the swap does, and give way and try again alike (:data:`_LOCK_TIMEOUT_MS`).

Either way a re-run replaces rather than duplicates and a failure at any step leaves the
previous rows in place. Each load is one unit of work through the door
(:mod:`data_pipeline.db.door`).

A load given a ``fence`` (the partition's lease, :class:`Fence`) is fenced twice: the
lease is checked in the object store right before the commit (cheap; a writer that knows
its lease is lost stops there), and the transaction that makes the rows visible (the
swap, or the ``DELETE`` and ``INSERT``s) records the lease's fencing token for the table
and day (:mod:`etl_database_schema.load_fences`, table ``etl_load_fence``) by a
conditional upsert, rolled back with :class:`~data_pipeline.errors.LoadFencedError` when
a newer token of the lease loaded the day already. So a writer that stalled after its
check (a pause, the swap's lock waits) while its lease was taken over and the new holder
loaded never replaces the newer rows, and a re-run under the same token replaces its own
load. Every load of the pipeline (``run``, ``transform``/``load``, backfills, their
Celery tasks, withdrawals) holds the partition lease of its dataset and day
(:func:`data_pipeline.lease.lease_key`), so tokens are compared per lease of one store
(its key and the store's canonical root URL): two datasets loading one table, or two
stores sharing the database (staging and production, whose tokens are unrelated), have a
row each and do not fence each other. A load without a fence
(a direct call of :func:`load_partition` or :func:`load_batches`) neither reads nor
writes the token.
"""

from __future__ import annotations

import functools
import io
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

from data_pipeline.db.binary_copy import SIGNATURE, TRAILER, binary_encoder
from data_pipeline.db.door import door
from data_pipeline.errors import LoadFencedError
from data_pipeline.lease import tokens_restarted
from etl_core.faults import Step, fault_point
from etl_core.threads import result_of

__all__ = ["CURATED_TABLES", "Fence", "load_batches", "load_partition", "table_columns"]

_FEATURE = "curated loads"
_SQLITE_BATCH_ROWS = 1000
_LOCK_TIMEOUT_MS = 2000
"""How long a load's commit step waits for a lock another session holds (PostgreSQL's
``lock_timeout``): the swap for the table's (readers queue behind it meanwhile), a load
into a table that is not partitioned for the table's, the day's rows' or the day's fence
row's. Past it the attempt is rolled back and tried again, up to :data:`_LOCK_ATTEMPTS`
times; the last one's error leaves as the door's retryable ``DatabaseUnavailableError``."""
_LOCK_ATTEMPTS = 5
_RESERVE_LOCK_TIMEOUT_MS = 1000
"""How long reserving ids waits for the sequence (a transaction that took one holds it)."""
_LOCK_TIMEOUT = "55P03"  # lock_not_available
_NO_BLOCK = {
    _LOCK_TIMEOUT: f"the sequence was busy for {_RESERVE_LOCK_TIMEOUT_MS} ms",
    "42501": "the loading role may not alter the sequence",  # insufficient_privilege
    "2200H": "the sequence has too few values left for a block",  # limit exceeded
}
"""Why a load goes on without a block of ids, by SQLSTATE: the per-row default still works."""
_INDEX_BUILDERS = 2
"""A staging table's indexes built at the same time (each with PostgreSQL's own parallel
sort workers, ``max_parallel_maintenance_workers``)."""


class _CuratedTables(Mapping[str, tuple[str, str]]):
    """The schema package's curated tables, table → (app label, model name), read from it
    on first use (importing this module does not import the schema)."""

    @functools.cached_property
    def _tables(self) -> dict[str, tuple[str, str]]:
        with door(_FEATURE) as schema:
            from etl_database_schema import retail

            curated = retail.CURATED_TABLES.items()
            return {table: (schema.RETAIL_APP, model) for table, model in curated}

    def __getitem__(self, table: str) -> tuple[str, str]:
        return self._tables[table]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tables)

    def __len__(self) -> int:
        return len(self._tables)


CURATED_TABLES: Mapping[str, tuple[str, str]] = _CuratedTables()
"""Curated table → (app label, model name) of the schema; loads may write only these."""


class Fence(Protocol):
    """The lease a load holds (:class:`etl_core.storage.Lease`): its ``key``, its store's
    ``store_url``, and ``check()``, which raises once the lease is lost and returns its
    fencing token."""

    @property
    def key(self) -> str:
        """The lease's key: tokens are compared per lease."""
        ...

    @property
    def store_url(self) -> str:
        """The canonical root URL of the store holding the lease: tokens are compared per
        lease of one store (two stores sharing a database have unrelated tokens)."""
        ...

    def check(self) -> int:
        """Confirm the lease is still held; return its fencing token."""
        ...


logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Target:
    """Where a load writes its rows: the table itself, or a fresh staging table."""

    cursor: Any
    connection: Any
    table: str
    fresh: bool
    """Created in this transaction (``COPY … (FREEZE)`` is allowed)."""
    ids: range | None = None
    """Ids reserved for the rows, in order (else ``id`` takes its default per row)."""


def load_partition(
    table: str,
    dt: date,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    fence: Fence | None = None,
) -> int:
    """Replace partition ``dt`` of a curated table with ``rows`` (see the module).

    ``rows`` is consumed as a stream (memory stays bounded); each row gives the values of
    ``columns`` in order, and a ``dt`` column, if given, must equal ``dt``. ``fence``, the
    partition's lease, is checked right before the rows become visible and its token
    recorded in the same transaction (see the module).

    Returns:
        The number of rows inserted.

    Raises:
        ValueError: unknown table or column, a row of the wrong length or partition.
        LeaseLostError: ``fence``'s lease was taken over; nothing is replaced.
        LoadFencedError: a newer token of ``fence``'s lease loaded the partition already
            (this loader's lease was taken over); nothing is replaced.
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

    with _replacing(table, dt, fence, None) as target:
        if target.connection.vendor == "postgresql":
            return _copy(target, names, tagged())
        return _insert_batches(target, names, tagged())


def load_batches(
    table: str,
    dt: date,
    columns: Sequence[str],
    batches: Iterable[Any],
    *,
    fence: Fence | None = None,
    rows: int | None = None,
    analyze: bool = False,
) -> int:
    """Like :func:`load_partition`, from Arrow record batches (columns named ``columns``).

    On PostgreSQL each batch is encoded by Arrow kernels straight into ``COPY`` (binary
    format, or CSV for a column without an exact binary encoding): no Python object per
    value, which is what makes bulk loads fast. Elsewhere the batches become rows for
    batched inserts. ``rows``, the number of rows the batches hold when the caller knows
    it, lets a load into a partitioned table take its ids from the table's sequence in
    one block instead of one ``nextval`` per row. ``analyze`` runs ``ANALYZE`` on the
    filled staging table of a partitioned table, in the transaction that filled it (the
    day partition then has statistics when it is swapped in; without it autovacuum, if
    the server runs it, gathers them).

    Raises:
        ValueError: unknown table or column, a ``dt`` value other than ``dt``, or more
            rows than ``rows``.
        LeaseLostError: ``fence``'s lease was taken over; nothing is replaced.
        LoadFencedError: a newer token of ``fence``'s lease loaded the partition already
            (this loader's lease was taken over); nothing is replaced.
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
    with _replacing(table, dt, fence, rows, analyze=analyze) as target:
        if target.connection.vendor == "postgresql":
            return _copy_batches(target, loaded, tagged())
        values = (
            row for batch in tagged() for row in zip(*batch.to_pydict().values(), strict=True)
        )
        return _insert_batches(target, loaded, values)


def table_columns(table: str) -> list[str]:
    """The loadable columns of a curated table (every concrete column but the primary key).

    Raises:
        ValueError: ``table`` is not a curated table.
    """
    return [field.column for field in _fields(table) if not field.primary_key]


@contextmanager
def _replacing(
    table: str, dt: date, fence: Fence | None, rows: int | None, *, analyze: bool = False
) -> Iterator[_Target]:
    """The target to write partition ``dt`` of ``table`` into; on a normal exit its rows
    replace the partition's (on an error the partition is left as it was). ``rows``, when
    known, is how many ids to reserve for them, and ``analyze`` whether to gather the
    filled staging table's statistics (partitioned tables only)."""
    from django.db import connection

    _lease_shaped(fence)
    app, _ = CURATED_TABLES[table]
    with door(_FEATURE) as schema, schema.models(app):
        partitioned = False
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                partitioned = schema.partitions.is_partitioned(cursor, table)
        if not partitioned:
            with _in_place(schema, table, dt, fence) as target:
                yield target
            return
        started = time.monotonic()
        with _staging(schema, table, dt, rows, analyze=analyze) as target:
            yield target
        _swap_in(schema, app, table, dt, target.table, fence, started)


@contextmanager
def _in_place(schema: Any, table: str, dt: date, fence: Fence | None) -> Iterator[_Target]:
    """The table itself, in a transaction that first records ``fence``'s token (its lease
    checked) and deletes the day's rows, committed on a normal exit after a second check of
    the lease. Those first steps, which wait for locks other sessions hold (the table's,
    the day's rows', the day's fence row), run before any row is read: one that waits
    longer than :data:`_LOCK_TIMEOUT_MS` rolls the transaction back and is tried again
    (:func:`_gives_way`). The fence row stays locked until the commit, so a loader of a
    newer token waits for this one and then replaces its rows, never the other way round.

    Raises:
        LeaseLostError: ``fence``'s lease was taken over; nothing is replaced.
        LoadFencedError: a newer token of the lease loaded the day already.
    """
    from django.db import OperationalError, connection, transaction

    token = _fenced(fence)
    for attempt in itertools.count(1):
        reading = False
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                _bound_lock_waits(connection, cursor)
                _record_token(schema, cursor, table, dt, fence, token)
                cursor.execute(f"DELETE FROM {_quoted(connection, table)} WHERE dt = %s", [dt])
                reading = True
                yield _Target(cursor, connection, table, fresh=False)
                _fenced(fence)  # the lease still held right before the commit
            return
        except OperationalError as exc:
            if reading or not _gives_way(exc, attempt, _IN_PLACE_WAITED, table):
                raise


_IN_PLACE_WAITED = (
    "a load waited %d ms for a lock (the table's, the day's rows' or the day's load fence "
    "row); trying again"
)
_SWAP_WAITED = (
    "partition swap waited %d ms for a lock (the table's, or the day's load fence row); "
    "trying again"
)


def _bound_lock_waits(connection: Any, cursor: Any) -> None:
    """Make every lock wait of the caller's transaction end after :data:`_LOCK_TIMEOUT_MS`
    (PostgreSQL; SQLite's waits for its database lock are bounded by its busy timeout)."""
    if connection.vendor == "postgresql":
        cursor.execute(f"SET LOCAL lock_timeout = {int(_LOCK_TIMEOUT_MS)}")


def _gives_way(exc: Exception, attempt: int, waited: str, table: str) -> bool:
    """Whether an attempt that failed with ``exc`` waited too long for a lock and may be
    tried again (it is not the last of :data:`_LOCK_ATTEMPTS`): logged with ``waited``,
    then a pause growing with ``attempt``. Otherwise the caller raises ``exc``."""
    if getattr(exc.__cause__, "sqlstate", None) != _LOCK_TIMEOUT or attempt >= _LOCK_ATTEMPTS:
        return False
    logger.warning(waited, _LOCK_TIMEOUT_MS, extra={"attempt": attempt, "table": table})
    time.sleep(0.5 * attempt)
    return True


@contextmanager
def _staging(
    schema: Any, table: str, dt: date, rows: int | None, *, analyze: bool = False
) -> Iterator[_Target]:
    """A fresh staging table for the day (leftovers of a cut-short load dropped first),
    created in the transaction that fills it, committed on a normal exit (analysed first
    with ``analyze``); with ``rows``, ids for them reserved first in a short transaction of
    its own."""
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        dropped = schema.partitions.drop_leftover_staging(cursor, table, dt)
    if dropped:
        logger.info("dropped staging tables of a cut-short load", extra={"tables": dropped})
    ids = _reserved_ids(schema, table, rows) if rows else None
    with transaction.atomic(), connection.cursor() as cursor:
        staging = schema.partitions.create_staging(cursor, table, dt)
        yield _Target(cursor, connection, staging, fresh=True, ids=ids)
        if analyze:
            cursor.execute(f"ANALYZE {_quoted(connection, staging)}")


def _reserved_ids(schema: Any, table: str, rows: int) -> range | None:
    """Ids for ``rows`` rows from one block of the table's sequence, or ``None`` (the rows
    take the default per row) when it has none or its lock is held too long."""
    from django.db import DatabaseError, connection, transaction

    try:
        with transaction.atomic(), connection.cursor() as cursor:
            first = schema.partitions.reserve_ids(
                cursor, table, rows, lock_timeout_ms=_RESERVE_LOCK_TIMEOUT_MS
            )
    except DatabaseError as exc:
        why = _NO_BLOCK.get(getattr(exc.__cause__, "sqlstate", None) or "")
        if why is None:
            raise
        logger.warning(
            "no block of ids (%s); the rows take their ids one by one",
            why,
            extra={"table": table},
        )
        return None
    return None if first is None else range(first, first + rows)


def _swap_in(
    schema: Any, app: str, table: str, dt: date, staging: str, fence: Fence | None, started: float
) -> None:
    """Index the filled staging table, check the fence, swap it in for the day's partition."""
    clock = [started, time.monotonic()]
    fault_point(Step.LOAD_INDEX)
    indexes = _build_indexes(schema, app, table, staging)
    clock.append(time.monotonic())
    fault_point(Step.LOAD_SWAP)
    token = _fenced(fence)

    def record(cursor: Any) -> None:
        _record_token(schema, cursor, table, dt, fence, token)

    try:
        replaced = _swap(schema.partitions, table, dt, staging, indexes, record)
    except LoadFencedError:
        _drop_staging(staging)
        raise
    clock.append(time.monotonic())
    copy, build, swap = (round(b - a, 3) for a, b in itertools.pairwise(clock))
    logger.info(
        "partition swapped",
        extra={
            "partition": schema.partitions.partition_name(table, dt),
            "replaced": replaced,
            "copy_seconds": copy,
            "index_seconds": build,
            "swap_seconds": swap,
        },
    )


def _drop_staging(staging: str) -> None:
    """Drop this load's own staging table (a refused load leaves nothing behind); a
    failure is logged, and the next load of the day drops it as a leftover."""
    from django.db import DatabaseError, connection, transaction

    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {_quoted(connection, staging)}")
    except DatabaseError:
        logger.warning("could not drop a refused load's staging table", exc_info=True)


def _swap(
    partitions: Any,
    table: str,
    dt: date,
    staging: str,
    indexes: int,
    record: Callable[[Any], None],
) -> bool:
    """Swap the staging table in, its fencing token recorded first in the same transaction
    (``record``); a swap that waited too long for the table's lock (a long query on it) or
    for the day's fence row (a holder stalled in its own swap) is rolled back and tried
    again, up to :data:`_LOCK_ATTEMPTS` times."""
    from django.db import OperationalError, connection, transaction

    for attempt in itertools.count(1):
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                # the token's upsert waits for the fence row no longer than the swap for
                # the table: a holder stalled in its swap transaction holds that row
                _bound_lock_waits(connection, cursor)
                record(cursor)
                replaced: bool = partitions.swap_partition(
                    cursor,
                    table,
                    dt,
                    staging,
                    indexes=indexes,
                    lock_timeout_ms=_LOCK_TIMEOUT_MS,
                    before_attach=lambda: fault_point(Step.LOAD_ATTACH),
                )
            return replaced
        except OperationalError as exc:
            if not _gives_way(exc, attempt, _SWAP_WAITED, table):
                raise
    raise AssertionError("unreachable")  # pragma: no cover (the loop returns or raises)


def _build_indexes(schema: Any, app: str, table: str, staging: str) -> int:
    """Build the staging table's indexes, up to :data:`_INDEX_BUILDERS` at a time (each on
    a connection of its own thread), then make the constraints of those that back one."""
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        builds = schema.partitions.staging_index_builds(cursor, table, staging)
    workers = max(1, min(_INDEX_BUILDERS, len(builds)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="etl-index") as pool:
        for _ in pool.map(functools.partial(_build_index, app), builds):
            pass
    with transaction.atomic(), connection.cursor() as cursor:
        indexes: int = schema.partitions.finish_staging_indexes(cursor, table, staging)
    return indexes


def _build_index(app: str, statement: str) -> None:
    from django.db import connection, transaction

    try:
        with (
            door(_FEATURE) as schema,
            schema.models(app),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            for setting in schema.partitions.INDEX_SETTINGS:
                cursor.execute(setting)
            cursor.execute(statement)
    finally:
        connection.close()  # this thread's own connection


def _lease_shaped(fence: Fence | None) -> None:
    """Refuse, before any work, a ``fence`` that is not a lease.

    Raises:
        TypeError: ``fence`` lacks a ``key``, a ``store_url`` or ``check()`` (a bare check
            callable, as an earlier release took).
    """
    if fence is not None and (
        not isinstance(getattr(fence, "key", None), str)
        or not isinstance(getattr(fence, "store_url", None), str)
        or not callable(getattr(fence, "check", None))
    ):
        raise TypeError(
            f"fence must be the partition's lease (its key, store_url and check(), an "
            f"etl_core.storage.Lease), got {fence!r}"
        )


def _fenced(fence: Fence | None) -> int | None:
    """Check ``fence``'s lease in the store (raises once it is lost); its token, if any."""
    return None if fence is None else fence.check()


def _record_token(
    schema: Any, cursor: Any, table: str, dt: date, fence: Fence | None, token: int | None
) -> None:
    """Record ``fence``'s ``token`` as the one ``table``'s day ``dt`` is loaded under, in
    the caller's transaction (nothing without a fence).

    Raises:
        LoadFencedError: a newer token of the lease loaded the day already; the caller's
            transaction is to be rolled back (the error leaving it does).
    """
    if fence is None or token is None:
        return
    store = fence.store_url
    newer = schema.load_fences.record_load_token(
        cursor, table, dt, store=store, lease=fence.key, token=token
    )
    if newer is not None:
        raise LoadFencedError(
            table,
            dt,
            token,
            newer,
            key=fence.key,
            store=store,
            restarted=tokens_restarted(fence, token),
        )


def _fields(table: str) -> list[Any]:
    """The concrete fields of a curated table's model.

    Raises:
        ValueError: ``table`` is not a curated table.
    """
    if table not in CURATED_TABLES:
        raise ValueError(
            f"table {table!r} is not a curated table; expected one of "
            f"{', '.join(sorted(CURATED_TABLES))}"
        )
    app, model = CURATED_TABLES[table]
    with door(_FEATURE) as schema, schema.models(app) as models:
        return list(models[model]._meta.concrete_fields)


def _blank_text_columns(table: str) -> set[str]:
    """Text columns that may be blank but not NULL: a missing value is loaded as ''."""
    from django.db import models

    return {
        field.column
        for field in _fields(table)
        if isinstance(field, models.CharField | models.TextField) and field.blank and not field.null
    }


def _load_columns(table: str, columns: Sequence[str]) -> list[str]:
    known = set(table_columns(table))
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


def _copy_statement(target: _Target, names: list[str], *options: str) -> str:
    columns = ", ".join(_quoted(target.connection, name) for name in names)
    chosen = [*options, *(["FREEZE"] if target.fresh else [])]
    with_options = f" ({', '.join(chosen)})" if chosen else ""
    return f"COPY {_quoted(target.connection, target.table)} ({columns}) FROM STDIN{with_options}"


def _copy(target: _Target, names: list[str], rows: Iterable[Sequence[Any]]) -> int:
    count = 0
    # cursor.cursor is the psycopg 3 cursor under Django's wrapper.
    with target.cursor.cursor.copy(_copy_statement(target, names)) as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def _copy_batches(target: _Target, names: list[str], batches: Iterable[Any]) -> int:
    """``COPY`` Arrow batches in PostgreSQL's binary format when every column can be
    encoded exactly (:mod:`data_pipeline.db.binary_copy`), else as CSV written by Arrow.

    A batch is sent on a thread of its own while the caller's thread reads the next ones
    (and the encoder encodes them), so the server always has rows to parse."""
    stream = iter(batches)
    if target.ids is not None:
        stream = _numbered(stream, target.ids, target.table)
        names = [*names, "id"]
    first = next(stream, None)
    if first is None:
        return 0
    stream = itertools.chain([first], stream)
    encode = binary_encoder(first.schema, _column_types(target))
    if encode is None:
        logger.info("rows copied as CSV: a column has no exact binary encoding")
        return _copy_csv(target, names, stream)
    count = 0
    with target.cursor.cursor.copy(_copy_statement(target, names, "FORMAT binary")) as copy:
        copy.write(SIGNATURE)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="etl-copy") as sender:
            sent: Future[None] | None = None
            for rows, encoded in _encoded_ahead(encode, first.schema, stream):
                if sent is not None:
                    result_of(sent)  # one batch in flight: memory stays bounded
                sent = sender.submit(copy.write, encoded)
                count += rows
            if sent is not None:
                result_of(sent)
        copy.write(TRAILER)
    return count


def _encoded_ahead(
    encode: Callable[[Any], memoryview], schema: Any, batches: Iterable[Any]
) -> Iterator[tuple[int, memoryview]]:
    """(rows, binary rows) of each batch, the next batch encoded on a worker thread while
    the caller sends this one: the client's encoding overlaps the server's parsing.

    The batches are read on the caller's thread (fault points and signals stay there);
    at most two encoded batches are held at a time.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="etl-encode") as pool:
        pending: tuple[int, Future[memoryview]] | None = None
        for batch in batches:
            cast = batch if batch.schema == schema else batch.cast(schema)
            submitted = (cast.num_rows, pool.submit(encode, cast))
            if pending is not None:
                yield pending[0], result_of(pending[1])
            pending = submitted
        if pending is not None:
            yield pending[0], result_of(pending[1])


def _numbered(batches: Iterator[Any], ids: range, table: str) -> Iterator[Any]:
    """Each batch with an ``id`` column taking the next of ``ids``.

    Raises:
        ValueError: the batches hold more rows than ``ids``.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    start, offsets = 0, pa.array([], type=pa.int64())
    for batch in batches:
        end = start + batch.num_rows
        if end > len(ids):
            raise ValueError(f"{table}: the batches hold more than the {len(ids)} rows announced")
        if len(offsets) < batch.num_rows:  # 0, 1, 2, …, made once per batch size
            offsets = pa.array(range(batch.num_rows), type=pa.int64())
        numbers = pc.add_checked(offsets.slice(0, batch.num_rows), ids.start + start)
        yield batch.append_column("id", numbers)
        start = end


def _column_types(target: _Target) -> dict[str, str]:
    """Column → its PostgreSQL type without modifier (``character varying``)."""
    target.cursor.execute(
        "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
        [_quoted(target.connection, target.table)],
    )
    return dict(target.cursor.fetchall())


def _copy_csv(target: _Target, names: list[str], batches: Iterable[Any]) -> int:
    import pyarrow.csv as pacsv  # type: ignore[import-untyped]

    options = pacsv.WriteOptions(include_header=False)
    count = 0
    statement = _copy_statement(target, names, "FORMAT csv")
    with target.cursor.cursor.copy(statement) as copy:
        for batch in batches:
            sink = io.BytesIO()
            pacsv.write_csv(batch, sink, options)
            copy.write(sink.getbuffer())
            count += batch.num_rows
    return count


def _insert_batches(target: _Target, names: list[str], rows: Iterable[Sequence[Any]]) -> int:
    cursor, connection = target.cursor, target.connection
    columns = ", ".join(_quoted(connection, name) for name in names)
    placeholders = ", ".join(["%s"] * len(names))
    statement = (
        f"INSERT INTO {_quoted(connection, target.table)} ({columns}) VALUES ({placeholders})"
    )
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
