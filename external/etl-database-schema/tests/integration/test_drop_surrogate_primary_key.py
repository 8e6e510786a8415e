"""Migration ``etl_retail.0005_drop_surrogate_primary_key`` on PostgreSQL: the partitioned
curated tables keep every row and their natural unique key but no ``(id, dt)`` index;
migrating back restores it."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

pytestmark = pytest.mark.postgres

RunCli = Callable[..., subprocess.CompletedProcess[str]]
RunPython = Callable[..., subprocess.CompletedProcess[str]]
TABLES = ("retail_sales_transaction", "retail_daily_sales")
DAYS = ("2024-05-01", "2024-05-02")


def _populate(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as con:
        for day in DAYS:
            con.execute(
                "INSERT INTO retail_sales_transaction (dt, transaction_id, line_number, sold_at, "
                "store_code, sku, quantity, unit_price, amount, currency) "
                "SELECT %s, 'T' || i, 1, now(), 'S' || (i %% 3), 'SKU-' || i, 1, 2, 2, 'EUR' "
                "FROM generate_series(1, 40) AS i",
                [day],
            )
            con.execute(
                "INSERT INTO retail_daily_sales (dt, store_code, sku, units, revenue, "
                "transactions, currency) VALUES (%s, 'S1', 'SKU-1', 4, 9.5, 2, 'EUR')",
                [day],
            )


def _rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url, autocommit=True) as con:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in TABLES}


def _keys(url: str) -> dict[str, list[str]]:
    """Table → its primary key and unique constraints, as ``<type>: <definition>``,
    on the table and on its default partition (where the rows inserted here go)."""
    with psycopg.connect(url, autocommit=True) as con:
        return {
            table: [
                f"{kind}: {definition}"
                for kind, definition in con.execute(
                    "SELECT contype, pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('p', 'u') ORDER BY 1, 2",
                    [[table, f"{table}_default"]],
                ).fetchall()
            ]
            for table in TABLES
        }


def test_the_surrogate_primary_key_is_dropped_without_losing_rows_or_the_natural_key(
    run_cli: RunCli, run_python: RunPython, postgres_url: str
) -> None:
    before = run_cli("migrate", "--database-url", postgres_url, "etl_retail", "0004")
    assert before.returncode == 0, before.stderr
    _populate(postgres_url)
    rows = _rows(postgres_url)
    assert _keys(postgres_url)["retail_daily_sales"][0] == "p: PRIMARY KEY (id, dt)"

    migrated = run_cli("migrate", "--database-url", postgres_url)

    assert migrated.returncode == 0, migrated.stderr
    assert "Applying etl_retail.0005_drop_surrogate_primary_key... OK" in migrated.stdout
    assert _rows(postgres_url) == rows
    assert _keys(postgres_url) == {
        "retail_sales_transaction": ["u: UNIQUE (dt, transaction_id, line_number)"] * 2,
        "retail_daily_sales": ["u: UNIQUE (dt, store_code, sku)"] * 2,
    }
    created = run_python(
        f"""
        import etl_database_schema as s
        s.setup({postgres_url!r})
        from django.db import IntegrityError, transaction
        from etl_database_schema.retail.models import DailySales
        row = DailySales.objects.create(dt="2024-05-01", store_code="S2", sku="SKU-2", units=1,
                                        revenue=2, transactions=1, currency="EUR")
        print("id", row.id, DailySales.objects.get(pk=row.id).store_code)
        try:
            with transaction.atomic():
                DailySales.objects.create(dt="2024-05-01", store_code="S1", sku="SKU-1", units=1,
                                          revenue=2, transactions=1, currency="EUR")
        except IntegrityError as exc:
            print("duplicate refused:", type(exc.__cause__).__name__)
        """
    )
    assert created.returncode == 0, created.stderr
    assert f"id {len(DAYS) + 1} S2" in created.stdout  # ids continue from the sequence
    assert "duplicate refused: UniqueViolation" in created.stdout


def test_migrating_back_restores_the_surrogate_primary_key_with_every_row(
    run_cli: RunCli, postgres_url: str
) -> None:
    assert run_cli("migrate", "--database-url", postgres_url, "etl_retail", "0004").returncode == 0
    _populate(postgres_url)
    rows = _rows(postgres_url)
    assert run_cli("migrate", "--database-url", postgres_url).returncode == 0

    back = run_cli("migrate", "--database-url", postgres_url, "etl_retail", "0004")

    assert back.returncode == 0, back.stderr
    assert _rows(postgres_url) == rows
    keys = _keys(postgres_url)
    assert keys["retail_sales_transaction"] == [
        "p: PRIMARY KEY (id, dt)",
        "p: PRIMARY KEY (id, dt)",
        "u: UNIQUE (dt, transaction_id, line_number)",
        "u: UNIQUE (dt, transaction_id, line_number)",
    ]
