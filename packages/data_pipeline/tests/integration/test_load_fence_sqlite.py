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


def load(
    database: Path, *loads: str, store: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the loads; ``store``: the local store the leases of ``@TOKEN`` loads are of."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", FAULT_ENV}}
    if store is not None:
        env["LOAD_WORKER_STORE"] = store.resolve().as_uri()
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
        "refused: fence must be the partition's lease (its key, store_url and check(), an "
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
        f"of {key} in store {(tmp_path / 'store').resolve().as_uri()} already; this load's "
        "token 1 is older, yet its lease is still held"
    )
    store = (tmp_path / "store").resolve().as_uri()
    statement = (
        f"DELETE FROM etl_load_fence WHERE store IN ('{store}', '') AND table_name = '{TABLE}' "
        f"AND dt = '{DAY}' AND lease = '{key}' AND token = 2"
    )
    assert refused.endswith(statement)
    assert day_rows(database) == [("second", 100)]
    refused_again = load(database, "after-reset:300@1", store=tmp_path / "store")
    assert "refused after-reset" in refused_again.stdout  # the same store: still fenced
    with sqlite3.connect(database) as con:  # the operator's recovery, as the error gives it
        con.execute(statement)
    again = load(database, "after-reset:300@1", store=tmp_path / "store")
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
    store = tmp_path / "store"
    later = load(database, "later:400@3", store=store)  # tokens climbed past the recorded 2
    assert later.returncode == 0, later.stderr

    with sqlite3.connect(database) as con:  # the operator's recovery, read late
        con.execute(statement)
    stale = load(database, "stale:50@2", store=store)

    assert stale.returncode == 0, stale.stderr
    assert "refused stale" in stale.stdout
    assert day_rows(database) == [("later", 400)]
    with sqlite3.connect(database) as con:
        assert con.execute("SELECT token FROM etl_load_fence").fetchall() == [(3,)]


TWO_STORES = """
import sys
sys.path.insert(0, {here!r})
from load_worker import DAY, NAMES, TABLE, batches
from data_pipeline import db
from data_pipeline.errors import LoadFencedError
from data_pipeline.lease import partition_lease
from etl_core.storage import LocalObjectStore

db.connect({url!r}, migrate=True)
lease = dict(purpose="load", ttl_seconds=60, heartbeat_seconds=0)
for name, loads in (("prod", 3), ("staging", 1), ("prod", 1), ("staging", 1)):
    store = LocalObjectStore({root!r} + "/" + name)
    for _ in range(loads):
        with partition_lease(store, "sales", DAY, **lease) as held:
            try:
                db.load_batches(TABLE, DAY, NAMES, batches(name, 10), fence=held)
            except LoadFencedError as refused:
                print("refused", name, held.token, refused)
            else:
                print("loaded", name, held.token)
"""


def two_stores_loading(url: str, root: Path) -> list[str]:
    """Loads of one day from two stores (``prod`` then ``staging``, each with leases of
    its own whose tokens are unrelated) into the database of ``url``: what each printed."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", FAULT_ENV}}
    script = TWO_STORES.format(here=str(WORKER.parent), url=url, root=str(root))
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


STORES_LOADED = ["loaded prod 1", "loaded prod 2", "loaded prod 3", "loaded staging 1"]
STORES_LOADED += ["loaded prod 4", "loaded staging 2"]


def test_two_stores_sharing_one_database_fence_their_loads_each_by_its_own_tokens(
    tmp_path: Path,
) -> None:
    """Staging's lease tokens (1, 2) are below production's (3, 4) and unrelated to them:
    its loads are not refused by production's fence, nor production's by its."""
    database = tmp_path / "curated.sqlite3"

    assert two_stores_loading(f"sqlite:///{database}", tmp_path / "stores") == STORES_LOADED
    assert day_rows(database) == [("staging", 10)]
    with sqlite3.connect(database) as con:
        fences = con.execute("SELECT store, token FROM etl_load_fence ORDER BY store").fetchall()
    stores = tmp_path.resolve() / "stores"
    assert fences == [((stores / "prod").as_uri(), 4), ((stores / "staging").as_uri(), 2)]


def test_a_load_refused_by_a_fence_recorded_before_the_store_was_keyed_recovers_as_told(
    tmp_path: Path,
) -> None:
    """A day's fence recorded before ``etl_ledger.0006`` has no store; a load whose lease
    tokens restarted adopts it in its transaction, is refused and rolled back, so the row
    keeps its empty store: the recovery statement the error gives removes that row too, and
    the day loads again."""
    database = tmp_path / "curated.sqlite3"
    store = tmp_path / "store"
    assert load(database, "old:100@2", store=store).returncode == 0
    with sqlite3.connect(database) as con:  # as the upgrade leaves a row of the release before
        con.execute("UPDATE etl_load_fence SET store = ''")

    refused = load(database, "after-reset:300@1", store=store)

    assert refused.returncode == 0, refused.stderr
    message = next(line for line in refused.stdout.splitlines() if line.startswith("refused"))
    assert "this load's token 1 is older" in message
    statement = message.rsplit(": ", 1)[-1]
    assert statement.startswith("DELETE FROM etl_load_fence WHERE ")
    with sqlite3.connect(database) as con:  # the operator's recovery, as the error gives it
        assert con.execute(statement).rowcount == 1
    again = load(database, "after-reset:300@1", store=store)
    assert again.returncode == 0, again.stderr
    assert "loaded after-reset 300" in again.stdout
    assert day_rows(database) == [("after-reset", 300)]
