"""`etl-observability database`: tables, server and ledger health on SQLite and PostgreSQL.

Django is process-global, so the ledger is seeded in a subprocess and read by the CLI.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from etl_core.testing.ports import free_port
from etl_core.testing.pushgateway import find_binary
from etl_core.testing.services import service_unavailable

Cli = Callable[..., subprocess.CompletedProcess[str]]
Migrate = Callable[[str], None]

CONTRACT = """
dataset = "stores"
source = "stores"
pattern = "stores_{date:%Y%m%d}.csv"
[[columns]]
name = "store_code"
[load]
table = "retail_store"
"""

SEED = """
from datetime import timedelta
from django.db import connection
from django.utils import timezone
import etl_database_schema as s

s.connect({url!r})
now = timezone.now()
for n, (status, minutes, rows) in enumerate(
    [("succeeded", 1, 5), ("succeeded", 2, 5), ("succeeded", 3, 0), ("failed", 4, 0)]
):
    s.start_run(f"load-{{n}}", lane="data_pipeline", job="load", dataset="stores",
                started_at=now - timedelta(minutes=minutes))
    s.finish_run(f"load-{{n}}", status, rows_written=rows)
s.start_run("scan-1", lane="file_processing", job="scan")
s.finish_run("scan-1", "partial", quarantined=1)
with s.models(s.LEDGER_APP) as ledger:
    ledger["ApiIngestionState"].objects.create(
        source="crm", endpoint="contacts", consecutive_failures=3, last_error="HTTP 503"
    )
    job = ledger["BackfillJob"].objects.create(
        dataset="stores", start_date="2026-11-01", end_date="2026-11-02"
    )
    ledger["BackfillPartition"].objects.create(job=job, partition_date="2026-11-01", state="failed")
with s.models(s.RETAIL_APP) as retail:
    for code in ("S1", "S2"):
        retail["Store"].objects.create(store_code=code, name=code, region="N", country="DE")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE retail_store")
"""


@pytest.fixture
def seed() -> Callable[[str], None]:
    """Fill the ledger: loads of ``stores`` (one failed), a partial scan, a failing API
    endpoint, a failed backfill partition, two rows in ``retail_store``."""

    def run(url: str) -> None:
        subprocess.run(
            [sys.executable, "-c", textwrap.dedent(SEED.format(url=url))],
            check=True,
            capture_output=True,
            timeout=120,
        )

    return run


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    (tmp_path / "config" / "datasets").mkdir(parents=True)
    (tmp_path / "config" / "datasets" / "stores.toml").write_text(CONTRACT)
    return tmp_path / "config"


def _database(cli: Cli, url: str, config_dir: Path, metrics: Path, **env: str) -> dict[str, Any]:
    result = cli(
        "--config-dir",
        str(config_dir),
        "database",
        "--json",
        "--metrics-file",
        str(metrics),
        env={"ETL_DATABASE_URL": url, **env},
    )
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def _assert_ledger_health(report: dict[str, Any], text: str) -> None:
    (pipeline,) = [r for r in report["runs"] if r["lane"] == "data_pipeline"]
    assert (pipeline["dataset"], pipeline["succeeded"], pipeline["failed"]) == ("stores", 3, 1)
    assert pipeline["success_rate"] == 0.75
    assert 60 <= pipeline["duration_p50"] <= pipeline["duration_p99"] <= pipeline["duration_max"]
    assert report["signals"]["backfill_partitions_failed"] == 1
    assert report["failing_endpoints"][0]["consecutive_failures"] == 3
    jobs = {(j["lane"], j["job"], j["dataset"]) for j in report["last_success"]}
    assert jobs == {("data_pipeline", "load", "stores"), ("file_processing", "scan", "")}
    (store,) = [t for t in report["tables"] if t["table"] == "retail_store"]
    assert (store["rows"], store["datasets"]) == (2, ["stores"])
    assert store["last_load"] is not None
    assert {"etl_pipeline_run", "etl_freshness_status"} <= {t["table"] for t in report["tables"]}
    assert report["size_bytes"] > 0
    assert 'etl_observability_run_success_ratio{lane="data_pipeline",dataset="stores"} 0.75' in text
    assert 'etl_observability_table_rows{table="retail_store"} 2' in text
    assert (
        'etl_observability_last_success_timestamp_seconds{lane="file_processing",job="scan",'
        'dataset=""}' in text
    )
    assert 'etl_observability_table_last_load_timestamp_seconds{table="retail_store"}' in text
    assert (
        'etl_observability_api_endpoint_consecutive_failures{source="crm",endpoint="contacts"} 3'
        in text
    )


def test_sqlite_database_metrics_measure_tables_and_the_ledger(
    cli: Cli, tmp_path: Path, migrate: Migrate, seed: Callable[[str], None], config_dir: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'etl.sqlite3'}"
    migrate(url)
    seed(url)
    metrics = tmp_path / "db.prom"

    report = _database(cli, url, config_dir, metrics)

    _assert_ledger_health(report, metrics.read_text())
    assert report["vendor"] == "sqlite"
    assert report["connections"] is None
    assert report["long_running_queries"] is None


def test_a_load_table_that_does_not_exist_is_reported_missing(
    cli: Cli, tmp_path: Path, migrate: Migrate, config_dir: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'etl.sqlite3'}"
    migrate(url)
    (config_dir / "datasets" / "stores.toml").write_text(
        CONTRACT.replace("retail_store", "retail_nowhere")
    )

    result = cli("--config-dir", str(config_dir), "database", env={"ETL_DATABASE_URL": url})

    assert result.returncode == 0, result.stderr
    assert "missing tables" in result.stdout
    assert "retail_nowhere" in result.stdout
    assert "runs finished in the last 1d" in result.stdout


@pytest.fixture
def slow_query(postgres_url: str) -> Iterator[None]:
    """A query sleeping on the database for up to 60 s (cancelled when the test ends)."""
    import psycopg

    connection = psycopg.connect(postgres_url, autocommit=True)
    sleeper = threading.Thread(target=_sleep, args=(connection,), daemon=True)
    sleeper.start()
    try:
        deadline = time.monotonic() + 20
        with psycopg.connect(postgres_url, autocommit=True) as probe:
            while not probe.execute(
                "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%'"
                " AND state = 'active' AND now() - query_start > interval '1.5 seconds'"
            ).fetchone():
                assert time.monotonic() < deadline, "the slow query never started"
                time.sleep(0.2)
        yield
    finally:
        connection.cancel_safe(timeout=5)
        sleeper.join(timeout=30)
        connection.close()


def _sleep(connection: Any) -> None:
    import psycopg

    with contextlib.suppress(psycopg.errors.QueryCanceled):
        connection.execute("SELECT pg_sleep(60)")


@pytest.mark.postgres
def test_postgres_database_metrics_see_tables_connections_and_a_long_query(
    cli: Cli,
    tmp_path: Path,
    postgres_url: str,
    migrate: Migrate,
    seed: Callable[[str], None],
    config_dir: Path,
    request: pytest.FixtureRequest,
) -> None:
    migrate(postgres_url)
    seed(postgres_url)
    request.getfixturevalue("slow_query")
    metrics = tmp_path / "db.prom"

    report = _database(cli, postgres_url, config_dir, metrics, ETL_LONG_QUERY_AFTER="1s")

    text = metrics.read_text()
    _assert_ledger_health(report, text)
    assert report["vendor"] == "postgresql"
    assert report["connections"]["active"] >= 2  # the slow query and the collector itself
    assert report["long_running_queries"] >= 1
    assert report["longest_query_seconds"] >= 1.5
    (store,) = [t for t in report["tables"] if t["table"] == "retail_store"]
    assert store["size_bytes"] > 0
    assert isinstance(store["dead_tuples"], int)
    assert "etl_observability_database_long_running_queries 1" in text
    assert "etl_observability_database_longest_query_seconds " in text
    assert 'etl_observability_database_connections{state="active"}' in text


@contextlib.contextmanager
def _node_exporter_textfile(folder: Path) -> Iterator[str]:
    """node_exporter's textfile collector over ``folder`` on 127.0.0.1: its ``/metrics`` URL."""
    binary = find_binary("prometheus-node-exporter", "node_exporter")
    if binary is None:
        service_unavailable(
            "node_exporter", "binary not found (Debian package 'prometheus-node-exporter')"
        )
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--web.listen-address=127.0.0.1:{port}",
            "--collector.disable-defaults",
            "--collector.textfile",
            f"--collector.textfile.directory={folder}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _scrape_when_up(url: str) -> str:
    for _ in range(100):
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                body: bytes = response.read()
                return body.decode("utf-8")
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"node_exporter did not answer at {url} in 10 seconds")


def test_node_exporter_serves_the_run_duration_quantiles_without_an_invented_count(
    cli: Cli, tmp_path: Path, migrate: Migrate, seed: Callable[[str], None], config_dir: Path
) -> None:
    """The metrics file is read by node_exporter's textfile collector, which gives a family
    typed summary a ``_sum`` and ``_count`` of 0 when the file has none: runs in the window
    would read as none (``_count == 0``)."""
    url = f"sqlite:///{tmp_path / 'etl.sqlite3'}"
    migrate(url)
    seed(url)
    collected = tmp_path / "textfile"
    collected.mkdir()
    _database(cli, url, config_dir, collected / "etl_db.prom")

    with _node_exporter_textfile(collected) as metrics_url:
        served = _scrape_when_up(metrics_url).splitlines()

    ours = [line for line in served if line.startswith("etl_observability_run_duration")]
    assert not [line for line in ours if "_count" in line or "_sum" in line], ours
    quantiles = {line.split('quantile="')[1].split('"')[0] for line in ours}
    assert quantiles == {"0.5", "0.9", "0.99"}, ours
