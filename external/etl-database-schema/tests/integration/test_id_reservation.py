"""``partitions.reserve_ids`` on PostgreSQL: a block of a curated table's ids taken at once,
never shared with another writer of the sequence."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import psycopg
import pytest

from etl_database_schema.partitions import reserve_ids

pytestmark = pytest.mark.postgres

RunCli = Callable[..., subprocess.CompletedProcess[str]]
TABLE = "retail_sales_transaction"
SEQUENCE = "retail_sales_transaction_id_seq"


@pytest.fixture
def migrated(run_cli: RunCli, postgres_url: str) -> str:
    result = run_cli("migrate", "--database-url", postgres_url)
    assert result.returncode == 0, result.stderr
    return postgres_url


def _reserve(url: str, count: int) -> int | None:
    with psycopg.connect(url) as con, con.cursor() as cursor:
        return reserve_ids(cursor, TABLE, count)


def _next(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as con:
        row = con.execute("SELECT nextval(%s)", [SEQUENCE]).fetchone()
    assert row is not None
    return int(row[0])


def test_a_block_starts_at_the_sequence_and_the_next_value_follows_it(migrated: str) -> None:
    first = _reserve(migrated, 1000)
    second = _reserve(migrated, 1)
    after = _next(migrated)

    assert (first, second, after) == (1, 1001, 1002)
    with psycopg.connect(migrated, autocommit=True) as con:
        increment = con.execute(
            "SELECT increment_by FROM pg_sequences WHERE sequencename = %s", [SEQUENCE]
        ).fetchone()
    assert increment == (1,)


def test_another_writer_waits_for_the_reservation_to_commit(migrated: str) -> None:
    with psycopg.connect(migrated) as holder, holder.cursor() as cursor:
        first = reserve_ids(cursor, TABLE, 50)
        with psycopg.connect(migrated, autocommit=True) as other:
            other.execute("SET lock_timeout = 200")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute("SELECT nextval(%s)", [SEQUENCE])
        holder.commit()

    assert first == 1
    assert _next(migrated) == 51


def test_a_rolled_back_reservation_leaves_the_sequence_stepping_by_one(migrated: str) -> None:
    with psycopg.connect(migrated) as con, con.cursor() as cursor:
        assert reserve_ids(cursor, TABLE, 10) == 1
        con.rollback()

    first = _reserve(migrated, 5)

    assert first is not None
    assert _next(migrated) == first + 5


def test_a_table_without_an_id_sequence_gets_none(migrated: str) -> None:
    with psycopg.connect(migrated) as con, con.cursor() as cursor:
        cursor.execute("CREATE TABLE plain_ids (id bigint)")
        assert reserve_ids(cursor, "plain_ids", 10) is None
        assert reserve_ids(cursor, TABLE, 0) is None


def test_a_cached_sequence_gets_no_block(migrated: str) -> None:
    with psycopg.connect(migrated, autocommit=True) as con:
        con.execute(f"ALTER SEQUENCE {SEQUENCE} CACHE 20")

    assert _reserve(migrated, 100) is None


@pytest.mark.parametrize("cycle", ["NO CYCLE", "CYCLE"])
def test_a_block_past_the_sequence_s_maximum_is_not_taken(migrated: str, cycle: str) -> None:
    with psycopg.connect(migrated, autocommit=True) as con:
        con.execute(f"ALTER SEQUENCE {SEQUENCE} MAXVALUE 100 {cycle}")

    assert _reserve(migrated, 500) is None
    assert _reserve(migrated, 10) == 2  # the refused attempt took one value, no more
    assert _next(migrated) == 12
