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
    signals = json.loads(result.stdout)
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
