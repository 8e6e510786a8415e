"""`make run`'s job, run from an empty working directory on the embedded defaults."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from repo_layout import REPO


def run_example(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_") and k != "DATABASE_URL"}
    return subprocess.run(
        [sys.executable, str(REPO / "examples/retail/run.py")],
        cwd=cwd,
        env={**env, "ETL_LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_example_delivers_migrates_and_reports(tmp_path: Path) -> None:
    result = run_example(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "delivered 3 file(s)" in result.stdout
    assert "landing" in result.stdout
    assert "runs_running" in result.stdout
    assert (tmp_path / ".etl/store/landing/pos/pos_20261101.csv").is_file()
    assert (tmp_path / ".etl/etl.sqlite3").is_file()


def test_second_run_finds_the_drops_already_delivered(tmp_path: Path) -> None:
    assert run_example(tmp_path).returncode == 0
    again = run_example(tmp_path)
    assert again.returncode == 0, again.stderr
    assert "delivered 0 file(s), 3 already there unchanged" in again.stdout
