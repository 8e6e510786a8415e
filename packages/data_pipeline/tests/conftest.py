"""Fixtures for the data_pipeline tests."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from etl_core.testing.fixtures import postgres_server_url, postgres_url
from etl_core.testing.scripts import run_script

# shared fixtures, re-exported for pytest
__all__ = ["postgres_server_url", "postgres_url"]

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """Run ``etl-data-pipeline`` in a clean working directory with JSON logs."""

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return run_script("etl-data-pipeline", *args, cwd=tmp_path, env=env)

    return run


@pytest.fixture
def migrated_sqlite(tmp_path: Path) -> str:
    """The URL of a SQLite database migrated with ``etl-schema migrate``."""
    url = f"sqlite:///{tmp_path / 'etl.sqlite3'}"
    result = run_script("etl-schema", "migrate", cwd=tmp_path, env={"DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    return url
