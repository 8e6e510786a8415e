"""Code columns compare bytewise, and a day partition's secondary indexes drop ``dt``.

Measured on a 1M-row day (bench/README.md, "Partitioned loads"): building the indexes of
a loaded partition costs most of what a load spends after its ``COPY``. Two changes make
them about twice as cheap to build, on PostgreSQL only (database work, no model state):

* the retail code columns (store codes, SKUs, transaction ids) get ``COLLATE "C"``: codes
  are identifiers, compared byte by byte, which lets sorts use abbreviated keys instead of
  the locale's comparison. Every column that joins on them changes together, so joins of
  curated and reference tables keep one collation;
* the secondary indexes of a partitioned curated table (``retail_txn_store_dt_idx``,
  ``retail_txn_sku_dt_idx``, ``retail_daily_store_dt_idx``) index the code alone: within a
  day partition ``dt`` is constant, and a query by code and day is pruned to the day's
  partition first. Their names stay those of the model state.

Rows are untouched (a collation change of a ``varchar`` rewrites indexes, not the table);
migrating back restores the database's default collation and the ``(code, dt)`` indexes.
SQLite compares text bytewise already and keeps its tables as they are.
"""

# mypy: allow-subclassing-any

from typing import Any

from django.db import migrations

from etl_database_schema.partitions import is_partitioned

CODE_COLUMNS = {
    "retail_store": ("store_code",),
    "retail_product": ("sku",),
    "retail_sales_transaction": ("transaction_id", "store_code", "sku"),
    "retail_daily_sales": ("store_code", "sku"),
    "retail_store_footfall": ("store_code",),
}
"""Table → its code columns compared bytewise (every column joined on a store or SKU code)."""
DAY_INDEXES = {
    "retail_txn_store_dt_idx": ("retail_sales_transaction", "store_code"),
    "retail_txn_sku_dt_idx": ("retail_sales_transaction", "sku"),
    "retail_daily_store_dt_idx": ("retail_daily_sales", "store_code"),
}
"""Secondary index of a partitioned curated table → (table, its code column)."""


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _collate(cursor: Any, collation: str) -> None:
    """Give every code column ``collation`` (its type and length unchanged)."""
    for table, columns in CODE_COLUMNS.items():
        for column in columns:
            cursor.execute(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = to_regclass(%s) AND attname = %s",
                [_quoted(table), column],
            )
            (kind,) = cursor.fetchone()
            cursor.execute(
                f"ALTER TABLE {_quoted(table)} ALTER COLUMN {_quoted(column)} "
                f"TYPE {kind} COLLATE {collation}"
            )


def _reindex_days(cursor: Any, *, with_dt: bool) -> None:
    """Rebuild the secondary indexes of the partitioned curated tables on the code alone
    (or on ``(code, dt)`` with ``with_dt``)."""
    for name, (table, column) in DAY_INDEXES.items():
        if not is_partitioned(cursor, table):
            continue
        key = f"{_quoted(column)}, dt" if with_dt else _quoted(column)
        cursor.execute(f"DROP INDEX IF EXISTS {_quoted(name)}")
        cursor.execute(f"CREATE INDEX {_quoted(name)} ON {_quoted(table)} ({key})")


def bytewise(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        _collate(cursor, '"C"')
        _reindex_days(cursor, with_dt=False)


def localised(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        _reindex_days(cursor, with_dt=True)
        _collate(cursor, '"default"')


class Migration(migrations.Migration):
    dependencies = [("etl_retail", "0003_partitioned_curated")]

    operations = [migrations.RunPython(bytewise, localised, elidable=False)]
