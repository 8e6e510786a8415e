"""The ledger's health queries and the catalog statistics, on SQLite and PostgreSQL.

Each test sets Django up in a subprocess (conftest ``run_python``) and prints what the
queries return.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from etl_database_schema.ledger.queries import _percentile

RunPython = Callable[..., subprocess.CompletedProcess[str]]

SEED = """
from datetime import timedelta
from django.utils import timezone
import etl_database_schema as s

s.connect({url!r}, apply_migrations=True)
now = timezone.now()
# (run, dataset, job, status, minutes ago started, rows): durations 1..5 minutes
for n, (dataset, job, status, minutes, rows) in enumerate([
    ("sales", "load", "succeeded", 1, 10),
    ("sales", "load", "succeeded", 2, 0),
    ("sales", "transform", "partial", 3, 0),
    ("sales", "load", "failed", 4, 0),
    ("sales", "load", "succeeded", 5, 7),
]):
    s.start_run(f"r{{n}}", lane="data_pipeline", job=job, dataset=dataset,
                started_at=now - timedelta(minutes=minutes))
    s.finish_run(f"r{{n}}", status, rows_written=rows)
s.start_run("old", lane="file_processing", job="scan",
            started_at=now - timedelta(days=3))
s.finish_run("old", "succeeded")
s.start_run("busy", lane="file_processing", job="scan")  # still running: not in the window
with s.models(s.LEDGER_APP) as ledger:
    ledger["PipelineRun"].objects.filter(run_id="old").update(
        finished_at=now - timedelta(days=2)
    )
    ledger["ApiIngestionState"].objects.create(source="crm", endpoint="ok")
    ledger["ApiIngestionState"].objects.create(
        source="crm", endpoint="contacts", consecutive_failures=2, last_error="HTTP 503"
    )
    ledger["ApiIngestionState"].objects.create(
        source="erp", endpoint="orders", consecutive_failures=5, last_error="timeout"
    )
"""

REPORT = """
(health,) = s.run_health(now - timedelta(days=1))
print("health", health.lane, health.dataset, health.succeeded, health.partial, health.failed,
      round(health.success_rate, 2))
print("durations", health.duration_p50, health.duration_p90, health.duration_max)
print("all", len(s.run_health(now - timedelta(days=7))))
for job in s.job_last_successes():
    print("job", job.lane, job.job, job.dataset or "-", job.finished_at > now - timedelta(hours=1))
print("loads", sorted(s.last_loads()))
for endpoint in s.failing_endpoints():
    print("failing", endpoint.source, endpoint.endpoint, endpoint.consecutive_failures)
stats = s.database_stats(["etl_pipeline_run", "no_such_table"], long_query_after=timedelta(1))
(runs,) = stats.tables
print("stats", stats.vendor, stats.size_bytes > 0, runs.table, runs.rows, stats.missing_tables)
print("ledger", "etl_pipeline_run" in s.ledger_tables(), len(s.ledger_tables()))
"""

EXPECTED = [
    "health data_pipeline sales 3 1 1 0.8",
    "durations",
    "all 2",
    "job data_pipeline load sales True",
    "job data_pipeline transform sales True",
    "job file_processing scan - False",  # its only success finished two days ago
    "loads ['sales']",
    "failing erp orders 5",
    "failing crm contacts 2",
]


def test_percentiles_interpolate_between_ranks() -> None:
    assert _percentile([5.0], 0.99) == 5.0
    assert _percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert _percentile([10.0, 20.0], 0.9) == pytest.approx(19.0)


def _lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The printed lines; the durations line checked (runs of 1 to 5 minutes, finished a
    little later than planned on a busy machine) and cut to its label."""
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    label, *durations = lines[1].split()
    assert [float(d) for d in durations] == [
        pytest.approx(180, abs=20),
        pytest.approx(276, abs=20),
        pytest.approx(300, abs=20),
    ]
    return [lines[0], label, *lines[2:]]


def test_run_health_jobs_loads_endpoints_and_stats_on_sqlite(run_python: RunPython) -> None:
    lines = _lines(run_python(SEED.format(url="sqlite:///ledger.sqlite3") + REPORT))

    assert lines[: len(EXPECTED)] == EXPECTED
    assert lines[len(EXPECTED)] == "stats sqlite True etl_pipeline_run 7 ('no_such_table',)"
    assert lines[-1].startswith("ledger True ")


@pytest.mark.postgres
def test_run_health_jobs_loads_endpoints_and_stats_on_postgres(
    run_python: RunPython, postgres_url: str
) -> None:
    analyze = """
from django.db import connection
with s.models(s.LEDGER_APP), connection.cursor() as cursor:
    cursor.execute("ANALYZE etl_pipeline_run")
"""
    catalog = """
print("connections", sum(stats.connections.values()) >= 1, stats.long_running_queries,
      stats.longest_query_seconds >= 0)
print("table", runs.size_bytes > 0, runs.dead_tuples >= 0)
"""
    code = SEED.format(url=postgres_url) + analyze + REPORT + catalog

    lines = _lines(run_python(code))

    assert lines[: len(EXPECTED)] == EXPECTED
    assert lines[len(EXPECTED)] == "stats postgresql True etl_pipeline_run 7 ('no_such_table',)"
    assert lines[-2:] == ["connections True 0 True", "table True True"]


LOADS = """
from datetime import timedelta
from django.utils import timezone
import etl_database_schema as s

s.connect({url!r}, apply_migrations=True)
now = timezone.now()
for run_id, job, dataset, parameters, rows in [
    ("own", "load", "sales", {{}}, 4),
    ("multi", "run", "", {{"datasets": ["sales", "web"], "load": True}}, 3),
    ("empty", "run", "", {{"datasets": ["stock"], "load": True}}, 0),
    ("no-load", "run", "returns", {{"datasets": ["returns"], "load": False}}, 9),
    ("transform", "transform", "stock", {{"date": "2026-12-01"}}, 7),
]:
    s.start_run(run_id, lane="data_pipeline", job=job, dataset=dataset, parameters=parameters)
    s.finish_run(run_id, "succeeded", rows_written=rows)
loads = s.last_loads()
print(sorted(loads), loads["sales"] == loads["web"] == s.get_run("multi").finished_at)
"""


@pytest.mark.parametrize("vendor", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_last_loads_count_runs_over_several_datasets_not_transforms_or_no_load_runs(
    run_python: RunPython, vendor: str, request: pytest.FixtureRequest
) -> None:
    url = "sqlite:///ledger.sqlite3"
    if vendor == "postgres":
        url = request.getfixturevalue("postgres_url")

    result = run_python(LOADS.format(url=url))

    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[0] == "['sales', 'web'] True"


PARTITIONED = """
from datetime import timedelta
from django.db import connection
import etl_database_schema as s

s.connect({url!r}, apply_migrations=True)
with s.models(s.LEDGER_APP), connection.cursor() as cursor:
    cursor.execute("CREATE TABLE sales (dt date NOT NULL, n int) PARTITION BY RANGE (dt)")
    cursor.execute("CREATE TABLE sales_empty (dt date NOT NULL) PARTITION BY RANGE (dt)")
    for day in (1, 2):
        cursor.execute(
            f"CREATE TABLE sales_p{{day}} PARTITION OF sales "
            f"FOR VALUES FROM ('2026-11-0{{day}}') TO ('2026-11-0{{day + 1}}')"
        )
        cursor.execute(
            f"INSERT INTO sales SELECT '2026-11-0{{day}}', g FROM generate_series(1, {{day}}000) g"
        )
    cursor.execute("DELETE FROM sales WHERE n <= 10")
    cursor.execute("ANALYZE sales_p1, sales_p2")  # autoanalyze never does the parent
stats = s.database_stats(["sales", "sales_empty"], long_query_after=timedelta(1))
for table in stats.tables:
    print(table.table, table.rows, table.size_bytes > 16384, table.last_analyze is not None)
print("missing", stats.missing_tables)
"""


@pytest.mark.postgres
def test_a_partitioned_table_counts_the_rows_and_bytes_of_its_partitions(
    run_python: RunPython, postgres_url: str
) -> None:
    """The curated tables are partitioned on PostgreSQL, and their parent holds nothing:
    `etl-observability database` showed 0 rows and 0 bytes for a loaded table."""
    result = run_python(PARTITIONED.format(url=postgres_url))

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "sales 2980 True True",
        "sales_empty 0 False False",
        "missing ()",
    ]
