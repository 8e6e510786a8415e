"""A database shared by two deployments is said, not silent: ``other_stores(store)`` lists
the object stores other than the deployment's own found in the per-store ledger tables
(``etl_alert``, ``etl_freshness_status``, ``etl_load_fence``), and ``warn_other_stores``
logs it once per process, pointing to docs/architecture.md section 5. Rows of the own
store or written before the store was kept (``''``) are no other store."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

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
