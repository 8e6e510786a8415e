"""Runs the ledger contract on the database ledger (``test_backfill_ledger`` drives it).

Usage: ``python db_ledger_worker.py DATABASE_URL STORE_DIR``; prints one line per check
(``ok <name>`` or ``FAILED <name>: <error>``) and exits 1 when any failed. On PostgreSQL
one more check holds a cancel open on another connection while a partition ends.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from pathlib import Path

from ledger_contract import CHECKS, DAYS, Check, running_job

from data_pipeline import db
from data_pipeline.db import BackfillPartitionRecord
from data_pipeline.ledger import DatabaseLedger, Ledger
from etl_core.storage import LocalObjectStore


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


def main(url: str, store_dir: Path) -> int:
    db.connect(url, feature="the backfill ledger")
    failed = 0
    checks = list(CHECKS)
    if url.startswith("postgres"):
        checks.append(a_cancel_committed_while_the_last_partition_ends_is_kept(url))
    for check in checks:
        try:
            check(DatabaseLedger(LocalObjectStore(store_dir)))
        except Exception:
            failed += 1
            print(f"FAILED {check.__name__}: {traceback.format_exc()}")
        else:
            print(f"ok {check.__name__}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], Path(sys.argv[2])))
