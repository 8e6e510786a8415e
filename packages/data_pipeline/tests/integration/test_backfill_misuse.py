"""Backfills, transforms and loads asked for wrongly, as an operator does: a clear usage
error (exit 2) naming the option, and nothing written."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from data_pipeline.backfill import plan_backfill
from data_pipeline.backfill_status import resume_command
from data_pipeline.db import BackfillJobRecord
from etl_core.contracts import load_contracts
from etl_core.storage import open_store

from .conftest import listings

Cli = Callable[..., subprocess.CompletedProcess[str]]
DAYS = ["2026-11-01", "2026-11-02"]


@pytest.fixture
def two_days(tmp_path: Path, retail: Any) -> Path:
    """A local store with two validated POS days."""
    return retail.seeded_at(tmp_path / "store", DAYS, rows=50)


@pytest.fixture
def pipeline(cli_on: Callable[[Path], Cli], two_days: Path) -> Cli:
    """The CLI on the POS contract and the two days' store."""
    return cli_on(two_days)


def backfill(pipeline: Cli, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return pipeline("backfill", "--dataset", "pos", *args, **kwargs)


def test_a_lookback_reaching_before_year_one_is_a_usage_error_naming_lookback(
    pipeline: Cli, two_days: Path
) -> None:
    result = backfill(
        pipeline, "--from", "0001-01-02", "--to", "0001-01-02", "--lookback", "3", "--no-load"
    )
    assert result.returncode == 2, result.stderr
    assert "--lookback: 3 days reaches before 0001-01-01" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (two_days / "_state").exists()


def test_a_lookback_counts_towards_the_longest_range(pipeline: Cli, two_days: Path) -> None:
    result = backfill(
        pipeline, "--from", "2026-11-01", "--to", "2026-11-02", "--lookback", "36500", "--no-load"
    )
    assert result.returncode == 2, result.stderr
    assert "--from/--to/--lookback: expected at most 3660 days" in result.stderr
    assert "got 36501" in result.stderr
    assert not (two_days / "_state").exists()


def test_a_resume_given_dates_is_a_usage_error_naming_them(pipeline: Cli, two_days: Path) -> None:
    started = backfill(pipeline, "--from", "2026-11-01", "--to", "2026-11-01", "--no-load")
    assert started.returncode == 0, started.stderr
    job = next((two_days / "_state/data_pipeline/backfills").glob("*.json")).stem
    for extra in (("--from", "2026-11-02"), ("--to", "2026-11-02"), ("--lookback", "1")):
        result = backfill(pipeline, "--resume", job, *extra, "--no-load")
        assert result.returncode == 2, (extra, result.stderr)
        assert "--from/--to/--lookback: expected none of them with --resume" in result.stderr
    assert not (two_days / "curated/pos/dt=2026-11-02").exists()


def test_a_loading_job_is_not_resumed_without_its_loads(
    pipeline: Cli, two_days: Path, migrated_sqlite: str
) -> None:
    env = {"DATABASE_URL": migrated_sqlite}
    started = backfill(pipeline, "--from", "2026-11-01", "--to", "2026-11-02", env=env)
    assert started.returncode == 0, started.stderr
    resumed = backfill(pipeline, "--resume", "1", "--no-load", env=env)
    assert resumed.returncode == 2, resumed.stderr
    assert "backfill job 1 is in the database ledger, not the store ledger" in resumed.stderr
    assert "--no-load: expected without --no-load" in resumed.stderr
    again = backfill(pipeline, "--resume", "1", env=env)
    assert again.returncode == 0, again.stderr


def test_a_no_load_job_an_earlier_release_kept_in_the_database_resumes_with_no_load(
    pipeline: Cli, two_days: Path, migrated_sqlite: str
) -> None:
    """The release before sent a local ``--no-load`` backfill to the database ledger when
    ``DATABASE_URL`` was set: resumed ``--no-load`` as it was started, it runs there (sent
    to the store's ledger, it was refused both with and without ``--no-load``)."""
    import sqlite3

    env = {"DATABASE_URL": migrated_sqlite}
    started = backfill(pipeline, "--from", "2026-11-01", "--to", "2026-11-02", env=env)
    assert started.returncode == 0, started.stderr
    with sqlite3.connect(migrated_sqlite.removeprefix("sqlite:///")) as conn:
        changed = conn.execute(
            "UPDATE etl_backfill_job SET parameters = "
            "json_set(parameters, '$.no_load', json('true')) WHERE id = 1"
        ).rowcount
    assert changed == 1

    resumed = backfill(pipeline, "--resume", "1", "--no-load", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert "backfill job 1 (database ledger)" in resumed.stderr + resumed.stdout
    refused = backfill(pipeline, "--resume", "1", env=env)  # as it was not started
    assert refused.returncode == 2, refused.stderr
    assert "--no-load: expected the job's start: with --no-load" in refused.stderr


def test_a_load_of_a_dataset_without_a_load_section_is_a_usage_error(
    pipeline: Cli, config_dir: Path, retail: Any
) -> None:
    retail.write_contract(config_dir, "pos", retail.contract(load=False))
    built = pipeline("transform", "--dataset", "pos", "--date", "2026-11-01")
    assert built.returncode == 0, built.stderr
    result = pipeline("load", "--dataset", "pos", "--date", "2026-11-01")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "dataset 'pos' has nothing to load" in result.stderr
    assert "load: expected a [load] section" in result.stderr


def test_the_resume_command_of_a_job_started_with_no_load_keeps_no_load() -> None:
    job = BackfillJobRecord(
        job_id="j1", dataset="pos", start=date(2026, 11, 1), end=date(2026, 11, 2),
        state="running", parameters={"no_load": True}, max_attempts=3, partitions=(),
    )  # fmt: skip
    command = resume_command(job, None)
    assert command == "etl-data-pipeline backfill --dataset pos --resume j1 --no-load"
    loading = replace(job, parameters={"no_load": False})
    assert resume_command(loading, None).endswith("--resume j1")


def test_a_plan_over_ten_years_lists_the_store_a_few_times_not_once_a_day(
    tmp_path: Path, config_dir: Path, retail: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    contract = load_contracts(config_dir).get("pos")
    with open_store(str(tmp_path / "lake")) as store:
        retail.seed(store, ["2017-03-04", "2026-11-02"], rows=5)
        listed = listings(store, monkeypatch)
        plan = plan_backfill(store, contract, date(2016, 11, 20), date(2026, 11, 20))
    assert [p.dt for p in plan] == [date(2017, 3, 4), date(2026, 11, 2)]
    assert len(listed) <= 5, f"{len(listed)} listings, the first ones {listed[:3]}"


def test_a_short_plan_finds_the_same_partitions(
    tmp_path: Path, config_dir: Path, retail: Any
) -> None:
    contract = load_contracts(config_dir).get("pos")
    with open_store(str(tmp_path / "lake")) as store:
        retail.seed(store, ["2026-11-01", "2026-11-03"], rows=5)
        plan = plan_backfill(store, contract, date(2026, 11, 2), date(2026, 11, 5), lookback=1)
    assert [(p.dt, p.objects) for p in plan] == [(date(2026, 11, 1), 1), (date(2026, 11, 3), 1)]


def test_a_range_without_validated_input_says_there_is_nothing_to_do(pipeline: Cli) -> None:
    result = backfill(pipeline, "--from", "2025-11-01", "--to", "2025-11-02", "--no-load")
    assert result.returncode == 0, result.stderr
    said = "no partition of pos has validated input from 2025-11-01 to 2025-11-02"
    assert said in result.stderr
    assert "0 succeeded, 0 failed" in result.stdout


def test_a_resume_of_another_datasets_job_names_its_dataset(
    pipeline: Cli, two_days: Path, config_dir: Path, retail: Any
) -> None:
    retail.write_contract(config_dir, "other", retail.contract().replace('"pos"', '"other"'))
    started = backfill(pipeline, "--from", "2026-11-01", "--to", "2026-11-01", "--no-load")
    assert started.returncode == 0, started.stderr
    job = next((two_days / "_state/data_pipeline/backfills").glob("*.json")).stem
    resumed = pipeline("backfill", "--dataset", "other", "--resume", job, "--no-load")
    shown = pipeline("backfill", "--dataset", "other", "--status", job)
    for result in (resumed, shown):
        assert result.returncode == 2, result.stderr
        assert f"job {job} is of dataset 'pos' in the store ledger" in result.stderr


@pytest.mark.parametrize("job", ["../../x", "a/b", ".hidden"])
def test_a_job_id_that_is_a_path_is_a_usage_error(pipeline: Cli, job: str) -> None:
    resumed = backfill(pipeline, "--resume", job, "--no-load")
    shown = backfill(pipeline, "--status", job)
    for result in (resumed, shown):
        assert result.returncode == 2, result.stderr
        assert f"{job!r} is not a backfill job id" in result.stderr
        assert "invalid key" not in result.stderr


@pytest.mark.parametrize(
    ("option", "value"), [("--from", "20261101"), ("--to", "2026-W44-1"), ("--from", "2026-305")]
)
def test_a_backfill_date_not_spelled_yyyy_mm_dd_is_a_usage_error_naming_the_option(
    pipeline: Cli, two_days: Path, option: str, value: str
) -> None:
    dates = {"--from": "2026-11-01", "--to": "2026-11-02", option: value}
    result = backfill(pipeline, "--from", dates["--from"], "--to", dates["--to"], "--no-load")
    assert result.returncode == 2, result.stderr
    assert f"{option} {value!r} is not a date; expected YYYY-MM-DD" in result.stderr
    assert not (two_days / "_state").exists()
    assert not (two_days / "curated").exists()


def test_a_transform_date_not_spelled_yyyy_mm_dd_is_a_usage_error(
    pipeline: Cli, two_days: Path
) -> None:
    result = pipeline("transform", "--dataset", "pos", "--date", "20261101")
    assert result.returncode == 2, result.stderr
    assert "--date '20261101' is not a date; expected YYYY-MM-DD" in result.stderr
    assert not (two_days / "curated").exists()


def test_a_resume_without_no_load_of_a_store_ledger_job_names_its_ledger_and_no_load(
    pipeline: Cli, two_days: Path, migrated_sqlite: str
) -> None:
    url = ("--database-url", migrated_sqlite)
    started = backfill(pipeline, "--from", "2026-11-01", "--to", "2026-11-01", "--no-load", *url)
    assert started.returncode == 0, started.stderr
    job = next((two_days / "_state/data_pipeline/backfills").glob("*.json")).stem
    resumed = backfill(pipeline, "--resume", job, *url)
    assert resumed.returncode == 2, resumed.stdout + resumed.stderr
    assert f"backfill job {job} is in the store ledger" in resumed.stderr
    assert "--no-load: expected with --no-load" in resumed.stderr
    assert "unknown job" not in resumed.stderr
    again = backfill(pipeline, "--resume", job, "--no-load", *url)
    assert again.returncode == 0, again.stderr


def test_a_resume_with_no_load_of_a_database_ledger_job_names_its_ledger(
    pipeline: Cli, migrated_sqlite: str
) -> None:
    url = ("--database-url", migrated_sqlite)
    started = backfill(pipeline, "--from", "2026-11-01", "--to", "2026-11-01", *url)
    assert started.returncode == 0, started.stderr
    resumed = backfill(pipeline, "--resume", "1", "--no-load", *url)
    assert resumed.returncode == 2, resumed.stdout + resumed.stderr
    assert "backfill job 1 is in the database ledger, not the store ledger" in resumed.stderr
    assert "--no-load: expected without --no-load" in resumed.stderr


def test_a_backfill_and_a_run_of_a_dataset_without_a_load_section_say_nothing_is_loaded(
    pipeline: Cli, config_dir: Path, retail: Any
) -> None:
    retail.write_contract(config_dir, "pos", retail.contract(load=False))
    said = "dataset 'pos' has no [load] section: its partitions are transformed, not loaded"
    backfilled = backfill(pipeline, "--from", "2026-11-01", "--to", "2026-11-01")
    ran = pipeline("run", "--dataset", "pos")
    for result in (backfilled, ran):
        assert result.returncode == 0, result.stderr
        assert said in result.stderr
    quiet = backfill(pipeline, "--from", "2026-11-02", "--to", "2026-11-02", "--no-load")
    assert said not in quiet.stderr


def test_a_job_of_a_dataset_without_load_resumes_once_its_contract_gains_one(
    pipeline: Cli, config_dir: Path, two_days: Path, retail: Any, migrated_sqlite: str
) -> None:
    url = ("--database-url", migrated_sqlite)
    retail.write_contract(config_dir, "pos", retail.contract(load=False))
    started = backfill(pipeline, "--from", "2026-11-01", "--to", "2026-11-01", *url)
    assert started.returncode == 0, started.stderr
    job = next((two_days / "_state/data_pipeline/backfills").glob("*.json")).stem
    retail.write_contract(config_dir, "pos", retail.contract())  # [load] added meanwhile
    unflagged = backfill(pipeline, "--resume", job, *url)
    assert unflagged.returncode == 2, unflagged.stderr
    assert "--no-load: expected with --no-load" in unflagged.stderr
    flagged = backfill(pipeline, "--resume", job, "--no-load", *url)
    assert flagged.returncode == 0, flagged.stderr  # the job it was: transform only
