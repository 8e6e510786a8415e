"""A curated-partition writer in its own process, driven by the lease tests through files.

Usage: ``python publish_worker.py STORE_URL ENDPOINT WORKDIR`` (ENDPOINT ``-`` for a
local store). Takes the lease of ``pos`` / 2026-11-01 (TTL 1 s, heartbeat every
0.3 s), writes ``holding <token>`` to ``WORKDIR/worker.state``, waits (bounded) for
``WORKDIR/go``, then publishes generation ``worker`` under the lease and writes
``published`` (exit 0), or ``lost`` when the lease was taken over (exit 3).
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

from data_pipeline.layout import publish_partition
from data_pipeline.lease import partition_lease
from etl_core.errors import LeaseLostError
from etl_core.storage import open_store

DAY = date(2026, 11, 1)


def say(workdir: Path, line: str) -> None:
    with (workdir / "worker.state").open("a") as state:
        state.write(line + "\n")


def main(url: str, endpoint: str, workdir: Path) -> int:
    options = {} if endpoint == "-" else {"endpoint_url": endpoint}
    part = workdir / "worker-part.parquet"
    part.write_bytes(b"worker rows")
    with (
        open_store(url, **options) as store,
        partition_lease(
            store, "pos", DAY, purpose="worker", ttl_seconds=1, heartbeat_seconds=0.3
        ) as lease,
    ):
        started = datetime.now(UTC)
        say(workdir, f"holding {lease.token}")
        deadline = time.monotonic() + 60
        while not (workdir / "go").exists():
            if time.monotonic() > deadline:
                return 2
            time.sleep(0.02)
        try:
            publish_partition(
                store,
                dataset="pos",
                dt=DAY,
                generation="worker",
                started_at=started,
                files=[part],
                rows=1,
                inputs={},
                lease=lease,
            )
        except LeaseLostError:
            say(workdir, "lost")
            return 3
        say(workdir, "published")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
