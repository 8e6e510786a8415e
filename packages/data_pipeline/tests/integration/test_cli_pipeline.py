"""`transform`, `load` and `run` as an operator runs them, with SQLite and PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from data_pipeline.lease import partition_lease
from etl_core.storage import ObjectStore
from etl_core.testing.deliveries import publish_delivery
from etl_core.testing.disks import small_disk as mounted_small_disk
from etl_core.testing.scripts import run_script

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def pipeline(
    cli_on: Callable[[Path], Cli], tmp_path: Path, local_store: ObjectStore
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """The CLI on the test's config directory and local store."""
    return cli_on(tmp_path / "store")


def keys(store: ObjectStore, prefix: str) -> list[str]:
    return [info.key for info in store.list(prefix)]


def sqlite_rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        return connection.execute(sql).fetchall()


def test_transform_then_load_into_sqlite_twice_keeps_one_copy(
    pipeline: Cli, migrated_sqlite: str
) -> None:
    result = pipeline("transform", "--dataset", "pos", "--date", "2026-11-01")
    assert result.returncode == 0, result.stderr
    assert "2026-11-01" in result.stdout
    assert "200" in result.stdout
    env = {"DATABASE_URL": migrated_sqlite}
    for _ in range(2):
        result = pipeline("load", "--dataset", "pos", "--date", "2026-11-01", env=env)
        assert result.returncode == 0, result.stderr
    rows = sqlite_rows(
        migrated_sqlite,
        "SELECT dt, count(*), count(DISTINCT transaction_id), min(region), max(run_id) "
        "FROM retail_sales_transaction GROUP BY dt",
    )
    assert len(rows) == 1
    assert rows[0][:3] == ("2026-11-01", 200, 200)
    assert rows[0][3] in {"ES", "FR", "IT", "PT"}
    assert rows[0][4]
    # each load recorded its partition lease's token, the later load's being the newer
    assert sqlite_rows(
        migrated_sqlite, "SELECT table_name, dt, lease, token FROM etl_load_fence"
    ) == [
        (
            "retail_sales_transaction",
            "2026-11-01",
            "_state/data_pipeline/leases/pos/dt=2026-11-01.json",
            3,
        )
    ]


def test_load_before_transform_names_the_partition(pipeline: Cli, migrated_sqlite: str) -> None:
    result = pipeline(
        "load", "--dataset", "pos", "--date", "2026-11-01", env={"DATABASE_URL": migrated_sqlite}
    )
    assert result.returncode == 1
    assert "dataset 'pos', partition dt=2026-11-01" in result.stderr
    assert "run `transform` first" in result.stderr


def test_run_processes_only_what_is_new(
    pipeline: Cli, migrated_sqlite: str, local_store: ObjectStore, retail: Any
) -> None:
    env = {"DATABASE_URL": migrated_sqlite}
    first = pipeline("run", env=env)
    assert first.returncode == 0, first.stderr
    assert "2 partition(s) processed, 0 failed" in first.stdout
    again = pipeline("run", env=env)
    assert "0 partition(s) processed" in again.stdout
    late_file = {"late.csv": retail.rows("2026-11-03", 7).encode()}
    publish_delivery(local_store, "pos", date(2026, 11, 2), late_file)
    late = pipeline("run", env=env)
    assert "1 partition(s) processed" in late.stdout, late.stderr
    rows = sqlite_rows(
        migrated_sqlite, "SELECT dt, count(*) FROM retail_sales_transaction GROUP BY dt ORDER BY dt"
    )
    assert rows == [("2026-11-01", 200), ("2026-11-02", 207)]


def test_run_without_a_database_asks_for_one_or_no_load(pipeline: Cli) -> None:
    refused = pipeline("run")
    assert refused.returncode == 2
    assert "DATABASE_URL" in refused.stderr
    assert "--no-load" in refused.stderr
    transformed = pipeline("run", "--no-load")
    assert transformed.returncode == 0, transformed.stderr
    assert "2 partition(s) processed" in transformed.stdout


def test_load_reads_the_curated_output_without_binding_the_transform_sql(
    pipeline: Cli, config_dir: Path, migrated_sqlite: str
) -> None:
    transformed = pipeline("transform", "--dataset", "pos", "--date", "2026-11-01")
    assert transformed.returncode == 0, transformed.stderr
    path = config_dir / "datasets" / "pos.toml"
    path.write_text(path.read_text().replace("currency, payment_type", "currency, no_such_column"))
    refused = pipeline("transform", "--dataset", "pos", "--date", "2026-11-01")
    assert refused.returncode == 2
    assert "transform.sql" in refused.stderr
    env = {"DATABASE_URL": migrated_sqlite}
    loaded = pipeline("load", "--dataset", "pos", "--date", "2026-11-01", env=env)
    assert loaded.returncode == 0, loaded.stderr
    assert sqlite_rows(migrated_sqlite, "SELECT count(*) FROM retail_sales_transaction") == [(200,)]


def test_bad_contract_exits_2_naming_file_and_field(pipeline: Cli, config_dir: Path) -> None:
    path = config_dir / "datasets" / "pos.toml"
    path.write_text(path.read_text().replace('unmatched = "fail"', 'unmatched = "maybe"'))
    result = pipeline("transform", "--dataset", "pos", "--date", "2026-11-01")
    assert result.returncode == 2
    assert "enrich.products.unmatched" in result.stderr
    assert "pos.toml:" in result.stderr


def test_a_partition_under_lease_is_skipped_with_a_message(
    pipeline: Cli, local_store: ObjectStore
) -> None:
    import os
    import socket
    import time

    lease = {
        "dataset": "pos", "dt": "2026-11-01", "host": socket.gethostname(), "pid": os.getppid(),
        "token": "other", "purpose": "backfill", "expires_at": time.time() + 600,
    }  # fmt: skip
    local_store.write_bytes(
        "_state/data_pipeline/leases/pos/dt=2026-11-01.json", json.dumps(lease).encode()
    )
    result = pipeline("transform", "--dataset", "pos", "--date", "2026-11-01")
    assert result.returncode == 1
    assert "is being written by" in result.stderr
    assert "(backfill)" in result.stderr
    assert not local_store.exists("curated/pos/dt=2026-11-01/_manifest.json")


def test_enrichment_from_a_database_table(
    pipeline: Cli, migrated_sqlite: str, config_dir: Path, retail: Any
) -> None:
    with sqlite3.connect(migrated_sqlite.removeprefix("sqlite:///")) as connection:
        connection.executemany(
            "INSERT INTO retail_store (store_code, name, region, country, city, updated_at) "
            "VALUES (?, ?, ?, ?, '', '2026-01-01')",
            [(f"S00{n}", f"Store {n}", f"Region {n}", "PT") for n in range(1, 9)],
        )
    text = retail.contract().replace(
        'file = "reference/stores.csv"\non = { store_code = "store_id" }\n'
        'columns = { region = "country", store_name = "name" }',
        'table = "retail_store"\non = ["store_code"]\n'
        'columns = { region = "region", store_name = "name" }',
    )
    retail.write_contract(config_dir, "pos", text)
    env = {"DATABASE_URL": migrated_sqlite}
    result = pipeline("run", env=env)
    assert result.returncode == 0, result.stderr
    regions = sqlite_rows(migrated_sqlite, "SELECT DISTINCT region FROM retail_sales_transaction")
    assert {r[0] for r in regions} <= {f"Region {n}" for n in range(1, 9)}
    assert regions


@pytest.mark.postgres
def test_load_into_postgres_with_copy_is_idempotent(
    pipeline: Cli, postgres_url: str, tmp_path: Path
) -> None:
    migrated = run_script("etl-schema", "migrate", cwd=tmp_path, env={"DATABASE_URL": postgres_url})
    assert migrated.returncode == 0, migrated.stderr
    env = {"DATABASE_URL": postgres_url}
    assert pipeline("run", env=env).returncode == 0
    result = pipeline("load", "--dataset", "pos", "--date", "2026-11-01", env=env)
    assert result.returncode == 0, result.stderr
    import psycopg

    with psycopg.connect(postgres_url) as connection:
        rows = connection.execute(
            "SELECT dt::text, count(*), count(DISTINCT transaction_id), sum(amount) > 0 "
            "FROM retail_sales_transaction GROUP BY dt ORDER BY dt"
        ).fetchall()
    assert rows == [("2026-11-01", 200, 200, True), ("2026-11-02", 200, 200, True)]


@pytest.mark.postgres
def test_load_with_load_analyze_set_leaves_the_day_partition_analysed(
    pipeline: Cli, postgres_url: str, tmp_path: Path
) -> None:
    migrated = run_script("etl-schema", "migrate", cwd=tmp_path, env={"DATABASE_URL": postgres_url})
    assert migrated.returncode == 0, migrated.stderr
    assert pipeline("transform", "--dataset", "pos", "--date", "2026-11-01").returncode == 0
    env = {"DATABASE_URL": postgres_url, "ETL_LOAD_ANALYZE": "true"}
    result = pipeline("load", "--dataset", "pos", "--date", "2026-11-01", env=env)
    assert result.returncode == 0, result.stderr
    import psycopg

    with psycopg.connect(postgres_url) as connection:
        analysed = connection.execute(
            "SELECT count(DISTINCT attname) FROM pg_stats WHERE tablename = %s",
            ["retail_sales_transaction_p20261101"],
        ).fetchone()
    assert analysed is not None
    assert analysed[0] > 10  # a row of statistics per column


def test_run_skips_a_partition_another_writer_holds_and_succeeds(
    pipeline: Cli, local_store: ObjectStore
) -> None:
    with partition_lease(local_store, "pos", date(2026, 11, 2), purpose="other", ttl_seconds=60):
        result = pipeline("run", "--no-load")
    assert result.returncode == 0, result.stderr
    assert (
        "1 partition(s) processed, 0 failed, 1 skipped (in progress or done elsewhere)"
        in result.stdout
    )
    assert "skipped: in progress elsewhere" in result.stdout
    assert local_store.exists("curated/pos/dt=2026-11-01/_manifest.json")
    assert not local_store.exists("curated/pos/dt=2026-11-02/_manifest.json")


def test_every_job_records_its_run_with_status_counts_and_error(
    pipeline: Cli, migrated_sqlite: str
) -> None:
    env = {"DATABASE_URL": migrated_sqlite}
    failed = pipeline("load", "--dataset", "pos", "--date", "2026-11-01", env=env)
    transformed = pipeline("transform", "--dataset", "pos", "--date", "2026-11-01", env=env)
    loaded = pipeline("load", "--dataset", "pos", "--date", "2026-11-01", env=env)
    ran = pipeline("run", env=env)
    backfilled = pipeline(
        "backfill", "--dataset", "pos", "--from", "2026-11-01", "--to", "2026-11-02", env=env
    )

    assert failed.returncode == 1
    for done in (transformed, loaded, ran, backfilled):
        assert done.returncode == 0, done.stderr
    runs = sqlite_rows(
        migrated_sqlite,
        "SELECT job, dataset, status, inputs_count, outputs_count, failed_count, rows_written, "
        "error FROM etl_pipeline_run WHERE lane = 'data_pipeline' ORDER BY id",
    )
    assert [run[:7] for run in runs] == [
        ("load", "pos", "failed", 0, 0, 0, 0),
        ("transform", "pos", "succeeded", 1, 1, 0, 200),
        ("load", "pos", "succeeded", 1, 1, 0, 200),
        ("run", "", "succeeded", 1, 1, 0, 200),
        ("backfill", "pos", "succeeded", 2, 2, 0, 400),
    ]
    assert "run `transform` first" in runs[0][7]
    assert all(run[7] == "" for run in runs[1:])


def test_a_run_with_a_failed_partition_is_recorded_failed_with_the_reason(
    pipeline: Cli, migrated_sqlite: str, local_store: ObjectStore
) -> None:
    bad = {"bad.csv": b"not,the,columns\n1,2,3\n"}
    publish_delivery(local_store, "pos", date(2026, 11, 3), bad)

    result = pipeline("run", "--dataset", "pos", env={"ETL_DATABASE_URL": migrated_sqlite})

    assert result.returncode == 1
    ((status, dataset, failed, error),) = sqlite_rows(
        migrated_sqlite,
        "SELECT status, dataset, failed_count, error FROM etl_pipeline_run",
    )
    assert (status, dataset, failed) == ("failed", "pos", 1)
    assert "partition dt=2026-11-03" in error


def test_a_load_table_that_is_not_curated_stops_the_run_before_any_work(
    pipeline: Cli, migrated_sqlite: str, local_store: ObjectStore, retail: Any, config_dir: Path
) -> None:
    text = retail.contract().replace('table = "retail_sales_transaction"', 'table = "retail_sales"')
    retail.write_contract(config_dir, "pos", text)
    result = pipeline("run", env={"DATABASE_URL": migrated_sqlite})
    assert result.returncode == 2
    assert "'retail_sales' is not a curated table" in result.stderr
    assert "load.table" in result.stderr
    assert "Traceback" not in result.stderr
    assert not local_store.exists("curated/pos/dt=2026-11-01/_manifest.json")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs: a real full disk (mounting needs root, else the test is skipped;
    etl_core's scratch tests cover the same error with a fake ENOSPC)."""
    with mounted_small_disk(tmp_path, "256k") as mount:
        yield mount


def test_transform_on_a_full_work_dir_names_it_keeps_the_input_and_reruns_with_room(
    pipeline: Cli, local_store: ObjectStore, small_disk: Path, tmp_path: Path, retail: Any
) -> None:
    day = "2026-11-03"
    files = {f"pos_{day}.csv": retail.rows(day, 6000).encode()}
    assert len(files[f"pos_{day}.csv"]) > 300_000  # larger than the disk
    publish_delivery(local_store, "pos", date.fromisoformat(day), files, rows=6000)
    validated = sorted(keys(local_store, f"validated/pos/dt={day}/"))
    work = small_disk / "work"
    work.mkdir()
    full = pipeline("transform", "--dataset", "pos", "--date", day, env={"ETL_WORK_DIR": str(work)})
    assert full.returncode == 1, full.stderr
    said = [json.loads(line) for line in full.stderr.splitlines() if line.startswith("{")]
    errors = [line["event"] for line in said if line["level"] == "error"]
    assert errors, full.stderr
    assert f"no space left on device in the work directory {work}" in errors[-1]
    assert not any(line["level"] == "critical" for line in said)  # no traceback of a 'bug'
    assert list(work.iterdir()) == []  # the scratch is gone
    assert sorted(keys(local_store, f"validated/pos/dt={day}/")) == validated
    assert list(keys(local_store, f"curated/pos/dt={day}/")) == []
    roomy = tmp_path / "roomy"
    roomy.mkdir()
    rerun = pipeline(
        "transform", "--dataset", "pos", "--date", day, env={"ETL_WORK_DIR": str(roomy)}
    )
    assert rerun.returncode == 0, rerun.stderr
    assert list(keys(local_store, f"curated/pos/dt={day}/"))


def test_transform_with_a_missing_work_dir_exits_2_naming_the_setting_and_its_variable(
    pipeline: Cli, tmp_path: Path
) -> None:
    """It was 'unexpected error: FileNotFoundError' with mkdtemp's traceback, exit 1."""
    missing = tmp_path / "no-such-work"
    done = pipeline(
        "transform", "--dataset", "pos", "--date", "2026-11-01", env={"ETL_WORK_DIR": str(missing)}
    )
    assert done.returncode == 2, done.stderr
    said = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert not any(line["level"] == "critical" for line in said), done.stderr
    error = next(line["event"] for line in said if line["level"] == "error")
    assert f"work directory {missing}" in error
    assert "work_dir: No such file or directory" in error
    assert "(from env ETL_WORK_DIR)" in error


def test_run_with_a_missing_work_dir_exits_2_before_any_partition_is_tried(
    pipeline: Cli, local_store: ObjectStore, tmp_path: Path, retail: Any
) -> None:
    """Each partition failed alike with WorkDirError and `run` exited 1."""
    for day in ("2026-11-01", "2026-11-02"):
        files = {f"pos_{day}.csv": retail.rows(day, 10).encode()}
        publish_delivery(local_store, "pos", date.fromisoformat(day), files, rows=10)
    missing = tmp_path / "no-such-work"
    done = pipeline("run", "--dataset", "pos", "--no-load", env={"ETL_WORK_DIR": str(missing)})
    assert done.returncode == 2, done.stderr
    said = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    errors = [line["event"] for line in said if line["level"] == "error"]
    assert len(errors) == 1, errors  # said once, not once per partition
    assert f"work directory {missing}" in errors[0]
    assert "(from env ETL_WORK_DIR)" in errors[0]
    assert keys(local_store, "curated/") == []


def test_a_transform_stopped_by_a_store_error_exports_what_it_counted_once(
    pipeline: Cli, local_store: ObjectStore
) -> None:
    """The store refuses the curated output (an object named ``curated`` stands where its
    folder would be): ``transform`` exits 1 as before, and its failed partition reaches the
    StatsD agent once (it was lost: the failing run was the one not seen)."""
    from etl_core.testing.statsd import agent_address, drained, statsd_agent

    local_store.write_bytes("curated", b"in the way")
    with statsd_agent() as agent:
        env = {"ETL_METRICS_EXPORTERS": "statsd", "ETL_STATSD_ADDRESS": agent_address(agent)}
        result = pipeline("transform", "--dataset", "pos", "--date", "2026-11-01", env=env)
        lines = drained(agent)  # the command has exited: all of it was sent

    assert result.returncode == 1, result.stderr
    assert "curated" in result.stderr
    failed = "etl_data_pipeline_partitions_transformed_total:1|c|#dataset:pos,outcome:failed"
    assert lines.count(failed) == 1, lines


def test_a_run_on_a_database_holding_another_stores_rows_warns_once_naming_it(
    pipeline: Cli, migrated_sqlite: str
) -> None:
    """A deployment pointed at another deployment's database is told (architecture section
    5), once, and still runs; its own rows (the load fence it wrote) are no other store's."""
    env = {"DATABASE_URL": migrated_sqlite}
    first = pipeline("run", env=env)
    assert first.returncode == 0, first.stderr
    assert "other object store" not in first.stderr
    with sqlite3.connect(migrated_sqlite.removeprefix("sqlite:///")) as connection:
        connection.execute(
            "INSERT INTO etl_freshness_status (store, dataset, level, message, changed_at) "
            "VALUES ('s3://staging-lake/etl', 'pos', 'ok', '', '2026-11-01 00:00:00')"
        )
    shared = pipeline("run", env=env)
    assert shared.returncode == 0, shared.stderr
    said = [line for line in shared.stderr.splitlines() if "other object store" in line]
    assert len(said) == 1, shared.stderr
    assert "s3://staging-lake/etl" in said[0]
    assert "docs/architecture.md section 5" in said[0]
