"""Backfills: plan, ledger, retries, overlap refusal, and resume after a killed worker."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from data_pipeline.db import BackfillPartitionRecord
from data_pipeline.lease import lease_key
from data_pipeline.ledger import Runner, StoreLedger, job_lease_key, this_process
from etl_core.runtime import process_started
from etl_core.storage import (
    Holder,
    LeaseState,
    ObjectStore,
    acquire_lease,
    open_store,
    this_holder,
)
from etl_core.testing.fixtures import REFUSED_LOGIN_PASSWORD

Cli = Callable[..., subprocess.CompletedProcess[str]]
DAYS = [f"2026-11-{n:02d}" for n in range(1, 7)]


@pytest.fixture
def six_days(tmp_path: Path, retail: Any) -> Path:
    """A local store with six validated POS days."""
    return retail.seeded_at(tmp_path / "store", DAYS, rows=3000)


@pytest.fixture
def pipeline(cli_on: Callable[[Path], Cli], six_days: Path) -> Cli:
    """The CLI on the POS contract and the six days' store."""
    return cli_on(six_days)


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


@pytest.mark.parametrize("variable", ["ETL_DATABASE_URL", "DATABASE_URL"])
def test_a_no_load_backfill_keeps_its_ledger_in_the_store_whichever_variable_names_the_db(
    pipeline: Cli, six_days: Path, migrated_sqlite: str, variable: str
) -> None:
    """A local ``--no-load`` backfill records its job in the store, also when a database is
    configured: the conventional ``DATABASE_URL`` means what ``ETL_DATABASE_URL`` does."""
    env = {"ETL_DATABASE_URL": "", "DATABASE_URL": "", variable: migrated_sqlite}
    args = ("backfill", "--dataset", "pos", "--from", "2026-11-01", "--to", "2026-11-02")
    result = pipeline(*args, "--no-load", env=env)
    assert result.returncode == 0, result.stderr
    (job,) = jobs(six_days)
    assert job["state"] == "succeeded"
    shown = pipeline("backfill", "--dataset", "pos", "--status", job["job_id"], env=env)
    assert f"backfill job {job['job_id']} (store ledger)" in shown.stdout, shown.stderr


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


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("wrong", "named"),
    [("database", 'database "etl_no_such_database"'), ("role", 'role "etl_no_such_role"')],
)
def test_a_database_url_the_server_refuses_exits_2_naming_the_variable(
    pipeline: Cli, six_days: Path, refused_login_urls: dict[str, str], wrong: str, named: str
) -> None:
    env = {"ETL_DATABASE_URL": refused_login_urls[wrong], "DATABASE_URL": ""}
    args = ("backfill", "--dataset", "pos", "--from", "2026-11-01", "--to", "2026-11-02")
    result = pipeline(*args, env=env)
    assert result.returncode == 2, result.stderr  # a settings mistake, not a failed run
    said = " ".join(json.loads(line)["event"] for line in result.stderr.splitlines())
    assert "(from env ETL_DATABASE_URL)" in said
    assert named in said
    assert "correct the" in said
    assert REFUSED_LOGIN_PASSWORD not in result.stdout + result.stderr
    assert str(urlsplit(refused_login_urls[wrong]).password) not in result.stdout + result.stderr
    assert not (six_days / "curated").exists()


HOLDS_A_JOB = """
import sys, time
from datetime import date
from data_pipeline.ledger import StoreLedger
from etl_core.storage import open_store
with open_store(sys.argv[1]) as store:
    days = [date(2026, 11, 1), date(2026, 11, 2)]
    job = StoreLedger(store).create("pos", days[0], days[-1], days, parameters={}, max_attempts=3)
    print(job.job_id, flush=True)
    time.sleep(120)
"""
D1, D2 = date(2026, 11, 1), date(2026, 11, 2)


def test_status_of_a_killed_local_backfill_says_stalled_and_how_to_resume(
    pipeline: Cli, six_days: Path
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDS_A_JOB, str(six_days)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        job_id = holder.stdout.readline().strip()
        alive = pipeline("backfill", "--dataset", "pos", "--status", job_id)
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        killed = pipeline("backfill", "--dataset", "pos", "--status", job_id)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=30)

    assert alive.returncode == 0, alive.stderr
    assert ": running; 2 pending" in alive.stdout
    assert f"run by {socket.gethostname()}:{holder.pid} (executor local)" in alive.stdout
    assert killed.returncode == 1, killed.stderr
    assert ": stalled; 2 pending" in killed.stdout
    assert "that process is gone" in killed.stdout
    command = f"etl-data-pipeline backfill --dataset pos --resume {job_id}"
    assert f"resume it with: {command}\n" in killed.stdout
    resumed = pipeline("backfill", "--dataset", "pos", "--resume", job_id, "--no-load")
    assert resumed.returncode == 0, resumed.stderr
    done = pipeline("backfill", "--dataset", "pos", "--status", job_id)
    assert done.returncode == 0
    assert ": succeeded; 2 succeeded" in done.stdout


def test_status_of_a_local_job_whose_pid_was_reused_says_stalled(
    pipeline: Cli, six_days: Path
) -> None:
    me = this_holder()
    if not me.namespace:
        pytest.skip("no /proc boot id or pid namespace here: pids are not judged")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = process_started(other.pid)
        shown = {}
        for name, start in (("same", started), ("reused", started - 1)):
            runner = Runner("local", Holder(name, me.host, other.pid, me.namespace, start), 1.0)
            with open_store(str(six_days)) as store:
                job = StoreLedger(store).create(
                    "pos", D1, D2, [D1, D2], parameters={}, max_attempts=3, runner=runner
                )
                now = time.time()
                lease = LeaseState(runner.holder, 1, f"backfill {job.job_id}", now, now + 600)
                store.write_bytes(job_lease_key(job.job_id), lease.to_json())  # as it held it
            shown[name] = pipeline("backfill", "--dataset", "pos", "--status", job.job_id)
    finally:
        other.kill()
        other.wait(timeout=30)

    assert shown["same"].returncode == 0, shown["same"].stdout
    assert ": running;" in shown["same"].stdout
    assert shown["reused"].returncode == 1, shown["reused"].stdout
    assert ": stalled;" in shown["reused"].stdout
    assert "that process is gone" in shown["reused"].stdout


def test_status_of_a_job_handed_to_the_workers_is_queued_running_or_stalled(
    pipeline: Cli, six_days: Path
) -> None:
    status = ("backfill", "--dataset", "pos", "--status")
    with open_store(str(six_days)) as store:
        ledger = StoreLedger(store)
        job = ledger.create(
            "pos", D1, D2, [D1, D2], parameters={}, max_attempts=3, runner=Runner.this("celery")
        )
        ledger.hand_over(job.job_id)  # what --no-wait does once the units are enqueued
    queued = pipeline(*status, job.job_id)
    with open_store(str(six_days)) as store:
        ledger = StoreLedger(store)
        ledger.update(job.job_id, BackfillPartitionRecord(D1, "running", 1, "", None, "w"))
        with acquire_lease(store, lease_key("pos", D1), ttl=600, heartbeat_every=0):
            running = pipeline(*status, job.job_id)
        gone = Holder("w", "another-host", 4242)  # a worker on a host that is lost
        expired = LeaseState(gone, 9, "backfill", time.time() - 900, time.time() - 300)
        store.write_bytes(lease_key("pos", D1), expired.to_json())
    stalled = pipeline(*status, job.job_id)

    assert queued.returncode == 0, queued.stderr
    assert ": queued; 2 pending" in queued.stdout
    assert "handed to the workers at" in queued.stdout
    assert "resume it with" not in queued.stdout
    assert running.returncode == 0, running.stderr
    assert ": running; 1 pending, 1 running" in running.stdout
    assert f"being written by {socket.gethostname()}:{os.getpid()}" in running.stdout
    assert stalled.returncode == 1, stalled.stderr
    assert ": stalled; 1 pending, 1 running" in stalled.stdout
    assert "2026-11-01) has a live lease" in stalled.stdout
    assert f"--resume {job.job_id} --executor celery" in stalled.stdout


def test_status_of_a_job_recorded_without_a_runner_reads_as_unknown_owner(
    pipeline: Cli, six_days: Path
) -> None:
    old = {
        "job_id": "old", "dataset": "pos", "start": "2026-11-01", "end": "2026-11-02",
        "state": "running", "parameters": {"owner": "somehost:1"}, "max_attempts": 3,
        "partitions": [
            {"dt": "2026-11-01", "state": "succeeded", "attempts": 1, "error": "",
             "rows": 3, "claimed_by": ""},
            {"dt": "2026-11-02", "state": "pending", "attempts": 0, "error": "",
             "rows": None, "claimed_by": ""},
        ],
    }  # fmt: skip
    ledger = six_days / "_state/data_pipeline/backfills"
    ledger.mkdir(parents=True)
    (ledger / "old.json").write_text(json.dumps(old))

    shown = pipeline("backfill", "--dataset", "pos", "--status", "old")

    assert shown.returncode == 0, shown.stderr
    assert ": unknown; 1 pending, 1 succeeded" in shown.stdout
    assert "who runs it was not recorded" in shown.stdout
    assert "resume it with: etl-data-pipeline backfill --dataset pos --resume old" in shown.stdout


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


@pytest.mark.slow
def test_sigterm_while_a_partition_waits_for_a_live_writer_ends_the_backfill_at_once(
    config_dir: Path, six_days: Path, tmp_path: Path
) -> None:
    # issue 15: the unit waited for the busy partition up to lease_seconds (1 h) whatever
    # the signal; it now stops waiting and the command ends as an interrupted run does
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    environ.pop("DATABASE_URL", None)
    environ["ETL_LOG_FORMAT"] = "json"
    script = Path(sys.executable).parent / "etl-data-pipeline"
    command = [str(script), "--config-dir", str(config_dir), "--storage", str(six_days)]
    command += ["backfill", "--dataset", "pos", "--from", DAYS[0], "--to", DAYS[0], "--no-load"]
    with (
        open_store(str(six_days)) as store,
        acquire_lease(store, lease_key("pos", date(2026, 11, 1)), ttl=60, purpose="a run"),
    ):
        process = subprocess.Popen(
            command, cwd=tmp_path, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and process.poll() is None:
                time.sleep(0.1)
            assert process.poll() is None, process.communicate()[1][-3000:]  # waiting
            process.send_signal(signal.SIGTERM)
            interrupted = time.monotonic()
            _, stderr = process.communicate(timeout=30)
            stopped_in = time.monotonic() - interrupted
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
    assert process.returncode == 143, stderr[-3000:]
    assert stopped_in < 5, stopped_in
    assert "Traceback" not in stderr
