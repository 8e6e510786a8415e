"""Loads of curated partitions into their tables: one partition replaced in one transaction.

A load deletes the partition's rows, then inserts the new ones: with ``COPY`` on
PostgreSQL (Arrow writes CSV straight into it, no Python object per value), in batches
elsewhere. Re-running a load replaces rather than duplicates; a failure leaves the
previous rows in place. Each load is one unit of work through the door
(:mod:`data_pipeline.db.door`).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

from data_pipeline.db.door import door

__all__ = ["CURATED_TABLES", "load_batches", "load_partition", "table_columns"]

CURATED_TABLES = {
    "retail_daily_sales": ("etl_retail", "DailySales"),
    "retail_sales_transaction": ("etl_retail", "SalesTransaction"),
    "retail_store_footfall": ("etl_retail", "StoreFootfall"),
}
"""Curated table → (app label, model name) of the schema; loads may write only these."""
_FEATURE = "curated loads"
_SQLITE_BATCH_ROWS = 1000


def load_partition(
    table: str, dt: date, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Replace partition ``dt`` of a curated table with ``rows``, in one transaction.

    ``rows`` is consumed as a stream (memory stays bounded); each row gives the values of
    ``columns`` in order, and a ``dt`` column, if given, must equal ``dt``.

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


def table_columns(table: str) -> list[str]:
    """The loadable columns of a curated table (every concrete column but the primary key).

    Raises:
        ValueError: ``table`` is not a curated table.
    """
    return [field.column for field in _fields(table) if not field.primary_key]


@contextmanager
def _replacing(table: str, dt: date) -> Iterator[tuple[Any, Any]]:
    """A transaction in which partition ``dt`` of ``table`` has been deleted."""
    from django.db import connection, transaction

    app, _ = CURATED_TABLES[table]
    with (
        door(_FEATURE) as schema,
        schema.models(app),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"DELETE FROM {_quoted(connection, table)} WHERE dt = %s", [dt])
        yield cursor, connection


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
