"""Every lane's `config show` with every one of its `ETL_*` variables empty or blank: the
defaults, said as such (compose files pass `ETL_X: ${X:-}` through, so an unset shell
variable arrives as an empty one)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from data_pipeline.settings import PipelineSettings
from etl_core.config import env_variables
from etl_core.runtime import RuntimeSettings
from etl_core.testing.scripts import run_script
from file_processing.settings import FileProcessingSettings
from observability.settings import ObservabilitySettings

LANES: list[tuple[str, type[RuntimeSettings]]] = [
    ("etl-file-processing", FileProcessingSettings),
    ("etl-data-pipeline", PipelineSettings),
    ("etl-observability", ObservabilitySettings),
]


def shown(tool: str, cwd: Path, env: dict[str, str]) -> dict[str, tuple[Any, str]]:
    done = run_script(tool, "config", "show", "--json", cwd=cwd, env=env)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["settings"]
    return {row["setting"]: (row["value"], row["source"]) for row in rows}


@pytest.mark.parametrize("blank", ["", " \t"], ids=repr)
@pytest.mark.parametrize(("tool", "settings"), LANES, ids=[tool for tool, _ in LANES])
def test_every_empty_variable_of_a_lane_counts_as_unset(
    tmp_path: Path, tool: str, settings: type[RuntimeSettings], blank: str
) -> None:
    variables = dict.fromkeys(env_variables(settings), blank)
    variables |= {"ETL_SETTINGS_FILE": blank, "DATABASE_URL": blank}

    with_blanks = shown(tool, tmp_path, variables)
    without = shown(tool, tmp_path, {"ETL_LOG_FORMAT": "auto"})  # the helper's is json

    assert {name: value for name, (value, _) in with_blanks.items()} == {
        name: value for name, (value, _) in without.items()
    }
    assert {source for _, source in with_blanks.values()} == {"default"}
