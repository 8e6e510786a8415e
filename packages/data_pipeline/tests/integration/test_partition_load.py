"""Loads into a PostgreSQL curated table partitioned by day: the day is swapped whole.

A reader looping on ``count(*)`` of the day while loads repeat never sees a missing, a
doubled or a mixed partition, and a load cut short (SIGKILL) at any of its steps leaves
the previous rows in place; the next load removes what it left and completes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from etl_core.faults import FAULT_ENV, Step

pytestmark = pytest.mark.postgres

WORKER = Path(__file__).with_name("load_worker.py")
TABLE = "retail_sales_transaction"
DAY = "2024-05-01"
PARTITION = f"{TABLE}_p20240501"
TIMEOUT = 180
READER_SECONDS = 120  # the reader's bound, far above the loads' time


def load(url: str, *loads: str, fault: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", FAULT_ENV}}
    if fault:
        env[FAULT_ENV] = fault
    return subprocess.run(
        [sys.executable, str(WORKER), url, *loads],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def day_rows(url: str) -> list[tuple[Any, ...]]:
    """(run_id, rows) of the day, by run."""
    with psycopg.connect(url, autocommit=True) as con:
        return con.execute(
            f"SELECT run_id, count(*) FROM {TABLE} WHERE dt = %s GROUP BY run_id", [DAY]
        ).fetchall()


def staging_tables(url: str) -> list[str]:
    with psycopg.connect(url, autocommit=True) as con:
        rows = con.execute(
            "SELECT relname FROM pg_class WHERE relname LIKE %s", [PARTITION + r"\_load\_%"]
        ).fetchall()
    return [row[0] for row in rows]


def partitions(url: str) -> dict[str, str]:
    with psycopg.connect(url, autocommit=True) as con:
        rows = con.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
            [TABLE],
        ).fetchall()
    return dict(rows)


def partition_shape(url: str) -> tuple[int, int, list[str]]:
    """Indexes of the parent, indexes of the day's partition, its CHECK constraints."""
    with psycopg.connect(url, autocommit=True) as con:
        (parent,) = con.execute(
            "SELECT count(*) FROM pg_index WHERE indrelid = %s::regclass", [TABLE]
        ).fetchone() or (0,)
        (child,) = con.execute(
            "SELECT count(*) FROM pg_index i JOIN pg_inherits h ON h.inhrelid = i.indexrelid "
            "WHERE i.indrelid = %s::regclass",
            [PARTITION],
        ).fetchone() or (0,)
        checks = con.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'c' "
            "ORDER BY 1",
            [PARTITION],
        ).fetchall()
    return parent, child, [row[0] for row in checks]


def index_fill(url: str) -> list[Any]:
    """The storage parameters of the day partition's indexes."""
    with psycopg.connect(url, autocommit=True) as con:
        rows = con.execute(
            "SELECT c.reloptions FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = %s::regclass ORDER BY c.relname",
            [PARTITION],
        ).fetchall()
    return [row[0] for row in rows]


def test_a_load_attaches_the_day_as_an_indexed_partition(postgres_url: str) -> None:
    first = load(postgres_url, "first:2500", "second:1200")

    assert first.returncode == 0, first.stderr
    assert day_rows(postgres_url) == [("second", 1200)]
    assert partitions(postgres_url) == {
        f"{TABLE}_default": "DEFAULT",
        PARTITION: "FOR VALUES FROM ('2024-05-01') TO ('2024-05-02')",
    }
    parent, child, checks = partition_shape(postgres_url)
    assert parent == child == 4  # primary key (id, dt), unique line, two secondary indexes
    assert checks == [f"{TABLE}_line_number_check"]  # the staging bound check is dropped
    assert index_fill(postgres_url) == [["fillfactor=100"]] * 4  # written once: pages full
    assert staging_tables(postgres_url) == []


def distinct_store_codes(url: str) -> list[float]:
    """``n_distinct`` of the day partition's ``store_code`` as ``ANALYZE`` recorded it."""
    with psycopg.connect(url, autocommit=True) as con:
        rows = con.execute(
            "SELECT n_distinct FROM pg_stats WHERE tablename = %s AND attname = 'store_code'",
            [PARTITION],
        ).fetchall()
    return [row[0] for row in rows]


def test_a_load_asked_to_analyze_attaches_the_day_with_its_statistics(
    postgres_url: str,
) -> None:
    loaded = load(postgres_url, "first:2000", "second:1500:1500:analyze")

    assert loaded.returncode == 0, loaded.stderr
    assert day_rows(postgres_url) == [("second", 1500)]
    assert distinct_store_codes(postgres_url) == [7.0]  # S000 … S006, every row sampled
    assert staging_tables(postgres_url) == []


def day_ids(url: str) -> list[int]:
    with psycopg.connect(url, autocommit=True) as con:
        rows = con.execute(f"SELECT id FROM {TABLE} WHERE dt = %s ORDER BY id", [DAY]).fetchall()
    return [row[0] for row in rows]


def test_a_load_numbers_its_rows_from_one_block_of_the_id_sequence(postgres_url: str) -> None:
    announced = load(postgres_url, "first:2500", "second:1200")
    ids = day_ids(postgres_url)
    unannounced = load(postgres_url, "third:300:none")

    assert announced.returncode == 0, announced.stderr
    assert ids == list(range(2501, 3701))  # after the first load's block, in row order
    assert unannounced.returncode == 0, unannounced.stderr
    assert day_ids(postgres_url) == list(range(3701, 4001))  # the default continues after it


def test_a_load_holding_more_rows_than_announced_is_refused_and_keeps_the_day(
    postgres_url: str,
) -> None:
    assert load(postgres_url, "first:100").returncode == 0

    refused = load(postgres_url, "second:1500:1200")

    assert refused.returncode != 0
    assert "more than the 1200 rows announced" in refused.stderr
    assert day_rows(postgres_url) == [("first", 100)]
    assert staging_tables(postgres_url) == []


def test_a_load_goes_on_without_a_block_while_the_id_sequence_is_held(
    postgres_url: str,
) -> None:
    assert load(postgres_url, "first:10").returncode == 0
    with psycopg.connect(postgres_url) as holder:
        (taken,) = holder.execute("SELECT nextval(%s)", [f"{TABLE}_id_seq"]).fetchone() or (0,)

        second = load(postgres_url, "second:100")  # the holder's transaction stays open
        holder.rollback()

    assert second.returncode == 0, second.stderr
    assert "the sequence was busy" in second.stderr
    assert day_rows(postgres_url) == [("second", 100)]
    assert day_ids(postgres_url) == list(range(taken + 1, taken + 101))


def test_a_reader_looping_during_repeated_loads_sees_one_whole_day(postgres_url: str) -> None:
    sizes = {f"run{n}": 4000 + 1500 * (n % 2) for n in range(8)}
    first = load(postgres_url, "run0:4000")
    assert first.returncode == 0, first.stderr
    seen: list[tuple[Any, ...]] = []
    stop = threading.Event()
    failures: list[BaseException] = []

    def read() -> None:
        try:
            with psycopg.connect(postgres_url, autocommit=True) as con:
                deadline = time.monotonic() + READER_SECONDS
                while not stop.is_set() and time.monotonic() < deadline:
                    seen.append(
                        con.execute(
                            f"SELECT count(*), count(DISTINCT run_id), min(run_id) FROM {TABLE} "
                            "WHERE dt = %s",
                            [DAY],
                        ).fetchone()
                        or ()
                    )
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        done = load(postgres_url, *(f"{run}:{rows}" for run, rows in sizes.items()))
    finally:
        stop.set()
        reader.join(timeout=READER_SECONDS + 10)

    assert done.returncode == 0, done.stderr
    assert not failures, failures
    wrong = [row for row in seen if row[1] != 1 or row[0] != sizes[row[2]]]
    assert not wrong, wrong[:5]  # never none, doubled or mixed
    runs = {row[2] for row in seen}
    assert len(seen) > len(sizes), len(seen)  # the reader ran all along the loads
    assert len(runs) > 2, runs  # and saw several of them
    assert day_rows(postgres_url) == [("run7", sizes["run7"])]


@pytest.mark.parametrize(
    ("step", "leaves_staging"),
    [
        (Step.LOAD, False),  # the COPY's transaction (which created the table) rolls back
        (Step.LOAD_INDEX, True),
        (Step.LOAD_SWAP, True),
        (Step.LOAD_ATTACH, True),  # the swap rolls back: the staging table is there again
    ],
)
def test_a_load_killed_at_a_step_keeps_the_old_day_and_the_next_load_completes(
    postgres_url: str, step: Step, leaves_staging: bool
) -> None:
    first = load(postgres_url, "old:3000")
    assert first.returncode == 0, first.stderr

    killed = load(
        postgres_url, "cut:2000", fault=f"{step}:kill:2" if step is Step.LOAD else f"{step}:kill"
    )

    assert killed.returncode == -9, killed.stderr[-2000:]
    assert f"{FAULT_ENV}: kill at {step}" in killed.stderr
    assert day_rows(postgres_url) == [("old", 3000)]
    assert bool(staging_tables(postgres_url)) is leaves_staging
    again = load(postgres_url, "again:2200")
    assert again.returncode == 0, again.stderr
    assert day_rows(postgres_url) == [("again", 2200)]
    assert staging_tables(postgres_url) == []
    assert partition_shape(postgres_url)[:2] == (4, 4)


def test_a_swap_waiting_behind_a_long_query_gives_way_and_tries_again(postgres_url: str) -> None:
    first = load(postgres_url, "old:1000")
    assert first.returncode == 0, first.stderr
    held = f"SELECT count(*) FROM {TABLE} WHERE dt = %s"
    with lock_held_until_waited_on(postgres_url, held, [DAY]) as blocked:
        done = load(postgres_url, "new:1500")

    assert done.returncode == 0, done.stderr
    assert blocked.is_set()
    assert (
        "partition swap waited 2000 ms for a lock (the table's, or the day's load fence row); "
        "trying again" in done.stderr
    )
    assert day_rows(postgres_url) == [("new", 1500)]


def load_fence(url: str) -> list[tuple[Any, ...]]:
    """(table, dt, lease, token) rows of the database's load fence."""
    with psycopg.connect(url, autocommit=True) as con:
        return con.execute(
            "SELECT table_name, dt::text, lease, token FROM etl_load_fence ORDER BY lease"
        ).fetchall()


def test_a_holder_whose_lease_was_taken_over_cannot_swap_in_over_its_successors_load(
    postgres_url: str,
) -> None:
    # token 7's holder stalled after its store-side lease check passed; token 8 took the
    # lease over and loaded the day first
    done = load(postgres_url, "successor:1200@8", "stale:2000@7")

    assert done.returncode == 0, done.stderr
    assert "loaded successor 1200" in done.stdout
    refused = next(line for line in done.stdout.splitlines() if line.startswith("refused stale"))
    assert f"table '{TABLE}', partition dt={DAY} was loaded under lease token 8" in refused
    assert "this load's token 7 is older" in refused
    assert day_rows(postgres_url) == [("successor", 1200)]
    assert staging_tables(postgres_url) == []  # the refused load's staging table is dropped
    assert load_fence(postgres_url) == [
        (TABLE, DAY, "_state/data_pipeline/leases/sales/dt=2024-05-01.json", 8)
    ]


def test_the_same_holder_reloading_replaces_its_own_load_and_a_newer_holder_replaces_it(
    postgres_url: str,
) -> None:
    done = load(postgres_url, "first:1000@7", "again:1500@7", "newer:800@8", "unfenced:300")

    assert done.returncode == 0, done.stderr
    assert "refused" not in done.stdout
    assert day_rows(postgres_url) == [("unfenced", 300)]  # a load without a fence goes on
    assert [row[3] for row in load_fence(postgres_url)] == [8]  # and leaves the token alone


STALLED_HOLDER = """
import sys
sys.path.insert(0, {here!r})
from load_worker import DAY, NAMES, TABLE, batches
from data_pipeline import db
from data_pipeline.errors import LoadFencedError
from data_pipeline.lease import partition_lease
from etl_core.storage import LocalObjectStore

db.connect({url!r}, migrate=True)
store = LocalObjectStore({root!r})
lease = dict(purpose="load", ttl_seconds=60, heartbeat_seconds=0)
with partition_lease(store, "sales", DAY, **lease) as stale:
    checked = stale.check

    def stall_after_check():
        token = checked()  # the store-side check passes, then the holder stalls
        stale.release()  # its lease runs out meanwhile: a new holder takes it and loads
        with partition_lease(store, "sales", DAY, **lease) as successor:
            db.load_batches(TABLE, DAY, NAMES, batches("successor", 1200), fence=successor)
        return token

    stale.check = stall_after_check
    try:
        db.load_batches(TABLE, DAY, NAMES, batches("stale", 2000), rows=2000, fence=stale)
    except LoadFencedError as refused:
        print("refused", refused.table, refused.dt, refused.token, refused.newer, refused.restarted)
"""


def test_a_holder_stalled_after_its_lease_check_does_not_replace_the_new_holders_load(
    postgres_url: str, tmp_path: Path
) -> None:
    """Real leases: the stale holder's check passes, its lease is taken over and the new
    holder loads; its commit is refused by the token recorded (the new holder's load also
    dropped its staging table as a leftover, which alone would fail its swap otherwise:
    the fence is what refuses it, before the swap, with both tokens)."""
    script = STALLED_HOLDER.format(
        here=str(WORKER.parent), url=postgres_url, root=str(tmp_path / "store")
    )
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", FAULT_ENV}}
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"refused {TABLE} {DAY} 1 2 False"]  # taken over
    assert day_rows(postgres_url) == [("successor", 1200)]
    assert staging_tables(postgres_url) == []


def test_a_swap_waiting_behind_a_stalled_holders_fence_row_gives_way_and_tries_again(
    postgres_url: str,
) -> None:
    """A holder that stalled inside its swap transaction, after its token's upsert, holds
    the day's fence row: the next holder's swap waits for it no longer than for the
    table's lock (the swap's lock timeout), rolls back and tries again."""
    first = load(postgres_url, "old:1000@7")
    assert first.returncode == 0, first.stderr
    held = "UPDATE etl_load_fence SET token = 8"  # a holder stalled inside its swap
    with lock_held_until_waited_on(postgres_url, held) as blocked:
        done = load(postgres_url, "new:1500@9")

    assert done.returncode == 0, done.stderr
    assert blocked.is_set()
    assert (
        "partition swap waited 2000 ms for a lock (the table's, or the day's load fence row); "
        "trying again" in done.stderr
    )
    assert day_rows(postgres_url) == [("new", 1500)]
    assert [row[3] for row in load_fence(postgres_url)] == [9]


@contextmanager
def lock_held_until_waited_on(
    url: str, statement: str, params: Sequence[Any] = ()
) -> Iterator[threading.Event]:
    """Run ``statement`` in a transaction of another session and keep it open until a
    session waits for its lock, then 2.5 s more (longer than one lock wait); the event it
    yields is set once a session waited."""
    holding, blocked = threading.Event(), threading.Event()

    def hold() -> None:
        with psycopg.connect(url) as con, psycopg.connect(url) as watch:
            con.execute(statement, params)
            holding.set()
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline and not blocked.is_set():
                waiting = watch.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                ).fetchone()
                watch.rollback()
                if waiting and waiting[0]:
                    blocked.set()
                else:
                    time.sleep(0.05)
            time.sleep(2.5)
            con.rollback()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(30)
        yield blocked
    finally:
        holder.join(timeout=60)


def test_two_stores_sharing_one_database_swap_in_their_loads_each_by_its_own_tokens(
    postgres_url: str, tmp_path: Path
) -> None:
    """As on SQLite (test_load_fence_sqlite): staging's lower, unrelated tokens are not
    refused by production's fence in the partition swap's transaction."""
    from .test_load_fence_sqlite import STORES_LOADED, two_stores_loading

    assert two_stores_loading(postgres_url, tmp_path / "stores") == STORES_LOADED
    assert day_rows(postgres_url) == [("staging", 10)]
    assert sorted(row[3] for row in load_fence(postgres_url)) == [2, 4]
