"""The load fence (``etl_load_fence``, migration ``etl_ledger.0005_load_fence``): a
load's commit records its lease's token unless a newer one of that lease loaded the day,
on SQLite and PostgreSQL; existing databases migrate without losing a row."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from datetime import date
from typing import Any

import psycopg
import pytest

from etl_database_schema.load_fences import record_load_token

RunCli = Callable[..., subprocess.CompletedProcess[str]]
RunPython = Callable[..., subprocess.CompletedProcess[str]]
DAY = date(2024, 5, 1)
TABLE = "retail_sales_transaction"
LEASE = "_state/data_pipeline/leases/sales/dt=2024-05-01.json"

RECORD = """
from datetime import date
from django.db import connection, transaction
import etl_database_schema as s
s.connect({url!r}, apply_migrations=True)
day, lease = date(2024, 5, 1), {lease!r}
with s.models(s.RETAIL_APP), transaction.atomic(), connection.cursor() as cursor:
    for token in (7, 8, 7, 8):
        print("token", token, s.load_fences.record_load_token(
            cursor, "retail_daily_sales", day, lease=lease, token=token))
    print("other lease", s.load_fences.record_load_token(
        cursor, "retail_daily_sales", day, lease="other", token=1))
    print("recorded", s.load_fences.recorded_token(cursor, "retail_daily_sales", day, lease=lease))
    for bad in ({{"lease": "", "token": 9}}, {{"lease": lease, "token": -1}}):
        try:
            s.load_fences.record_load_token(cursor, "retail_daily_sales", day, **bad)
        except ValueError as exc:
            print("refused:", exc)
"""


def _recorded(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


EXPECTED = [
    "token 7 None",  # first load of the day: recorded
    "token 8 None",  # a newer holder: recorded
    "token 7 8",  # the older holder: refused, the newer token returned
    "token 8 None",  # the same holder again: recorded (it replaces its own load)
    "other lease None",  # another lease's tokens count on their own
    "recorded 8",
    "refused: lease must be the lease's key (a non-empty string), got ''",
    "refused: token must be a non-negative integer (a fencing token), got -1",
]


def test_a_token_older_than_the_recorded_one_is_refused_on_sqlite(run_python: RunPython) -> None:
    result = run_python(RECORD.format(url="sqlite:///etl.sqlite3", lease=LEASE))

    assert _recorded(result) == EXPECTED


@pytest.mark.postgres
def test_a_token_older_than_the_recorded_one_is_refused_on_postgresql(
    run_python: RunPython, postgres_url: str
) -> None:
    result = run_python(RECORD.format(url=postgres_url, lease=LEASE))

    assert _recorded(result) == EXPECTED


@pytest.mark.postgres
def test_an_older_holder_committing_after_a_newer_one_is_refused_once_it_commits(
    run_cli: RunCli, postgres_url: str
) -> None:
    assert run_cli("migrate", "--database-url", postgres_url).returncode == 0
    outcome: list[int | None] = []
    with psycopg.connect(postgres_url) as newer, psycopg.connect(postgres_url) as older:
        assert record_load_token(newer.cursor(), TABLE, DAY, lease=LEASE, token=8) is None

        def stale() -> None:  # waits for the newer holder's row lock, then compares
            outcome.append(record_load_token(older.cursor(), TABLE, DAY, lease=LEASE, token=7))
            older.rollback()

        waiter = threading.Thread(target=stale)
        waiter.start()
        waiter.join(timeout=1)
        assert waiter.is_alive()  # blocked behind the uncommitted newer load
        newer.commit()
        waiter.join(timeout=30)

    assert outcome == [8]


def _rows(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as con:
        return con.execute("SELECT * FROM retail_sales_transaction ORDER BY id").fetchall()


def _fence_table(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as con:
        found = con.execute("SELECT to_regclass('etl_load_fence') IS NOT NULL").fetchone()
    return bool(found and found[0])


@pytest.mark.postgres
def test_an_existing_database_gains_the_fence_table_without_losing_rows_and_back(
    run_cli: RunCli, postgres_url: str
) -> None:
    assert run_cli("migrate", "--database-url", postgres_url).returncode == 0
    assert run_cli("migrate", "--database-url", postgres_url, "etl_ledger", "0004").returncode == 0
    assert not _fence_table(postgres_url)  # as the release before left it
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute(
            "INSERT INTO retail_sales_transaction (dt, transaction_id, line_number, sold_at, "
            "store_code, sku, quantity, unit_price, amount, currency) "
            "SELECT '2024-05-01', 'T' || i, 1, now(), 'S1', 'SKU-1', 1, 2, 2, 'EUR' "
            "FROM generate_series(1, 20) AS i"
        )
    rows = _rows(postgres_url)

    migrated = run_cli("migrate", "--database-url", postgres_url)

    assert migrated.returncode == 0, migrated.stderr
    assert "Applying etl_ledger.0005_load_fence... OK" in migrated.stdout
    assert _rows(postgres_url) == rows
    assert _fence_table(postgres_url)
    back = run_cli("migrate", "--database-url", postgres_url, "etl_ledger", "0004")
    assert back.returncode == 0, back.stderr
    assert _rows(postgres_url) == rows
    assert not _fence_table(postgres_url)
