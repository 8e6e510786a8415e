"""Updates partitions of one backfill job from its own process (the ledger tests drive it).

Usage: ``python ledger_worker.py STORE_URL ENDPOINT JOB_ID WORKDIR DATE...`` (ENDPOINT
``-`` for a local store). Waits (bounded) for ``WORKDIR/go``, then records each
date as running and then succeeded, two dates at a time, through the store ledger.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

from data_pipeline.db import BackfillPartitionRecord
from data_pipeline.ledger import StoreLedger, this_process
from etl_core.storage import open_store


def main(url: str, endpoint: str, job_id: str, workdir: Path, days: list[str]) -> int:
    options = {} if endpoint == "-" else {"endpoint_url": endpoint}
    deadline = time.monotonic() + 60
    while not (workdir / "go").exists():
        if time.monotonic() > deadline:
            return 2
        time.sleep(0.02)
    with open_store(url, **options) as store:
        ledger = StoreLedger(store)

        def run(day: str) -> None:
            dt = date.fromisoformat(day)
            running = BackfillPartitionRecord(dt, "running", 1, "", None, this_process())
            ledger.update(job_id, running)
            ledger.update(job_id, BackfillPartitionRecord(dt, "succeeded", 1, "", os.getpid(), ""))

        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(run, days))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4]), sys.argv[5:]))
