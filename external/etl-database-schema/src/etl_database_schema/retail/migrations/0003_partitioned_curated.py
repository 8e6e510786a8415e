"""Curated tables become PostgreSQL tables partitioned by day of ``dt``.

Loads then replace a day by attaching a partition built beside the table
(:mod:`etl_database_schema.partitions`) instead of deleting and inserting rows under
the table's indexes. Every row is kept: the rows move into one partition per day they
hold, ``id`` keeps its values, and the primary key becomes ``(id, dt)``. Django's model
state does not change (``id`` stays the model's primary key), so this is database work
only, on PostgreSQL; SQLite keeps plain tables (loads delete and insert there).
"""

# mypy: allow-subclassing-any

from typing import Any

from django.db import migrations

from etl_database_schema.partitions import partition_table, unpartition_table

TABLES = ("retail_sales_transaction", "retail_daily_sales")
"""The curated tables at the time of this migration."""


def partition(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for table in TABLES:
            partition_table(cursor, table)


def unpartition(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for table in TABLES:
            unpartition_table(cursor, table)


class Migration(migrations.Migration):
    dependencies = [("etl_retail", "0001_initial")]

    operations = [migrations.RunPython(partition, unpartition, elidable=False)]
