"""`make run`'s job, run from an empty working directory on the embedded defaults."""

from __future__ import annotations

import os
import sqlite3
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


def test_example_processes_transforms_loads_and_reports(tmp_path: Path) -> None:
    result = run_example(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "delivered 11 file(s)" in result.stdout
    assert "7 validated, 4 quarantined, 0 skipped, 0 failed" in result.stdout
    for reason in ("data.quality", "pgp.no_key", "archive.path_traversal", "contract.unmatched"):
        assert reason in result.stdout
    assert "7 partition(s) processed, 0 failed" in result.stdout
    assert "runs_running" in result.stdout
    store = tmp_path / ".etl/store"
    assert (store / "landing/pos/pos_20261101.csv").is_file()
    assert (store / "curated/pos_transactions/dt=2026-11-05/_manifest.json").is_file()
    assert not (store / "curated/pos_transactions/dt=2026-11-07").exists()
    page = tmp_path / ".etl/status.html"
    assert f"status page: {page}" in result.stdout
    assert 'data-day="2026-11-10" data-state="missing"' in page.read_text()
    assert "2026-11-10 │ critical │ missing" in result.stdout  # check's table, as the example
    assert "2026-11-04 │ ok       │ late" in result.stdout  # dates the vendor's deliveries
    with sqlite3.connect(tmp_path / ".etl/etl.sqlite3") as db:
        (rows,) = db.execute("SELECT count(*) FROM retail_sales_transaction").fetchone()
    assert rows == 6 * 300 + 299


def test_second_run_finds_everything_already_done(tmp_path: Path) -> None:
    assert run_example(tmp_path).returncode == 0
    again = run_example(tmp_path)
    assert again.returncode == 0, again.stderr
    assert "delivered 0 file(s), 11 already there unchanged" in again.stdout
    assert "0 validated, 0 quarantined, 11 skipped, 0 failed" in again.stdout
    assert "0 partition(s) processed" in again.stdout
