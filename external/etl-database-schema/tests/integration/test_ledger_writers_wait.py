"""The ledger writers' queue waits a bounded time behind a hung writer.

``_serialise_writers`` queues a store's alert writers (a dataset's freshness writers) on a
PostgreSQL advisory lock. A writer holding it and never ending its transaction (a paused
process, a half-open TCP connection) held every later writer for ever; now a writer waits
at most ``WRITERS_WAIT`` seconds (``lock_timeout`` around the lock, only when the caller
set none shorter) and fails as the door's retryable ``DatabaseUnavailableError`` naming
what it waited for."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import psycopg
import pytest

from etl_database_schema.ledger.queries import _lock_key

RunPython = Callable[..., subprocess.CompletedProcess[str]]
STORE = "s3://prod-lake/etl"

SCRIPT = """
import time
import etl_database_schema as s
import etl_database_schema.ledger.queries as q
s.connect({url!r}, apply_migrations=True)
q.WRITERS_WAIT = 1.5
start = time.monotonic()
try:
    s.record_freshness("sales", "ok", 1.0, store={store!r})
    print("written")
except s.DatabaseUnavailableError as exc:
    print("unavailable", round(time.monotonic() - start))
    print(exc)
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("SHOW lock_timeout")
    print("lock_timeout after", cursor.fetchone()[0])
"""


@pytest.mark.postgres
def test_a_writer_behind_a_hung_one_gives_up_after_the_bound_as_unavailable(
    postgres_url: str, run_python: RunPython, run_cli: Callable[..., object]
) -> None:
    migrated = run_python(
        f"import etl_database_schema as s; s.connect({postgres_url!r}, apply_migrations=True)"
    )
    assert migrated.returncode == 0, migrated.stderr
    script = SCRIPT.format(url=postgres_url, store=STORE)
    with psycopg.connect(postgres_url) as hung:  # a transaction left open: a paused writer
        hung.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)",
            [_lock_key("etl_freshness_status"), _lock_key(f"{STORE}\nsales")],
        )
        started = time.monotonic()
        result = run_python(script)
        took = time.monotonic() - started
        hung.rollback()

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "unavailable 2", lines
    assert "waited 1.5 s for the ledger's writers queue of etl_freshness_status" in lines[1]
    assert f"({STORE} sales)" in lines[1]
    assert "hung writer" in lines[1]
    assert lines[-1] == "lock_timeout after 0"  # the bound was the lock's, not the session's
    assert took < 30

    freed = run_python(script)  # the hung writer gone, the queue moves
    assert freed.stdout.splitlines()[0] == "written", freed.stdout + freed.stderr
    assert freed.stdout.splitlines()[-1] == "lock_timeout after 0"
