"""The partitioned curated tables lose their ``(id, dt)`` primary key; their natural key stays.

A day partition is written whole by a load, which builds every index of the table on it
(bench/README.md, "DB load: the surrogate key's index dropped"). The ``(id, dt)`` index
was one of four per sales day: no query of the platform reads a curated row by ``id``,
and each row is already identified by its unique key, which leads with ``dt``
(``retail_sales_transaction_line``: the day, the transaction and its line;
``retail_daily_sales_store_sku``). ``id`` stays, numbered by its sequence as before (loads
still reserve a block for their rows) and ``NOT NULL``; it is just no longer indexed, so
an ORM lookup by ``pk`` scans the table. Django's model state keeps ``id`` as its
primary key (this is database work only, on PostgreSQL, as ``0003`` was).

Rows are untouched (dropping a constraint rewrites nothing); migrating back adds the
``(id, dt)`` primary key again, built on every partition. SQLite keeps its tables as
they are.
"""

# mypy: allow-subclassing-any

from typing import Any

from django.db import migrations

from etl_database_schema.partitions import is_partitioned

PRIMARY_KEYS = {
    "retail_sales_transaction": "retail_sales_transaction_pkey",
    "retail_daily_sales": "retail_daily_sales_pkey",
}
"""Partitioned curated table → its ``(id, dt)`` primary key constraint (``0003``)."""


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def drop_surrogate_key(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for table, constraint in PRIMARY_KEYS.items():
            if is_partitioned(cursor, table):
                cursor.execute(
                    f"ALTER TABLE {_quoted(table)} DROP CONSTRAINT IF EXISTS {_quoted(constraint)}"
                )


def add_surrogate_key(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for table, constraint in PRIMARY_KEYS.items():
            if is_partitioned(cursor, table):
                cursor.execute(
                    f"ALTER TABLE {_quoted(table)} ADD CONSTRAINT {_quoted(constraint)} "
                    f"PRIMARY KEY (id, dt)"
                )


class Migration(migrations.Migration):
    dependencies = [("etl_retail", "0004_bytewise_code_keys")]

    operations = [migrations.RunPython(drop_surrogate_key, add_surrogate_key, elidable=False)]
