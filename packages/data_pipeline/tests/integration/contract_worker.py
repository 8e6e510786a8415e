"""Runs a contract's checks on the database, in a process of its own (Django is configured
once per process); ``test_ingest_state`` and ``test_backfill_ledger`` drive it.

Usage: ``python contract_worker.py state|ledger DATABASE_URL STORE_DIR``; prints one line
per check (``ok <name>`` or ``FAILED <name>: <error>``) and exits 1 when any failed. On
PostgreSQL the ledger has one more check: a cancel held open on another connection while
a partition ends.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import ledger_contract
import state_contract

from data_pipeline import db
from data_pipeline.db import BackfillPartitionRecord
from data_pipeline.ingest import DatabaseStateStore
from data_pipeline.ledger import DatabaseLedger, Ledger
from etl_core.storage import LocalObjectStore

DAYS = ledger_contract.DAYS
Check = ledger_contract.Check
running_job = ledger_contract.running_job


def a_cancel_committed_while_the_last_partition_ends_is_kept(url: str) -> Check:
    """The job's end is decided under its row lock: a cancel holding that lock is waited
    for and then seen, never overwritten by a state read before it committed."""
    import psycopg

    def check(ledger: Ledger) -> None:
        job_id = running_job(ledger, DAYS[:1])
        ended: list[bool] = []
        with psycopg.connect(url) as cancel:
            cancel.execute(
                "UPDATE etl_backfill_job SET state = 'cancelled' WHERE id = %s", [int(job_id)]
            )
            end = threading.Thread(
                target=lambda: ended.append(
                    ledger.end_partition(
                        job_id, BackfillPartitionRecord(DAYS[0], "succeeded", 0, "", 1, "")
                    )
                )
            )
            end.start()
            _wait_for_a_lock_wait(url)
            cancel.commit()
        end.join(timeout=60)
        job = ledger.get(job_id)
        assert ended == [True]
        assert job is not None
        assert job.partitions[0].state == "succeeded"
        assert job.state == "cancelled", job.state

    check.__name__ = "a_cancel_committed_while_the_last_partition_ends_is_kept"
    return check


def _wait_for_a_lock_wait(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as watcher:
        for _ in range(600):
            waiting = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database()"
            ).fetchone()
            if waiting and waiting[0]:
                return
            time.sleep(0.05)
    raise AssertionError("the partition's end never waited for the cancel's lock")


def checks(kind: str, url: str, store_dir: Path) -> list[tuple[str, Callable[[], None]]]:
    """The named checks of contract ``kind``, each bound to what it runs on."""
    store = LocalObjectStore(store_dir)
    if kind == "state":
        return [
            (check.__name__, lambda check=check: check(DatabaseStateStore(), store))
            for check in state_contract.CHECKS
        ]
    ledger_checks = list(ledger_contract.CHECKS)
    if url.startswith("postgres"):
        ledger_checks.append(a_cancel_committed_while_the_last_partition_ends_is_kept(url))
    return [
        (check.__name__, lambda check=check: check(DatabaseLedger(store)))
        for check in ledger_checks
    ]


def main(kind: str, url: str, store_dir: Path) -> int:
    db.connect(url, feature=f"{kind} contract")
    failed = 0
    for name, check in checks(kind, url, store_dir):
        try:
            check()
        except Exception:
            failed += 1
            print(f"FAILED {name}: {traceback.format_exc()}")
        else:
            print(f"ok {name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
