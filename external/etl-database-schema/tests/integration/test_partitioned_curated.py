"""Migration ``etl_retail.0003_partitioned_curated`` on PostgreSQL: curated tables become
partitioned by day of ``dt`` without losing a row, and migrating back undoes it."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

pytestmark = pytest.mark.postgres

RunPython = Callable[..., subprocess.CompletedProcess[str]]
RunCli = Callable[..., subprocess.CompletedProcess[str]]
DAYS = ("2024-05-01", "2024-05-02", "2024-05-31")


def _populate(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as con:
        for n, day in enumerate(DAYS):
            con.execute(
                "INSERT INTO retail_sales_transaction (dt, transaction_id, line_number, sold_at, "
                "store_code, sku, quantity, unit_price, amount, currency, region, run_id) "
                "SELECT %s, 'T' || i, 1, %s::timestamptz, 'S1', 'SKU-' || i, 1.5, 2.25, 3.38, "
                "'EUR', 'north', 'r1' FROM generate_series(1, %s) AS i",
                [day, f"{day} 09:30:00+00", 100 * (n + 1)],
            )
            con.execute(
                "INSERT INTO retail_daily_sales (dt, store_code, sku, units, revenue, "
                "transactions, currency) VALUES (%s, 'S1', 'SKU-1', 4, 9.5, 2, 'EUR')",
                [day],
            )


def _rows(url: str, table: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as con:
        return con.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()


def _shape(url: str, table: str) -> tuple[str, list[str], list[str]]:
    """relkind, the primary key's columns, the partitions (sorted)."""
    with psycopg.connect(url, autocommit=True) as con:
        (kind,) = con.execute(
            "SELECT relkind FROM pg_class WHERE oid = %s::regclass", [table]
        ).fetchone() or ("",)
        key = con.execute(
            "SELECT a.attname FROM pg_constraint c CROSS JOIN unnest(c.conkey) AS k(n) "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n "
            "WHERE c.conrelid = %s::regclass AND c.contype = 'p'",
            [table],
        ).fetchall()
        parts = con.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = %s::regclass "
            "ORDER BY 1",
            [table],
        ).fetchall()
    return kind, [row[0] for row in key], [row[0] for row in parts]


def test_populated_curated_tables_are_partitioned_by_day_without_losing_rows(
    run_cli: RunCli, run_python: RunPython, postgres_url: str
) -> None:
    before = run_cli("migrate", "--database-url", postgres_url, "etl_retail", "0001")
    assert before.returncode == 0, before.stderr
    _populate(postgres_url)
    rows = {
        table: _rows(postgres_url, table)
        for table in ("retail_sales_transaction", "retail_daily_sales")
    }

    migrated = run_cli("migrate", "--database-url", postgres_url, "etl_retail", "0003")

    assert migrated.returncode == 0, migrated.stderr
    assert "Applying etl_retail.0003_partitioned_curated... OK" in migrated.stdout
    for table, kept in rows.items():
        assert _rows(postgres_url, table) == kept
        kind, key, parts = _shape(postgres_url, table)
        assert (kind, sorted(key)) == ("p", ["dt", "id"])
        assert parts == sorted(
            [f"{table}_default", *(f"{table}_p{d.replace('-', '')}" for d in DAYS)]
        )
    created = run_python(
        f"""
        import etl_database_schema as s
        s.setup({postgres_url!r})
        from django.db import IntegrityError, transaction
        from etl_database_schema.retail.models import DailySales
        row = DailySales.objects.create(dt="2024-06-01", store_code="S2", sku="SKU-2", units=1,
                                        revenue=2, transactions=1, currency="EUR")
        print("id", row.id, DailySales.objects.filter(dt="2024-06-01").count())
        try:
            with transaction.atomic():
                DailySales.objects.create(dt="2024-05-01", store_code="S1", sku="SKU-1", units=1,
                                          revenue=2, transactions=1, currency="EUR")
        except IntegrityError as exc:
            print("duplicate refused:", type(exc.__cause__).__name__)
        """
    )
    assert created.returncode == 0, created.stderr
    assert f"id {len(DAYS) + 1} 1" in created.stdout  # the id sequence continues; default partition
    assert "duplicate refused: UniqueViolation" in created.stdout


def test_migrating_back_gives_plain_tables_with_every_row(
    run_cli: RunCli, postgres_url: str
) -> None:
    before = run_cli("migrate", "--database-url", postgres_url, "etl_retail", "0001")
    assert before.returncode == 0, before.stderr
    _populate(postgres_url)
    rows = _rows(postgres_url, "retail_sales_transaction")
    assert run_cli("migrate", "--database-url", postgres_url).returncode == 0

    back = run_cli("migrate", "--database-url", postgres_url, "etl_retail", "0001")

    assert back.returncode == 0, back.stderr
    assert _rows(postgres_url, "retail_sales_transaction") == rows
    assert _shape(postgres_url, "retail_sales_transaction") == ("r", ["id"], [])
    with psycopg.connect(postgres_url, autocommit=True) as con:
        (new_id,) = con.execute(
            "INSERT INTO retail_sales_transaction (dt, transaction_id, line_number, sold_at, "
            "store_code, sku, quantity, unit_price, amount, currency) VALUES ('2024-06-01', 'X', "
            "1, now(), 'S1', 'SKU', 1, 1, 1, 'EUR') RETURNING id"
        ).fetchone() or (0,)
    assert new_id == len(rows) + 1  # the identity continues after the kept ids
