"""A command killed outright (SIGKILL) at a chosen point, then run again: the database
agrees with the store afterwards.

Found by the chaos sweep (``tests/chaos_sweep.py``), which kills at sampled moments:

- a killed run cannot finish its row of the run ledger: the next run of any lane on the
  host finishes it as failed (before, every such row stayed ``running`` for ever);
- file processing mirrors each outcome to the database before the store's ledger records
  it: killed between them, the object is redone (before, the ledger's record came first and
  the next scan skipped the object, so its database rows were never written).
"""

from __future__ import annotations

import json
import signal
import sqlite3
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
