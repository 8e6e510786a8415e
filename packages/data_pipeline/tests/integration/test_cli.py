"""`etl-data-pipeline` start-up, configuration and database status, run as an operator would."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

Cli = Callable[..., subprocess.CompletedProcess[str]]


def test_help_lists_the_commands(cli: Cli) -> None:
    result = cli("--help")
    assert result.returncode == 0
    assert "config" in result.stdout
    assert "db" in result.stdout


def test_version_is_printed(cli: Cli) -> None:
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("etl-data-pipeline 0.")


def test_db_status_of_a_migrated_database(cli: Cli, migrated_sqlite: str) -> None:
    result = cli("db", "status", env={"DATABASE_URL": migrated_sqlite})
    assert result.returncode == 0, result.stderr
    assert "fully migrated" in result.stdout


@pytest.mark.postgres
def test_db_status_names_missing_migrations_on_postgres(cli: Cli, postgres_url: str) -> None:
    result = cli("db", "status", "--database-url", postgres_url)
    assert result.returncode == 2
    assert "etl-schema migrate" in result.stderr
    assert "etl_ledger.0001_initial" in result.stderr


def test_db_status_without_a_database_url_exits_2(cli: Cli) -> None:
    result = cli("db", "status")
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr


def test_password_in_the_database_url_never_reaches_the_output(cli: Cli) -> None:
    url = "postgresql://etl:sup3r-s3cret@127.0.0.1:1/etl"
    result = cli("db", "status", env={"DATABASE_URL": url})
    assert result.returncode != 0
    assert "sup3r-s3cret" not in result.stdout + result.stderr


def test_bad_setting_in_the_settings_file_names_file_and_key(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "etl.toml").write_text('log_format = "json"\nstorage_urll = "x"\n')
    result = cli("--config-dir", str(config), "config", "show")
    assert result.returncode == 2
    assert "storage_urll" in result.stderr
    assert "etl.toml:2" in result.stderr


def test_password_in_the_database_url_query_never_reaches_config_show(cli: Cli) -> None:
    """libpq reads ``?password=`` as well as the user-info part: masked as ``***`` too."""
    url = "postgresql://etl@127.0.0.1:1/etl?password=qu3ry-s3cret&sslmode=disable"
    shown = cli("config", "show", env={"DATABASE_URL": url})
    as_json = cli("config", "show", "--json", env={"DATABASE_URL": url})
    status = cli("db", "status", env={"DATABASE_URL": url})

    assert shown.returncode == 0, shown.stderr
    settings = {row["setting"]: row for row in json.loads(as_json.stdout)["settings"]}
    assert settings["database_url"]["value"] == (
        "postgresql://etl@127.0.0.1:1/etl?password=***&sslmode=disable"
    )
    assert status.returncode != 0
    for result in (shown, as_json, status):
        assert "qu3ry-s3cret" not in result.stdout + result.stderr


def test_a_refused_flag_value_names_the_flag_typed_and_exits_2(cli: Cli) -> None:
    """``--log-level LOUD`` is refused from the flag the operator typed, not from
    ``override log_level``, an internal name found on no command line."""
    result = cli("--log-level", "LOUD", "config", "show")

    assert result.returncode == 2
    assert "got 'LOUD' (from flag --log-level)" in result.stderr
    assert "override" not in result.stderr
