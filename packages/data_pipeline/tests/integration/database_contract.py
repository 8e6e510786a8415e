"""Runs a contract on the database in a worker process (``contract_worker.py``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from etl_core.testing.scripts import run_script

WORKER = Path(__file__).with_name("contract_worker.py")


def migrated(url: str, cwd: Path) -> str:
    """``url`` once ``etl-schema migrate`` has brought it up to date."""
    result = run_script("etl-schema", "migrate", cwd=cwd, env={"DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    return url


def passed_checks(kind: str, url: str, tmp_path: Path) -> int:
    """How many of contract ``kind``'s checks passed on the database at ``url`` (every one
    must: a failure fails the calling test with the worker's output)."""
    store = tmp_path / "store"
    store.mkdir()
    result = subprocess.run(
        [sys.executable, str(WORKER), kind, url, str(store)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.count("ok ")
