"""A command killed outright (SIGKILL) or stopped (SIGTERM) at a chosen point, then run
again: the database agrees with the store afterwards, the stop is an exit 143.

Found by the chaos sweep (``tests/chaos_sweep.py``), which kills at sampled moments:

- a killed run cannot finish its row of the run ledger: the next run of any lane on the
  host finishes it as failed (before, every such row stayed ``running`` for ever);
- file processing mirrors each outcome to the database before the store's ledger records
  it: killed between them, the object is redone (before, the ledger's record came first and
  the next scan skipped the object, so its database rows were never written);
- a SIGTERM or Ctrl-C arriving inside a DuckDB query stops the run (exit 143 / 130);
  before, DuckDB turned it into "Query interrupted" (a plain ``RuntimeError``, not its
  ``InterruptException``), the partition failed, the run went on and exited 1.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from retail_workspace import Workspace, retail_workspace

from etl_core.faults import FAULT_ENV

CASES = {
    # lane command, the step it is killed at, a command run first (or none)
    "scan": (("etl-file-processing", "scan"), "checks:kill", None),
    "run": (
        ("etl-data-pipeline", "run", "--dataset", "pos_transactions"),
        "transform:kill",
        ("etl-file-processing", "scan"),
    ),
}


def _count(workspace: Workspace, table: str) -> int:
    with sqlite3.connect(workspace.root / "etl.sqlite3") as db:
        found: int = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return found


def _runs(workspace: Workspace) -> list[tuple[str, str, str, str]]:
    path = workspace.root / "etl.sqlite3"
    with sqlite3.connect(path) as db:
        found = db.execute(
            "SELECT run_id, job, status, error FROM etl_pipeline_run ORDER BY id"
        ).fetchall()
    return [tuple(row) for row in found]


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_killed_run_is_finished_as_failed_by_the_next_run(case: str, tmp_path: Path) -> None:
    command, fault, before = CASES[case]
    workspace = retail_workspace(tmp_path)
    env = {"DATABASE_URL": workspace.database_url}
    if before is not None:
        assert workspace.run(*before, **env).returncode in (0, 3)
    killed = workspace.run(*command, **env, **{FAULT_ENV: fault})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    left = [run for run in _runs(workspace) if run[2] == "running"]
    assert len(left) == 1, _runs(workspace)  # what the bug left for ever
    killed_id = left[0][0]

    again = workspace.run(*command, **env)

    assert again.returncode in (0, 3), again.stderr[-2000:]
    runs = {run_id: (job, status, error) for run_id, job, status, error in _runs(workspace)}
    job, status, error = runs[killed_id]
    assert status == "failed"
    assert error.startswith("abandoned: its process ")
    assert f"without finishing the {job}" in error
    assert not [run for run in runs.values() if run[1] == "running"]
    warned = [json.loads(line) for line in again.stderr.splitlines() if killed_id in line]
    assert [record["level"] for record in warned] == ["warning"], again.stderr[-2000:]


def test_an_outcome_recorded_when_the_scan_is_killed_is_in_the_database_after_the_rerun(
    tmp_path: Path,
) -> None:
    clean = retail_workspace(tmp_path / "clean")
    assert clean.run("etl-file-processing", "scan", DATABASE_URL=clean.database_url).returncode == 3
    workspace = retail_workspace(tmp_path / "killed")
    env = {"DATABASE_URL": workspace.database_url}
    for nth in (1, 4):  # a validated delivery, then a quarantined one
        killed = workspace.run(
            "etl-file-processing", "scan", **env, **{FAULT_ENV: f"recorded:kill:{nth}"}
        )
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]

    again = workspace.run("etl-file-processing", "scan", **env)

    assert again.returncode in (0, 3), again.stderr[-2000:]
    store = workspace.store / "_state/file_processing/objects"
    assert _count(workspace, "etl_processed_object") == len(list(store.iterdir()))
    for table in ("etl_processed_object", "etl_quarantine_record", "etl_quality_result"):
        assert _count(workspace, table) == _count(clean, table), table


# DuckDB busy for many seconds (a bare count(*) of a range is answered at once)
SLOW_QUERY = "(SELECT sum(i * i % 7) FROM range(30000000000) t(i)) >= 0"


@pytest.mark.parametrize(
    ("sent", "code", "said"),
    [(signal.SIGTERM, 143, "terminated (SIGTERM)"), (signal.SIGINT, 130, "interrupted (Ctrl-C)")],
)
def test_a_signal_inside_a_duckdb_query_stops_the_run(
    sent: signal.Signals, code: int, said: str, tmp_path: Path
) -> None:
    workspace = retail_workspace(tmp_path)
    for drop in (workspace.store / "landing/pos").iterdir():
        if drop.name != "pos_20261101.csv":  # one partition: one slow query
            drop.unlink()
    env = {"DATABASE_URL": workspace.database_url, "ETL_WORK_DIR": str(tmp_path / "work")}
    (tmp_path / "work").mkdir()
    assert workspace.run("etl-file-processing", "scan", **env).returncode == 0
    contract = workspace.config / "datasets/pos_transactions.toml"
    text = contract.read_text()
    contract.write_text(re.sub(r"\nFROM input\n", f"\nFROM input WHERE {SLOW_QUERY}\n", text))
    script = Path(sys.executable).parent / "etl-data-pipeline"
    base = {k: v for k, v in os.environ.items() if not k.startswith("ETL_") and k != "DATABASE_URL"}
    proc = subprocess.Popen(
        [str(script), "run", "--dataset", "pos_transactions"],
        cwd=workspace.root,
        env={**base, **workspace.env(**env)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not list((tmp_path / "work").glob("etl-transform-*")):
            assert proc.poll() is None, "the run ended before its transform began"
            assert time.monotonic() < deadline, "the transform never began"
            time.sleep(0.05)
        time.sleep(1.0)  # inside the slow query
        proc.send_signal(sent)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()

    assert proc.returncode == code, stderr[-3000:]
    assert "Query interrupted" not in stderr
    assert said in stderr
