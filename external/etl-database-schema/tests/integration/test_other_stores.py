"""A database shared by two deployments is said, not silent: ``other_stores(store)`` lists
the object stores other than the deployment's own found in the per-store ledger tables
(``etl_alert``, ``etl_freshness_status``, ``etl_load_fence``), and ``warn_other_stores``
logs it once per process, pointing to docs/architecture.md section 5. Rows of the own
store or written before the store was kept (``''``) are no other store."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

RunPython = Callable[..., subprocess.CompletedProcess[str]]
PROD = "s3://prod-lake/etl"
STAGING = "file:///srv/staging-lake"
OLD = "s3://old-lake/etl"

SCRIPT = """
import datetime, logging, sys
logging.basicConfig(stream=sys.stdout, level=logging.WARNING,
                    format="%(levelname)s %(message)s [%(store)s %(other_stores)s]")
import etl_database_schema as s
s.connect({url!r}, apply_migrations=True)
PROD, STAGING, OLD = {prod!r}, {staging!r}, {old!r}
from django.db import connection
print("empty", s.other_stores(PROD))
s.record_freshness("sales", "ok", 1.0, store=PROD)
with s.models(s.LEDGER_APP) as ledger:
    ledger["FreshnessStatus"].objects.create(store="", dataset="stock", level="ok")
print("own and legacy", s.other_stores(PROD))
print("warned", s.warn_other_stores(PROD))
s.record_freshness("sales", "critical", 9.0, store=STAGING)
with s.models(s.LEDGER_APP) as ledger, connection.cursor() as cursor:
    day = datetime.date(2026, 1, 2)
    s.load_fences.record_load_token(cursor, "retail_daily_sales", day, store=OLD, lease="l",
                                    token=3)
print("others", s.other_stores(PROD))
print("from staging", s.other_stores(STAGING))
print("prod warned again", s.warn_other_stores(PROD))
print("old warned", s.warn_other_stores(OLD))
print("old warned again", s.warn_other_stores(OLD))
try:
    s.other_stores("")
except ValueError as exc:
    print("refused")
"""


def test_other_stores_are_listed_and_warned_once_but_not_own_or_legacy_rows(
    raw_database: Any, run_python: RunPython
) -> None:
    result = run_python(SCRIPT.format(url=raw_database.url, prod=PROD, staging=STAGING, old=OLD))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    warnings = [line for line in lines if line.startswith("WARNING")]
    assert [line for line in lines if not line.startswith("WARNING")] == [
        "empty []",
        "own and legacy []",
        "warned []",
        f"others ['{STAGING}', '{OLD}']",
        f"from staging ['{OLD}', '{PROD}']",
        "prod warned again []",
        f"old warned ['{STAGING}', '{PROD}']",
        "old warned again []",
        "refused",
    ]
    assert len(warnings) == 1, lines
    (warning,) = warnings
    assert f"other object store(s) {STAGING}, {PROD}" in warning
    assert f"this deployment's store {OLD}" in warning
    assert "docs/architecture.md section 5" in warning
    assert warning.endswith(f"[{OLD} ['{STAGING}', '{PROD}']]")


LIMITED = """
import logging, sys
logging.basicConfig(stream=sys.stdout, level=logging.DEBUG, format="%(levelname)s %(message)s")
logging.getLogger("django").setLevel(logging.WARNING)
import etl_database_schema as s
s.connect({url!r})
print("warned", s.warn_other_stores({prod!r}))
print("again", s.warn_other_stores({prod!r}))
"""


@pytest.mark.postgres
def test_a_role_that_cannot_read_a_per_store_table_is_not_failed_by_the_warning(
    postgres_url: str, run_python: RunPython
) -> None:
    """The check is best-effort: a role granted only some tables (an observability role, a
    file lane's) meets ``permission denied`` on one of the three; the command must go on
    (said at DEBUG), not fail where it worked before the warning existed."""
    import uuid

    import psycopg

    migrated = run_python(
        f"import etl_database_schema as s; s.connect({postgres_url!r}, apply_migrations=True)"
    )
    assert migrated.returncode == 0, migrated.stderr
    role = f"etl_limited_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(
            "INSERT INTO etl_freshness_status (store, dataset, level, message, changed_at) "
            f"VALUES ('{STAGING}', 'pos', 'ok', '', now())"
        )
        admin.execute(f"CREATE ROLE {role} LOGIN")
        admin.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
        admin.execute(f"REVOKE SELECT ON etl_load_fence FROM {role}")
    try:
        parts = urlsplit(postgres_url)
        limited = urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port}"))
        result = run_python(LIMITED.format(url=limited, prod=PROD))
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "warned []" in lines, lines
    assert "again []" in lines, lines  # checked once per process, even when it failed
    skipped = [line for line in lines if "could not check for other object stores" in line]
    assert len(skipped) == 1, lines
    assert skipped[0].startswith("DEBUG")
    assert "permission denied" in skipped[0]


FORKING = """
import logging, os, sys
logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="%(levelname)s %(message)s")
import etl_database_schema as s
s.connect({url!r}, apply_migrations=True)
s.record_freshness("sales", "ok", 1.0, store={old!r})
from django.db import connections
connections.close_all()
s.door._connected, s.door._migrated = None, False  # a worker's start: the door not open
s.check_login({url!r}, require_migrated=True, store={prod!r})
print("door open after", s.is_connected())
sys.stdout.flush()
children = []
for _ in range(3):  # the worker's processes, forked after its check
    pid = os.fork()
    if pid == 0:
        s.connect({url!r})
        os.write(1, f"child warned {{s.warn_other_stores({prod!r})}}\\n".encode())
        os._exit(0)
    children.append(pid)
print("children", [os.waitpid(pid, 0)[1] for pid in children])
"""


def test_a_workers_start_up_check_warns_once_for_the_processes_it_forks(
    raw_database: Any, run_python: RunPython
) -> None:
    # each process of a worker checked the ledger as it built its context: N warnings for a
    # worker of concurrency N, again for each process replacing one
    result = run_python(FORKING.format(url=raw_database.url, prod=PROD, old=OLD))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    warnings = [line for line in lines if line.startswith("WARNING")]
    assert len(warnings) == 1, lines
    assert OLD in warnings[0]
    assert "door open after False" in lines  # the processes open their own
    assert lines.count("child warned []") == 3
    assert "children [0, 0, 0]" in lines
