"""Migration ``etl_retail.0004_bytewise_code_keys`` on PostgreSQL: code columns compare
bytewise and a day partition's secondary indexes drop ``dt``, every row kept both ways."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

pytestmark = pytest.mark.postgres

RunCli = Callable[..., subprocess.CompletedProcess[str]]
DAYS = ("2024-05-01", "2024-05-02")
SECONDARY = ("retail_txn_store_dt_idx", "retail_txn_sku_dt_idx", "retail_daily_store_dt_idx")


def _populate(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as con:
        con.execute(
            "INSERT INTO retail_store (store_code, name, region, country, city, updated_at) "
            "VALUES ('S1', 'One', 'north', 'FR', '', now())"
        )
        for day in DAYS:
            con.execute(
                "INSERT INTO retail_sales_transaction (dt, transaction_id, line_number, sold_at, "
                "store_code, sku, quantity, unit_price, amount, currency) "
                "SELECT %s, 'T' || i, 1, now(), 'S' || (i %% 3), 'SKU-' || i, 1, 2, 2, 'EUR' "
                "FROM generate_series(1, 50) AS i",
                [day],
            )
            con.execute(
                "INSERT INTO retail_daily_sales (dt, store_code, sku, units, revenue, "
                "transactions, currency) VALUES (%s, 'S1', 'SKU-1', 4, 9.5, 2, 'EUR')",
                [day],
            )


def _rows(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as con:
        return [
            *con.execute("SELECT * FROM retail_sales_transaction ORDER BY id").fetchall(),
            *con.execute("SELECT * FROM retail_daily_sales ORDER BY id").fetchall(),
        ]


def _shape(url: str) -> tuple[set[str], list[str]]:
    """Collations of the code columns; the secondary indexes' definitions."""
    with psycopg.connect(url, autocommit=True) as con:
        collations = con.execute(
            "SELECT DISTINCT coalesce(collation_name, 'default') FROM information_schema.columns "
            "WHERE table_name IN ('retail_store', 'retail_sales_transaction', "
            "'retail_daily_sales') AND column_name IN ('store_code', 'sku', 'transaction_id')"
        ).fetchall()
        indexes = con.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE indexname = ANY(%s) ORDER BY 1",
            [list(SECONDARY)],
        ).fetchall()
    return {row[0] for row in collations}, [f"{n}: {d.split(' USING ')[1]}" for n, d in indexes]


def _join(url: str) -> int:
    """Curated rows joined to their store: one collation on both sides."""
    with psycopg.connect(url, autocommit=True) as con:
        (count,) = con.execute(
            "SELECT count(*) FROM retail_sales_transaction t "
            "JOIN retail_store s ON s.store_code = t.store_code"
        ).fetchone() or (0,)
    return int(count)


def test_code_columns_become_bytewise_and_day_indexes_drop_dt_without_losing_rows(
    run_cli: RunCli, postgres_url: str
) -> None:
    before = run_cli("migrate", "--database-url", postgres_url, "etl_retail", "0003")
    assert before.returncode == 0, before.stderr
    _populate(postgres_url)
    rows = _rows(postgres_url)
    assert _shape(postgres_url)[0] == {"default"}

    migrated = run_cli("migrate", "--database-url", postgres_url)

    assert migrated.returncode == 0, migrated.stderr
    assert "Applying etl_retail.0004_bytewise_code_keys... OK" in migrated.stdout
    assert _rows(postgres_url) == rows
    assert _shape(postgres_url) == (
        {"C"},
        [
            "retail_daily_store_dt_idx: btree (store_code)",
            "retail_txn_sku_dt_idx: btree (sku)",
            "retail_txn_store_dt_idx: btree (store_code)",
        ],
    )
    assert _join(postgres_url) == 2 * 17  # S1 is the store of i % 3 == 1: 17 of 50 a day


def test_migrating_back_restores_the_default_collation_and_day_indexes(
    run_cli: RunCli, postgres_url: str
) -> None:
    assert run_cli("migrate", "--database-url", postgres_url, "etl_retail", "0003").returncode == 0
    _populate(postgres_url)
    rows = _rows(postgres_url)
    assert run_cli("migrate", "--database-url", postgres_url).returncode == 0

    back = run_cli("migrate", "--database-url", postgres_url, "etl_retail", "0003")

    assert back.returncode == 0, back.stderr
    assert _rows(postgres_url) == rows
    assert _shape(postgres_url) == (
        {"default"},
        [
            "retail_daily_store_dt_idx: btree (store_code, dt)",
            "retail_txn_sku_dt_idx: btree (sku, dt)",
            "retail_txn_store_dt_idx: btree (store_code, dt)",
        ],
    )
    assert _join(postgres_url) == 2 * 17
