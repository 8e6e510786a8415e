"""Misconfiguration never succeeds silently (issue 11, items 9-14): each lane's job exits 2
with exactly one line on stderr naming the setting, and no traceback — before any work."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from retail_workspace import Workspace, retail_workspace

JOBS = {
    "file_processing": ("etl-file-processing", "scan"),
    "data_pipeline": ("etl-data-pipeline", "run", "--no-load"),
    "observability": ("etl-observability", "inventory"),
}
CONTRACT = "config/datasets/pos_transactions.toml"
NO_CREDENTIALS = {
    "ETL_STORAGE_URL": "s3://some-bucket/lake",
    "AWS_ACCESS_KEY_ID": "",
    "AWS_SECRET_ACCESS_KEY": "",
    "AWS_PROFILE": "nobody-here",
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
}


def edit_contract(root: Path, old: str, new: str) -> None:
    path = root / CONTRACT
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def store_is_a_file(root: Path) -> dict[str, str]:
    (root / "a-file").write_text("not a store")
    return {"ETL_STORAGE_URL": str(root / "a-file")}


def no_contracts(root: Path) -> dict[str, str]:
    for path in [*(root / "config/datasets").glob("*.toml"), *(root / "config/sources").glob("*")]:
        path.unlink()  # the API sources too: they feed a dataset
    return {}


def misspelt_load_section(root: Path) -> dict[str, str]:
    edit_contract(root, "[load]", "[laod]")
    return {}


def broken_transform_sql(root: Path) -> dict[str, str]:
    edit_contract(root, "FROM input", "FROM input WHERE no_such_column > 0")
    return {}


def database_scheme_in_etl_toml(root: Path) -> dict[str, str]:
    (root / "config" / "etl.toml").write_text('database_url = "mysql://etl@db/etl"\n')
    return {}


def environment(**values: str) -> Callable[[Path], dict[str, str]]:
    return lambda root: values


def config_at(name: str) -> Callable[[Path], dict[str, str]]:
    return lambda root: {"ETL_CONFIG_DIR": str(root / name)}


def store_at(name: str) -> Callable[[Path], dict[str, str]]:
    return lambda root: {"ETL_STORAGE_URL": str(root / name)}


Prepare = Callable[[Path], dict[str, str]]
EVERY, READERS = tuple(JOBS), ("file_processing", "data_pipeline")
MYSQL = "mysql://etl@db/etl"

# name: (the lanes it is tried on, what it does to the workspace -> environment, said);
# observability's inventory has its own tests of the store URL (test_inventory_cli.py).
CASES: dict[str, tuple[tuple[str, ...], Prepare, str]] = {
    "9-store-missing": (READERS, store_at("typo"), "does not exist"),
    "9-store-is-a-file": (READERS, store_is_a_file, "is not a directory"),
    "10-config-dir-missing": (READERS, config_at("no-config"), "config_dir"),
    "10-config-dir-missing-names-its-variable": (
        READERS, config_at("no-config"), "(from env ETL_CONFIG_DIR: "
    ),
    "10-no-contracts": (READERS, no_contracts, "no dataset contracts"),
    "11-misspelt-section": (READERS, misspelt_load_section, "laod"),
    "12-log-level-variable": (EVERY, environment(ETL_LOG_LEVEL="verbose"), "log_level"),
    "13-broken-transform-sql": (("data_pipeline",), broken_transform_sql, "no_such_column"),
    "14-unknown-store-scheme": (
        READERS, environment(ETL_STORAGE_URL="ftp://host/lake"), "unsupported scheme 'ftp'"
    ),
    "14-host-in-file-url": (
        READERS, environment(ETL_STORAGE_URL="file://host/lake"), "names host 'host'"
    ),
    "14-dot-dot-in-store-key": (
        READERS, environment(ETL_STORAGE_URL="s3://some-bucket/../lake"), "'..'"
    ),
    "14-missing-s3-credentials": (READERS, environment(**NO_CREDENTIALS), "credentials"),
    "14-database-scheme-in-etl-database-url": (
        EVERY, environment(ETL_DATABASE_URL=MYSQL), "scheme 'mysql' is not supported"
    ),
    "14-database-scheme-in-database-url": (
        EVERY, environment(DATABASE_URL=MYSQL), "(from env DATABASE_URL)"
    ),
    "14-database-scheme-in-etl-toml": (
        EVERY, database_scheme_in_etl_toml, "etl.toml:1: key database_url"
    ),
}  # fmt: skip


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return retail_workspace(tmp_path, migrate=False)


@pytest.mark.parametrize(
    ("lane", "case"),
    [(lane, case) for case, (lanes, _, _) in CASES.items() for lane in lanes],
)
def test_a_misconfiguration_is_one_line_exit_2_before_any_work(
    workspace: Workspace, lane: str, case: str
) -> None:
    _, prepare, said = CASES[case]
    env = prepare(workspace.root)

    done = workspace.run(*JOBS[lane], **env)

    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    record = json.loads(lines[0])
    assert said in record["event"]
    assert (record["lane"], record["level"]) == (lane, "error")
    assert "Traceback" not in done.stderr
    assert not (workspace.store / "validated").exists()
    assert not (workspace.store / "curated").exists()


@pytest.mark.parametrize("lane", READERS)
def test_an_invalid_log_level_flag_is_one_line_exit_2(workspace: Workspace, lane: str) -> None:
    tool, *job = JOBS[lane]
    done = workspace.run(tool, "--log-level", "verbose", *job)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert "log_level" in json.loads(line)["event"]


@pytest.mark.parametrize("lane", EVERY)
def test_a_misconfiguration_is_said_as_plain_text_when_console_logs_are_asked_for(
    workspace: Workspace, lane: str
) -> None:
    done = workspace.run(*JOBS[lane], ETL_LOG_FORMAT="console", ETL_PROGRESS_INTERVAL="-1")

    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("configuration error: invalid settings for"), done.stderr
    assert "progress_interval: must be 0 (none) or more seconds, got -1" in done.stderr
    assert "(from env ETL_PROGRESS_INTERVAL)" in done.stderr


def test_a_usage_error_is_a_console_line_when_console_logs_are_asked_for(
    workspace: Workspace,
) -> None:
    done = workspace.run("etl-observability", "no-such-command", ETL_LOG_FORMAT="console")

    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert not line.startswith("{"), line
    assert "usage: No such command 'no-such-command'" in line


def test_a_log_format_flag_overrules_the_variable_for_a_misconfiguration(
    workspace: Workspace,
) -> None:
    done = workspace.run(
        "etl-observability",
        "--log-format",
        "auto",
        "inventory",
        ETL_LOG_FORMAT="console",
        ETL_PROGRESS_INTERVAL="-1",
    )

    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert "progress_interval" in json.loads(line)["event"]
