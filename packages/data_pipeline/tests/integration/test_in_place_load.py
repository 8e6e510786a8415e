"""Loads into a PostgreSQL curated table that is not partitioned (``DELETE`` and ``COPY``
in one transaction): a lock another session holds on the table or the day's rows is waited
for no longer than the partition swap waits (its lock timeout), then the load gives way
and tries again, and past its attempts it fails retryably, the old rows kept."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import psycopg
import pytest

from etl_core.faults import FAULT_ENV

from .test_partition_load import TIMEOUT, lock_held_until_waited_on

pytestmark = pytest.mark.postgres

TABLE = "retail_store_footfall"
DAY = "2024-05-01"

FOOTFALL_LOADS = """
import sys
from datetime import UTC, date, datetime
from data_pipeline import db
from data_pipeline.errors import DatabaseUnavailableError
from etl_core.errors import RetryableError

db.connect(sys.argv[1], migrate=True)
columns = ["store_code", "visitors", "exits", "hours_counted", "peak_hour",
           "peak_hour_visitors", "run_id"]
peak = datetime(2024, 5, 1, 12, tzinfo=UTC)
for spec in sys.argv[2:]:
    run_id, stores = spec.split(":")
    rows = [(f"S{{i:03d}}", 100, 90, 10, peak, 20, run_id) for i in range(int(stores))]
    try:
        loaded = db.load_partition({table!r}, date(2024, 5, 1), columns, rows)
    except DatabaseUnavailableError as exc:
        print("unavailable", run_id, isinstance(exc, RetryableError), exc, flush=True)
        continue
    print("loaded", run_id, loaded, flush=True)
"""


def load(url: str, *loads: str) -> subprocess.CompletedProcess[str]:
    """Load the day's footfall once per ``RUN_ID:STORES`` in a process of its own."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", FAULT_ENV}}
    return subprocess.run(
        [sys.executable, "-c", FOOTFALL_LOADS.format(table=TABLE), url, *loads],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def day_rows(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as con:
        return con.execute(
            f"SELECT run_id, count(*) FROM {TABLE} WHERE dt = %s GROUP BY run_id", [DAY]
        ).fetchall()


def not_partitioned(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as con:
        kind = con.execute("SELECT relkind FROM pg_class WHERE relname = %s", [TABLE]).fetchone()
    return kind == ("r",)


GAVE_WAY = (
    "a load waited 2000 ms for a lock (the table's, the day's rows' or the day's load "
    "fence row); trying again"
)


@pytest.mark.parametrize(
    "held",
    [
        pytest.param(f"LOCK TABLE {TABLE} IN SHARE MODE", id="table-lock"),
        pytest.param(f"SELECT * FROM {TABLE} WHERE dt = '{DAY}' FOR UPDATE", id="rows-locked"),
    ],
)
def test_a_load_into_a_table_not_partitioned_waiting_behind_a_lock_gives_way_and_tries_again(
    postgres_url: str, held: str
) -> None:
    first = load(postgres_url, "old:40")
    assert first.returncode == 0, first.stderr
    assert not_partitioned(postgres_url)

    with lock_held_until_waited_on(postgres_url, held) as blocked:
        done = load(postgres_url, "new:60")

    assert done.returncode == 0, done.stderr
    assert blocked.is_set()
    assert GAVE_WAY in done.stderr
    assert done.stdout.splitlines() == ["loaded new 60"]
    assert day_rows(postgres_url) == [("new", 60)]


def test_a_load_into_a_table_not_partitioned_behind_a_lock_never_released_fails_retryably(
    postgres_url: str,
) -> None:
    first = load(postgres_url, "old:40")
    assert first.returncode == 0, first.stderr

    with psycopg.connect(postgres_url) as holder:  # held until the load has given up
        holder.execute(f"LOCK TABLE {TABLE} IN SHARE MODE")
        started = time.monotonic()
        done = load(postgres_url, "new:60")
        took = time.monotonic() - started
        holder.rollback()

    assert done.returncode == 0, done.stderr
    assert done.stderr.count(GAVE_WAY) == 4  # five attempts, each waiting 2 s
    unavailable = done.stdout.splitlines()
    assert len(unavailable) == 1
    assert unavailable[0].startswith("unavailable new True ")
    assert "lock timeout" in unavailable[0]
    assert took < 60  # 5 x 2 s of waits and 5 s of pauses, plus the process's start
    assert day_rows(postgres_url) == [("old", 40)]
