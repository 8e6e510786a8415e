"""Backfills: plan, ledger, retries, overlap refusal, and resume after a killed worker."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from data_pipeline.ledger import job_lease_key, this_process
from etl_core.storage import ObjectStore, acquire_lease, open_store

Cli = Callable[..., subprocess.CompletedProcess[str]]
DAYS = [f"2026-11-{n:02d}" for n in range(1, 7)]


@pytest.fixture
def six_days(tmp_path: Path, retail: Any) -> Path:
    """A local store with six validated POS days."""
    root = tmp_path / "store"
    with open_store(str(root)) as store:
        retail.seed(store, DAYS, rows=3000)
    return root


@pytest.fixture
def pipeline(cli: Cli, config_dir: Path, six_days: Path) -> Cli:
    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return cli("--config-dir", str(config_dir), "--storage", str(six_days), *args, env=env)

    return run


def jobs(root: Path) -> list[dict[str, Any]]:
    return [
        json.loads(p.read_text())
        for p in sorted((root / "_state/data_pipeline/backfills").glob("*.json"))
    ]


def test_dry_run_prints_the_plan_and_writes_nothing(pipeline: Cli, six_days: Path) -> None:
    result = pipeline(
        "backfill", "--dataset", "pos", "--from", "2026-11-03", "--to", "2026-11-30",
        "--lookback", "1", "--dry-run", "--no-load",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "2026-11-02" in result.stdout
    assert "2026-11-06" in result.stdout
    assert "2026-11-01" not in result.stdout
    assert "5 partition(s)" in result.stdout
    assert not (six_days / "curated").exists()
    assert not (six_days / "_state").exists()


def test_backfill_records_every_partition_in_the_store_ledger(
    pipeline: Cli, six_days: Path
) -> None:
    result = pipeline(
        "backfill", "--dataset", "pos", "--from", "2026-11-01", "--to", "2026-11-06",
        "--concurrency", "2", "--no-load",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "6 succeeded, 0 failed" in result.stdout
    (job,) = jobs(six_days)
    assert job["state"] == "succeeded"
    assert [p["state"] for p in job["partitions"]] == ["succeeded"] * 6
    assert all(p["rows"] == 3000 for p in job["partitions"])


def test_a_fatal_partition_error_is_attempted_once_then_redone_with_only_failed(
    pipeline: Cli, six_days: Path, retail: Any
) -> None:
    bad = six_days / "validated/pos/dt=2026-11-02/pos_2026-11-02.csv"
    good = bad.read_text()
    bad.write_text("transaction_id,store_id\nx,S001\n")
    env = {"ETL_MAX_ATTEMPTS": "2"}
    args = (
        "backfill",
        "--dataset",
        "pos",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-03",
        "--no-load",
    )
    result = pipeline(*args, env=env)
    assert result.returncode == 1
    assert "2 succeeded, 1 failed" in result.stdout
    (job,) = jobs(six_days)
    failed = job["partitions"][1]
    assert failed["state"] == "failed"
    assert failed["attempts"] == 1  # a missing column is fatal: another attempt cannot fix it
    assert "lacks column" in failed["error"]
    bad.write_text(good)
    again = pipeline(
        "backfill", "--dataset", "pos", "--resume", job["job_id"], "--only-failed", "--no-load"
    )
    assert again.returncode == 0, again.stderr
    assert "1 succeeded, 0 failed, 2 already done" in again.stdout
    assert jobs(six_days)[0]["state"] == "succeeded"


def test_status_shows_a_jobs_partitions_and_fails_for_a_failed_job(
    pipeline: Cli, six_days: Path
) -> None:
    bad = six_days / "validated/pos/dt=2026-11-02/pos_2026-11-02.csv"
    bad.write_text("transaction_id,store_id\nx,S001\n")
    args = ("backfill", "--dataset", "pos", "--from", "2026-11-01", "--to", "2026-11-02")
    assert pipeline(*args, "--no-load").returncode == 1
    (job,) = jobs(six_days)
    before = jobs(six_days)
    shown = pipeline("backfill", "--dataset", "pos", "--status", job["job_id"])
    assert shown.returncode == 1, shown.stderr
    assert "2026-11-01" in shown.stdout
    assert "lacks column" in shown.stdout
    assert f"backfill job {job['job_id']} (store ledger)" in shown.stdout
    assert "failed; 1 failed, 1 succeeded" in shown.stdout
    assert jobs(six_days) == before  # looked at, not touched
    unknown = pipeline("backfill", "--dataset", "pos", "--status", "nosuchjob")
    assert unknown.returncode != 0
    assert "no backfill job 'nosuchjob' of dataset 'pos'" in unknown.stderr
    mixed = pipeline("backfill", "--dataset", "pos", "--status", job["job_id"], "--from", "x")
    assert mixed.returncode == 2
    assert "--status JOB takes no other backfill option" in mixed.stderr


def test_status_of_a_job_in_the_store_ledger_needs_no_database(
    pipeline: Cli, six_days: Path
) -> None:
    args = ("backfill", "--dataset", "pos", "--from", "2026-11-01", "--to", "2026-11-02")
    assert pipeline(*args, "--no-load").returncode == 0
    (job,) = jobs(six_days)
    down = "postgresql://etl@127.0.0.1:1/nowhere"  # database_url set, its server down

    shown = pipeline("backfill", "--dataset", "pos", "--status", job["job_id"],
                     "--database-url", down)  # fmt: skip

    assert shown.returncode == 0, shown.stderr
    assert f"backfill job {job['job_id']} (store ledger)" in shown.stdout
    assert "succeeded; 2 succeeded" in shown.stdout


def test_overlapping_backfill_is_refused_while_one_runs(pipeline: Cli, six_days: Path) -> None:
    running = {
        "job_id": "other", "dataset": "pos", "start": "2026-11-03", "end": "2026-11-09",
        "state": "running", "parameters": {"owner": this_process()},
        "max_attempts": 3, "partitions": [],
    }  # fmt: skip
    ledger = six_days / "_state/data_pipeline/backfills"
    ledger.mkdir(parents=True)
    (ledger / "other.json").write_text(json.dumps(running))
    args = ("backfill", "--dataset", "pos", "--to", "2026-11-04", "--no-load")
    with open_store(str(six_days)) as store, acquire_lease(store, job_lease_key("other"), ttl=600):
        result = pipeline(*args[:3], "--from", "2026-11-01", *args[3:])
    assert result.returncode == 2
    assert "backfill job other" in result.stderr
    assert "is running" in result.stderr
    apart = pipeline(
        "backfill", "--dataset", "pos", "--from", "2026-11-01", "--to", "2026-11-02", "--no-load"
    )
    assert apart.returncode == 0, apart.stderr


def test_killed_backfill_resumes_and_loads_every_partition_once(
    config_dir: Path, six_days: Path, migrated_sqlite: str, tmp_path: Path
) -> None:
    script = Path(sys.executable).parent / "etl-data-pipeline"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    environ.update(DATABASE_URL=migrated_sqlite, ETL_LOG_FORMAT="json")
    base = [
        str(script),
        "--config-dir",
        str(config_dir),
        "--storage",
        str(six_days),
        "backfill",
        "--dataset",
        "pos",
    ]
    worker = subprocess.Popen(
        [*base, "--from", "2026-11-01", "--to", "2026-11-06"],
        cwd=tmp_path, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    database = migrated_sqlite.removeprefix("sqlite:///")
    deadline = time.monotonic() + 60
    job_id = None
    try:
        while time.monotonic() < deadline:
            with sqlite3.connect(database) as connection:
                rows = connection.execute(
                    "SELECT job_id, count(*) FROM etl_backfill_partition "
                    "WHERE state = 'succeeded' GROUP BY job_id"
                ).fetchall()
            if rows and rows[0][1] >= 1:
                job_id = str(rows[0][0])
                break
            assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
            time.sleep(0.05)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.communicate(timeout=30)
    assert job_id is not None, "the backfill never finished a partition"
    with sqlite3.connect(database) as connection:
        states = dict(
            connection.execute(
                "SELECT state, count(*) FROM etl_backfill_partition GROUP BY state"
            ).fetchall()
        )
    assert states.get("succeeded", 0) < 6, "killed too late to test a resume"
    resumed = subprocess.run(
        [*base, "--resume", job_id], cwd=tmp_path, env=environ, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    with sqlite3.connect(database) as connection:
        loaded = connection.execute(
            "SELECT dt, count(*), count(DISTINCT transaction_id) FROM retail_sales_transaction "
            "GROUP BY dt ORDER BY dt"
        ).fetchall()
        job_state = connection.execute(
            "SELECT state FROM etl_backfill_job WHERE id = ?", [int(job_id)]
        ).fetchone()
    assert loaded == [(day, 3000, 3000) for day in DAYS]
    assert job_state == ("succeeded",)
    with open_store(str(six_days)) as store:
        for day in DAYS:
            parts = read_rows(store, day)
            assert parts == 3000


def read_rows(store: ObjectStore, day: str) -> int:
    manifest = json.loads(store.read_bytes(f"curated/pos/dt={day}/_manifest.json"))
    return int(manifest["rows"])
