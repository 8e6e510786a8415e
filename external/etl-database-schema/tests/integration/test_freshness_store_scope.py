"""The freshness history scoped by the object store (``etl_freshness_status.store``,
migration ``0008_freshness_store``).

Two deployments sharing one database (staging and production stores) monitoring a dataset
of the same name keep their level histories apart: every freshness query takes the store
and reads or writes only its rows, so neither records a change because the other's level
differs, nor reads the other's level. Rows written before the store was part of the
history (``store`` empty) are adopted, a dataset's at once, by the first store recording
or reading that dataset, and logged. Migrating a populated table forwards keeps every row
(``store`` empty); migrating back keeps every row too.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

RunPython = Callable[..., subprocess.CompletedProcess[str]]
RunCli = Callable[..., subprocess.CompletedProcess[str]]
PROD = "s3://prod-lake/etl"
STAGING = "file:///srv/staging-lake"

PRELUDE = """
import etl_database_schema as s
s.connect({url!r}, apply_migrations=True)
PROD, STAGING = {prod!r}, {staging!r}

def latest(dataset, store):
    row = s.latest_freshness(dataset, store=store)
    return None if row is None else (row.level, row.observed_age_seconds, row.message)

def history(store):
    with s.models(s.LEDGER_APP) as ledger:
        rows = ledger["FreshnessStatus"].objects.filter(store=store).order_by("id")
        return [(row.dataset, row.level) for row in rows]
"""


def _lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def _script(url: str, body: str) -> str:
    return PRELUDE.format(url=url, prod=PROD, staging=STAGING) + body


def _history(database: Any) -> list[tuple[object, ...]]:
    return database.rows("etl_freshness_status", "dataset, level")


def _insert_level(database: Any, dataset: str, level: str, minutes: int) -> None:
    """A history row as a process of the release before 0008 writes it."""
    database.run(
        "INSERT INTO etl_freshness_status (dataset, level, observed_age, latest_partition, "
        f"message, changed_at) VALUES ('{dataset}', '{level}', NULL, NULL, '', "
        f"'{database.at(minutes)}')"
    )


SCOPED = """
print("prod", s.record_freshness("sales", "ok", 60.0, store=PROD))
print("staging", s.record_freshness("sales", "critical", 90000.0, message="late", store=STAGING))
print("prod again", s.record_freshness("sales", "ok", 120.0, store=PROD))
print("staging again", s.record_freshness("sales", "critical", 90060.0, store=STAGING))
print("prod reads", latest("sales", PROD))
print("staging reads", latest("sales", STAGING))
print("prod", history(PROD))
print("staging", history(STAGING))
for call in (lambda: s.latest_freshness("sales", store=""),
             lambda: s.record_freshness("sales", "ok", 1.0, store="")):
    try:
        call()
    except ValueError as exc:
        print("refused:", exc)
"""


def test_two_stores_on_one_database_keep_their_freshness_histories_apart(
    raw_database: Any, run_python: RunPython
) -> None:
    """Production ``ok`` and staging ``critical`` for one dataset name: each records its
    level once (no spurious change each time the other wrote) and reads its own."""
    result = run_python(_script(raw_database.url, SCOPED))

    refused = (
        "refused: store must be the freshness history's object store (its canonical root "
        "URL, a non-empty string), got ''"
    )
    assert _lines(result) == [
        "prod True",
        "staging True",
        "prod again False",
        "staging again False",
        "prod reads ('ok', 60.0, '')",
        "staging reads ('critical', 90000.0, 'late')",
        "prod [('sales', 'ok')]",
        "staging [('sales', 'critical')]",
        refused,
        refused,
    ]


ADOPT = """
import logging, sys
logging.basicConfig(stream=sys.stdout, level=logging.WARNING,
                    format="%(levelname)s %(message)s [%(store)s %(dataset)s %(adopted)s]")
print("staging", s.record_freshness("sales", "critical", 90000.0, store=STAGING))
print("staging again", s.record_freshness("sales", "ok", 60.0, store=STAGING))
print("prod", s.record_freshness("sales", "critical", 90000.0, store=PROD))
print("prod reads", latest("sales", PROD))
print("staging", history(STAGING))
print("prod", history(PROD))
print("unscoped", history(""))
print("stock", latest("stock", PROD))
print("unscoped", history(""))
"""


def test_a_freshness_history_of_before_is_adopted_once_by_the_first_store_touching_it(
    raw_database: Any, run_cli: RunCli, run_python: RunPython
) -> None:
    """A dataset's rows written before the store was kept join the first store recording
    (or reading) that dataset, logged naming the store, dataset and count; it continues
    that history (no spurious change), and the other store starts its own."""
    assert run_cli("migrate", "--database-url", raw_database.url).returncode == 0
    _insert_level(raw_database, "sales", "ok", 0)
    _insert_level(raw_database, "sales", "critical", 10)
    _insert_level(raw_database, "stock", "warning", 20)

    lines = _lines(run_python(_script(raw_database.url, ADOPT)))

    sales, stock = (line for line in lines if line.startswith("WARNING"))
    assert sales.startswith("WARNING adopted 2 freshness history rows of sales written before")
    assert sales.endswith(f"[{STAGING} sales 2]")
    assert stock.startswith("WARNING adopted 1 freshness history rows of stock written before")
    assert stock.endswith(f"[{PROD} stock 1]")
    assert lines.index(sales) == 0
    assert lines[lines.index(stock) + 1].startswith("stock ")  # production's first read of it
    assert [line for line in lines if not line.startswith("WARNING")] == [
        "staging False",  # critical already, as the history of before says
        "staging again True",
        "prod True",  # nothing of before left: a history of its own
        "prod reads ('critical', 90000.0, '')",
        "staging [('sales', 'ok'), ('sales', 'critical'), ('sales', 'ok')]",
        "prod [('sales', 'critical')]",
        "unscoped [('stock', 'warning')]",
        "stock ('warning', None, '')",
        "unscoped []",
    ]


# ------------------------------------------------------------- migrating the table


def test_a_populated_freshness_history_gains_the_store_keeping_its_rows_and_back(
    raw_database: Any, run_cli: RunCli, run_python: RunPython
) -> None:
    url = raw_database.url
    assert run_cli("migrate", "--database-url", url).returncode == 0
    assert run_cli("migrate", "--database-url", url, "etl_ledger", "0007").returncode == 0
    _insert_level(raw_database, "sales", "ok", 0)
    _insert_level(raw_database, "sales", "critical", 10)
    _insert_level(raw_database, "stock", "unknown", 20)
    before = _history(raw_database)

    migrated = run_cli("migrate", "--database-url", url)

    assert migrated.returncode == 0, migrated.stderr
    assert "Applying etl_ledger.0008_freshness_store... OK" in migrated.stdout
    assert _history(raw_database) == [(*row, "") for row in before]
    body = """
print(s.record_freshness("sales", "ok", 60.0, store=PROD))
print(s.record_freshness("sales", "ok", 60.0, store=STAGING))
"""
    assert _lines(run_python(_script(url, body))) == ["True", "True"]
    (first, _, _), *_ = before
    assert _history(raw_database) == [
        (first, "sales", "ok", PROD),
        (first + 1, "sales", "critical", PROD),
        (first + 2, "stock", "unknown", ""),
        (first + 3, "sales", "ok", PROD),
        (first + 4, "sales", "ok", STAGING),
    ]

    back = run_cli("migrate", "--database-url", url, "etl_ledger", "0007")

    assert back.returncode == 0, back.stderr
    assert _history(raw_database) == [
        (first, "sales", "ok"),
        (first + 1, "sales", "critical"),
        (first + 2, "stock", "unknown"),
        (first + 3, "sales", "ok"),
        (first + 4, "sales", "ok"),
    ]


# ------------------------------------------------------------- reading without writing

READ_ONLY = """
import etl_database_schema as s
s.connect({url!r})
row = s.latest_freshness("sales", store={prod!r})
print("prod", row.level)
print("staging", s.latest_freshness("sales", store={staging!r}))
"""


@pytest.mark.postgres
def test_a_freshness_history_with_nothing_to_adopt_is_read_on_a_read_only_database(
    postgres_url: str, run_python: RunPython
) -> None:
    """Once no row of before is left for the dataset, reading its level runs no UPDATE."""
    setup = 'print(s.record_freshness("sales", "ok", 60.0, store=PROD))'
    assert _lines(run_python(_script(postgres_url, setup))) == ["True"]
    name = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')

    result = run_python(READ_ONLY.format(url=postgres_url, prod=PROD, staging=STAGING))

    assert _lines(result) == ["prod ok", "staging None"]
