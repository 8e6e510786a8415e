"""One etl.toml holds every lane's settings: shared keys at the top, one table per lane."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from retail_workspace import Workspace, retail_workspace

SHARED = """\
log_level = "WARNING"
work_dir = "{root}/scratch"

[file_processing]
concurrency = 3

[data_pipeline]
duckdb_threads = 1
lease_seconds = 600

[observability]
log_level = "ERROR"
"""


def shown(workspace: Workspace, tool: str) -> dict[str, Any]:
    done = workspace.run(tool, "config", "show", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    return {row["setting"]: (row["value"], row["source"]) for row in document["settings"]}


def test_each_lane_reads_the_shared_keys_and_its_own_table(tmp_path: Path) -> None:
    workspace = retail_workspace(tmp_path, migrate=False)
    (workspace.config / "etl.toml").write_text(SHARED.format(root=tmp_path))

    files = shown(workspace, "etl-file-processing")
    pipeline = shown(workspace, "etl-data-pipeline")
    monitor = shown(workspace, "etl-observability")

    assert files["concurrency"] == (
        3,
        f"{workspace.config}/etl.toml:5: key file_processing.concurrency",
    )
    assert files["log_level"][0] == pipeline["log_level"][0] == "WARNING"
    assert files["work_dir"][0] == pipeline["work_dir"][0] == f"{tmp_path}/scratch"
    assert (pipeline["duckdb_threads"][0], pipeline["lease_seconds"][0]) == (1, 600)
    assert monitor["log_level"] == (
        "ERROR",
        f"{workspace.config}/etl.toml:12: key observability.log_level",
    )
    assert "concurrency" not in pipeline


def test_a_typo_in_a_lane_table_is_refused_by_that_lane_naming_key_and_match(
    tmp_path: Path,
) -> None:
    workspace = retail_workspace(tmp_path, migrate=False)
    text = SHARED.format(root=tmp_path).replace("duckdb_threads", "duckdb_thread")
    (workspace.config / "etl.toml").write_text(text)

    refused = workspace.run("etl-data-pipeline", "config", "show")
    accepted = workspace.run("etl-file-processing", "config", "show")

    assert refused.returncode == 2
    (line,) = refused.stderr.splitlines()
    event = json.loads(line)["event"]
    assert "duckdb_thread: unknown TOML key; did you mean 'duckdb_threads'?" in event
    assert "etl.toml:8: key data_pipeline.duckdb_thread" in event
    assert accepted.returncode == 0, accepted.stderr  # another lane's table is not its to judge


def test_a_typo_at_the_top_level_is_refused_by_every_lane(tmp_path: Path) -> None:
    workspace = retail_workspace(tmp_path, migrate=False)
    (workspace.config / "etl.toml").write_text('log_levle = "DEBUG"\n')

    for tool in ("etl-file-processing", "etl-data-pipeline", "etl-observability"):
        refused = workspace.run(tool, "config", "show")
        assert refused.returncode == 2, tool
        assert "did you mean 'log_level'?" in refused.stderr


def test_another_lane_s_key_at_the_top_level_is_refused_naming_its_table(tmp_path: Path) -> None:
    """file_processing asked whether ``quality_threads`` was meant; the key is
    data_pipeline's, which reads it where it is."""
    workspace = retail_workspace(tmp_path, migrate=False)
    (workspace.config / "etl.toml").write_text("duckdb_threads = 2\n")

    for tool in ("etl-file-processing", "etl-observability"):
        refused = workspace.run(tool, "config", "show")
        assert refused.returncode == 2, tool
        (line,) = refused.stderr.splitlines()
        event = json.loads(line)["event"]
        assert "duckdb_threads: is a setting of data_pipeline, not of this lane" in event
        assert "it goes in [data_pipeline]" in event
        assert "did you mean" not in event
    assert shown(workspace, "etl-data-pipeline")["duckdb_threads"][0] == 2
