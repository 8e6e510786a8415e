"""Where things are in the monorepo, for the repository-level checks."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE_DIRS = {
    "etl-core": REPO / "packages/etl_core",
    "etl-database-schema": REPO / "external/etl-database-schema",
    "etl-file-processing": REPO / "packages/file_processing",
    "etl-data-pipeline": REPO / "packages/data_pipeline",
    "etl-observability": REPO / "packages/observability",
}
RUNTIMES = ("file_processing", "data_pipeline", "observability")


def venv_tool(name: str) -> str:
    """Path of a console script installed beside the running interpreter."""
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail(f"{name} is not installed in the dev environment; run `make install`")
    return found
