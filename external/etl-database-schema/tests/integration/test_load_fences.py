"""The load fence (``etl_load_fence``, migrations ``etl_ledger.0005_load_fence`` and
``0006_load_fence_store``): a load's commit records its lease's token unless a newer one
of that lease, in that store, loaded the day, on SQLite and PostgreSQL; two stores sharing
the database count their tokens apart; existing databases migrate without losing a row,
and a fence recorded before the store was part of the key keeps fencing."""

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
STORE = "s3://prod-lake/etl"
OTHER_STORE = "file:///srv/staging-lake"

RECORD = """
from datetime import date
from django.db import connection, transaction
import etl_database_schema as s
s.connect({url!r}, apply_migrations=True)
day, lease, store = date(2024, 5, 1), {lease!r}, {store!r}
table = "retail_daily_sales"
with s.models(s.RETAIL_APP), transaction.atomic(), connection.cursor() as cursor:
    for token in (7, 8, 7, 8):
        print("token", token, s.load_fences.record_load_token(
            cursor, table, day, store=store, lease=lease, token=token))
    print("other lease", s.load_fences.record_load_token(
        cursor, table, day, store=store, lease="other", token=1))
    print("other store", s.load_fences.record_load_token(
        cursor, table, day, store={other_store!r}, lease=lease, token=1))
    print("recorded", s.load_fences.recorded_token(cursor, table, day, store=store, lease=lease))
    print("recorded other store", s.load_fences.recorded_token(
        cursor, table, day, store={other_store!r}, lease=lease))
    for bad in (
        {{"store": store, "lease": "", "token": 9}},
        {{"store": store, "lease": lease, "token": -1}},
        {{"store": "", "lease": lease, "token": 9}},
    ):
        try:
            s.load_fences.record_load_token(cursor, table, day, **bad)
        except ValueError as exc:
            print("refused:", exc)
"""


def _record_script(url: str) -> str:
    return RECORD.format(url=url, lease=LEASE, store=STORE, other_store=OTHER_STORE)


def _recorded(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


EXPECTED = [
    "token 7 None",  # first load of the day: recorded
    "token 8 None",  # a newer holder: recorded
    "token 7 8",  # the older holder: refused, the newer token returned
    "token 8 None",  # the same holder again: recorded (it replaces its own load)
    "other lease None",  # another lease's tokens count on their own
    "other store None",  # and so do another store's (unrelated tokens of its own leases)
    "recorded 8",
    "recorded other store 1",
    "refused: lease must be the lease's key (a non-empty string), got ''",
    "refused: token must be a non-negative integer (a fencing token), got -1",
    "refused: store must be the lease's store (its canonical root URL, a non-empty string), got ''",
]


def test_a_token_older_than_the_recorded_one_is_refused_on_sqlite(run_python: RunPython) -> None:
    result = run_python(_record_script("sqlite:///etl.sqlite3"))

    assert _recorded(result) == EXPECTED


@pytest.mark.postgres
def test_a_token_older_than_the_recorded_one_is_refused_on_postgresql(
    run_python: RunPython, postgres_url: str
) -> None:
    result = run_python(_record_script(postgres_url))

    assert _recorded(result) == EXPECTED


@pytest.mark.postgres
def test_an_older_holder_committing_after_a_newer_one_is_refused_once_it_commits(
    run_cli: RunCli, postgres_url: str
) -> None:
    assert run_cli("migrate", "--database-url", postgres_url).returncode == 0
    outcome: list[int | None] = []
    with psycopg.connect(postgres_url) as newer, psycopg.connect(postgres_url) as older:
        assert (
            record_load_token(newer.cursor(), TABLE, DAY, store=STORE, lease=LEASE, token=8) is None
        )

        def stale() -> None:  # waits for the newer holder's row lock, then compares
            outcome.append(
                record_load_token(older.cursor(), TABLE, DAY, store=STORE, lease=LEASE, token=7)
            )
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


def _fence_rows(url: str) -> list[tuple[Any, ...]]:
    """(table, dt, lease, token) of the fence, with the store when the table has one."""
    with psycopg.connect(url, autocommit=True) as con:
        has_store = con.execute(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'etl_load_fence' AND column_name = 'store'"
        ).fetchone()
        store = ", store" if has_store and has_store[0] else ""
        return con.execute(
            f"SELECT table_name, dt::text, lease, token{store} FROM etl_load_fence "
            "ORDER BY table_name, dt, lease, token"
        ).fetchall()


@pytest.mark.postgres
def test_a_populated_fence_table_gains_the_store_keeping_its_tokens_fencing_and_back(
    run_cli: RunCli, postgres_url: str
) -> None:
    """Rows recorded before 0006 (no store) keep their tokens: the next load of the day
    under that lease adopts the row for its store (and is refused by a newer token in
    it), another store counts its own; migrating back keeps the newest token of each
    (table, day, lease), the most cautious fence."""
    assert run_cli("migrate", "--database-url", postgres_url).returncode == 0
    assert run_cli("migrate", "--database-url", postgres_url, "etl_ledger", "0005").returncode == 0
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute(
            "INSERT INTO etl_load_fence (table_name, dt, lease, token) VALUES "
            "(%s, %s, %s, 8), (%s, %s, %s, 3)",
            [TABLE, DAY, LEASE, "retail_daily_sales", DAY, LEASE],
        )
    before = _fence_rows(postgres_url)

    migrated = run_cli("migrate", "--database-url", postgres_url)

    assert migrated.returncode == 0, migrated.stderr
    assert "Applying etl_ledger.0006_load_fence_store... OK" in migrated.stdout
    assert _fence_rows(postgres_url) == [(*row, "") for row in before]
    with psycopg.connect(postgres_url) as con:
        cursor = con.cursor()
        # the older token of the store that loads next is refused by the row it adopts
        assert record_load_token(cursor, TABLE, DAY, store=STORE, lease=LEASE, token=7) == 8
        assert record_load_token(cursor, TABLE, DAY, store=STORE, lease=LEASE, token=9) is None
        # another store's tokens are its own: its first load is recorded beside
        assert (
            record_load_token(cursor, TABLE, DAY, store=OTHER_STORE, lease=LEASE, token=1) is None
        )
        con.commit()
    assert _fence_rows(postgres_url) == [
        ("retail_daily_sales", "2024-05-01", LEASE, 3, ""),  # not loaded since: kept as is
        (TABLE, "2024-05-01", LEASE, 1, OTHER_STORE),
        (TABLE, "2024-05-01", LEASE, 9, STORE),
    ]

    back = run_cli("migrate", "--database-url", postgres_url, "etl_ledger", "0005")

    assert back.returncode == 0, back.stderr
    assert _fence_rows(postgres_url) == [
        ("retail_daily_sales", "2024-05-01", LEASE, 3),
        (TABLE, "2024-05-01", LEASE, 9),
    ]
