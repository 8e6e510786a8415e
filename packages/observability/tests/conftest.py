"""Fixtures for the observability tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from etl_core.testing.fixtures import postgres_server_url, postgres_url, s3_bucket, s3_endpoint
from etl_core.testing.scripts import run_script

# shared fixtures, re-exported for pytest
__all__ = ["postgres_server_url", "postgres_url", "s3_bucket", "s3_endpoint"]


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``etl-observability`` in a clean working directory with JSON logs."""

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return run_script("etl-observability", *args, cwd=tmp_path, env=env)

    return run


SCHEMA_CLI = str(Path(sys.executable).parent / "etl-schema")


@pytest.fixture
def migrate() -> Callable[[str], None]:
    """Bring a database to the current schema with the operator's command."""

    def run(database_url: str) -> None:
        subprocess.run(
            [SCHEMA_CLI, "migrate"],
            env={**os.environ, "ETL_DATABASE_URL": "", "DATABASE_URL": database_url},
            check=True,
            capture_output=True,
            timeout=300,
        )

    return run
