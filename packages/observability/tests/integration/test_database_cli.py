"""`etl-observability database`: ledger health signals from SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

Cli = Callable[..., subprocess.CompletedProcess[str]]
Migrate = Callable[[str], None]
SIGNALS = {"runs_running", "quarantine_open", "api_endpoints_failing"}


def test_signals_of_a_fresh_sqlite_database(cli: Cli, tmp_path: Path, migrate: Migrate) -> None:
    url = f"sqlite:///{tmp_path / 'etl.sqlite3'}"
    migrate(url)
    result = cli("database", "--json", env={"DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    signals = json.loads(result.stdout)["signals"]
    assert set(signals) >= SIGNALS
    assert all(count == 0 for count in signals.values())


@pytest.mark.postgres
def test_signals_of_a_postgres_database_with_metrics(
    cli: Cli, tmp_path: Path, postgres_url: str, migrate: Migrate
) -> None:
    migrate(postgres_url)
    metrics = tmp_path / "ledger.prom"
    result = cli("database", "--database-url", postgres_url, "--metrics-file", str(metrics))
    assert result.returncode == 0, result.stderr
    assert 'etl_observability_ledger_entries{signal="quarantine_open"} 0' in metrics.read_text()


def test_unmigrated_database_is_a_configuration_error(cli: Cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    result = cli("database", env={"DATABASE_URL": url})
    assert result.returncode == 2
    assert "etl-schema migrate" in result.stderr


def test_missing_database_url_exits_2_naming_the_variable(cli: Cli) -> None:
    result = cli("database")
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr


def test_inventory_runs_are_recorded_and_database_shows_the_last_success_per_lane(
    cli: Cli, tmp_path: Path, migrate: Migrate
) -> None:
    url = f"sqlite:///{tmp_path / 'etl.sqlite3'}"
    migrate(url)
    metrics = tmp_path / "ledger.prom"

    inventory = cli(
        "--storage", str(tmp_path / "store"), "--create", "inventory", env={"DATABASE_URL": url}
    )
    shown = cli("database", "--metrics-file", str(metrics), env={"ETL_DATABASE_URL": url})

    assert inventory.returncode == 0, inventory.stderr
    assert shown.returncode == 0, shown.stderr
    table = shown.stdout.replace("│", "|")
    assert "last success" in table
    row = next(line for line in table.splitlines() if "| observability" in line)
    assert "| inventory" in row
    assert "never" not in row
    assert "file_processing | never" in " ".join(table.split()).replace("| |", "|")
    text = metrics.read_text()
    assert (
        'etl_observability_last_success_timestamp_seconds{lane="observability",job="inventory",'
        'dataset=""}' in text
    )
    assert 'lane="data_pipeline"' not in text
    assert 'etl_observability_ledger_entries{signal="runs_running"} 0' in text


def test_a_database_that_cannot_record_the_run_stops_it_with_exit_2(
    cli: Cli, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"

    result = cli(
        "--storage", str(tmp_path / "store"), "--create", "inventory", env={"DATABASE_URL": url}
    )

    assert result.returncode == 2
    assert "etl-schema migrate" in result.stderr


def test_without_a_database_inventory_is_not_recorded_and_says_so_only_at_debug(
    cli: Cli, tmp_path: Path
) -> None:
    quiet = cli("--storage", str(tmp_path / "store"), "--create", "inventory")
    told = cli(
        "--storage", str(tmp_path / "store"), "--create", "--log-level", "DEBUG", "inventory"
    )

    assert quiet.returncode == 0, quiet.stderr
    assert "not recorded" not in quiet.stderr
    assert "runs are not recorded: no database_url is configured" in told.stderr
