"""Fixtures for the observability tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from etl_core.testing.fixtures import s3_bucket, s3_endpoint

__all__ = ["s3_bucket", "s3_endpoint"]  # shared fixtures, re-exported for pytest

CLI = str(Path(sys.executable).parent / "etl-observability")


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``etl-observability`` in a clean working directory with JSON logs."""

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
        environ.update({"ETL_LOG_FORMAT": "json", **(env or {})})
        return subprocess.run(
            [CLI, *args], cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=120
        )

    return run
