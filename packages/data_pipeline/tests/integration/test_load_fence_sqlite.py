"""The database fence of curated loads on SQLite (a day replaced by ``DELETE`` and
``INSERT``s in one transaction): a holder whose lease was taken over and whose successor
loaded first is rolled back, the successor's rows stay; the same holder reloads."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from etl_core.faults import FAULT_ENV

WORKER = Path(__file__).with_name("load_worker.py")
TABLE = "retail_sales_transaction"
DAY = "2024-05-01"


def load(database: Path, *loads: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", FAULT_ENV}}
    return subprocess.run(
        [sys.executable, str(WORKER), f"sqlite:///{database}", *loads],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def day_rows(database: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database) as con:
        return con.execute(
            f"SELECT run_id, count(*) FROM {TABLE} WHERE dt = ? GROUP BY run_id", [DAY]
        ).fetchall()


def test_a_holder_whose_lease_was_taken_over_cannot_replace_its_successors_rows_on_sqlite(
    tmp_path: Path,
) -> None:
    database = tmp_path / "curated.sqlite3"

    done = load(database, "successor:1200@8", "stale:2000@7")

    assert done.returncode == 0, done.stderr
    assert "loaded successor 1200" in done.stdout
    refused = next(line for line in done.stdout.splitlines() if line.startswith("refused stale"))
    assert "was loaded under lease token 8" in refused
    assert "this load's token 7 is older" in refused
    assert day_rows(database) == [("successor", 1200)]


def test_the_same_holder_reloading_replaces_its_own_load_on_sqlite(tmp_path: Path) -> None:
    database = tmp_path / "curated.sqlite3"

    done = load(database, "first:1000@7", "again:1500@7", "newer:800@8")

    assert done.returncode == 0, done.stderr
    assert "refused" not in done.stdout
    assert day_rows(database) == [("newer", 800)]
    with sqlite3.connect(database) as con:
        assert con.execute("SELECT token FROM etl_load_fence").fetchall() == [(8,)]


BARE_CHECK = """
from datetime import date
from data_pipeline import db
db.connect({url!r}, migrate=True)
try:
    db.load_partition("retail_daily_sales", date(2024, 5, 1), ["store_code"], [], fence=lambda: 3)
except TypeError as exc:
    print("refused:", exc)
"""


def test_a_fence_that_is_not_a_lease_is_refused_naming_what_is_expected(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", FAULT_ENV}}
    script = BARE_CHECK.format(url=f"sqlite:///{tmp_path / 'curated.sqlite3'}")
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        "refused: fence must be the partition's lease (its key and check(), an "
        "etl_core.storage.Lease), got <function <lambda>"
    )


RESET_LEASE = """
import sys
sys.path.insert(0, {here!r})
from load_worker import DAY, NAMES, TABLE, batches
from data_pipeline import db
from data_pipeline.errors import LoadFencedError
from data_pipeline.lease import lease_key, partition_lease
from etl_core.storage import LocalObjectStore

db.connect({url!r}, migrate=True)
store = LocalObjectStore({root!r})
lease = dict(purpose="load", ttl_seconds=60, heartbeat_seconds=0)
for run in ("first", "second"):
    with partition_lease(store, "sales", DAY, **lease) as held:
        db.load_batches(TABLE, DAY, NAMES, batches(run, 100), fence=held)
store.delete(lease_key("sales", DAY))  # the lease object is lost: its tokens restart at 1
with partition_lease(store, "sales", DAY, **lease) as held:
    try:
        db.load_batches(TABLE, DAY, NAMES, batches("after-reset", 300), fence=held)
    except LoadFencedError as refused:
        print("refused", refused.restarted, refused)
"""


def test_a_load_refused_because_its_leases_tokens_restarted_says_how_to_recover(
    tmp_path: Path,
) -> None:
    """A lease object deleted from the store restarts its tokens at 1, below the one the
    database recorded: the load is refused while its lease is still held, and the error
    says so and gives the statement that lets the day load again."""
    database = tmp_path / "curated.sqlite3"
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", FAULT_ENV}}
    script = RESET_LEASE.format(
        here=str(WORKER.parent), url=f"sqlite:///{database}", root=str(tmp_path / "store")
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )

    assert done.returncode == 0, done.stderr
    refused = done.stdout.strip()
    key = "_state/data_pipeline/leases/sales/dt=2024-05-01.json"
    assert refused.startswith(
        f"refused True table '{TABLE}', partition dt={DAY} was loaded under lease token 2 "
        f"of {key} already; this load's token 1 is older, yet its lease is still held"
    )
    statement = (
        f"DELETE FROM etl_load_fence WHERE table_name = '{TABLE}' AND dt = '{DAY}' "
        f"AND lease = '{key}' AND token = 2"
    )
    assert refused.endswith(statement)
    assert day_rows(database) == [("second", 100)]
    with sqlite3.connect(database) as con:  # the operator's recovery, as the error gives it
        con.execute(statement)
    again = load(database, "after-reset:300@1")
    assert again.returncode == 0, again.stderr
    assert "loaded after-reset 300" in again.stdout
    assert day_rows(database) == [("after-reset", 300)]


def test_a_restarted_loads_recovery_run_late_keeps_a_later_loaders_fence(
    tmp_path: Path,
) -> None:
    """The recovery statement is run later, when a loader whose token climbed past the
    recorded one may have loaded the day: it removes only the fence that refused the load
    (its token), so a later loader's fence stays and a stale loader cannot replace its rows."""
    database = tmp_path / "curated.sqlite3"
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", FAULT_ENV}}
    script = RESET_LEASE.format(
        here=str(WORKER.parent), url=f"sqlite:///{database}", root=str(tmp_path / "store")
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    statement = done.stdout.strip().rsplit(": ", 1)[-1]
    assert statement.startswith("DELETE FROM etl_load_fence WHERE ")
    later = load(database, "later:400@3")  # tokens climbed past the recorded 2
    assert later.returncode == 0, later.stderr

    with sqlite3.connect(database) as con:  # the operator's recovery, read late
        con.execute(statement)
    stale = load(database, "stale:50@2")

    assert stale.returncode == 0, stale.stderr
    assert "refused stale" in stale.stdout
    assert day_rows(database) == [("later", 400)]
    with sqlite3.connect(database) as con:
        assert con.execute("SELECT token FROM etl_load_fence").fetchall() == [(3,)]
