"""A command imports what it uses: ``--help``, ``config show`` and ``worker --help`` load
none of the heavy libraries, ``process`` and ``transform`` only DuckDB (issue 16, start-up).

Each command runs in a fresh interpreter, as the console script runs it; the modules it
loaded are read from ``sys.modules`` once it ended.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from repo_layout import PACKAGE_DIRS, RUNTIMES
from retail_workspace import Workspace, retail_workspace

HEAVY = {"pydantic", "httpx", "boto3", "botocore", "celery", "kombu", "django", "jinja2"}
"""Libraries no command below uses (local store, no broker, no database, no alert)."""

RUN_AND_REPORT = """
import importlib, json, sys
module, out, *args = sys.argv[1:]
try:
    importlib.import_module(module).main(args)
except SystemExit:
    pass
with open(out, "w") as report:
    json.dump(sorted(sys.modules), report)
"""


def imported(
    runtime: str, *args: str, tmp_path: Path, env: dict[str, str] | None = None
) -> set[str]:
    """The top-level packages loaded by ``<runtime> ARGS`` run to its end."""
    return {name.split(".")[0] for name in modules(runtime, *args, tmp_path=tmp_path, env=env)}


def modules(
    runtime: str, *args: str, tmp_path: Path, env: dict[str, str] | None = None
) -> set[str]:
    """Every module loaded by ``<runtime> ARGS`` run to its end."""
    out = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_REPORT, f"{runtime}.cli", str(out), *args],
        env={**os.environ, **(env or {})},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.exists(), done.stderr
    return set(json.loads(out.read_text()))


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("args", [("--help",), ("worker", "--help"), ("config", "show", "--json")])
def test_light_commands_load_no_heavy_library(
    runtime: str, args: tuple[str, ...], tmp_path: Path
) -> None:
    loaded = imported(runtime, *args, tmp_path=tmp_path, env={"ETL_STORAGE_URL": str(tmp_path)})
    assert not loaded & (HEAVY | {"duckdb"}), f"{runtime} {' '.join(args)}"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return retail_workspace(tmp_path_factory.mktemp("startup"), migrate=False)


def test_process_and_transform_load_duckdb_and_no_other_heavy_library(
    workspace: Workspace, tmp_path: Path
) -> None:
    env = workspace.env()
    key = "landing/pos/pos_20261105.csv.zip.pgp"
    loaded = imported("file_processing", "process", key, "--json", tmp_path=tmp_path, env=env)
    assert "duckdb" in loaded  # the checks ran
    assert not loaded & HEAVY
    validated = workspace.store / "validated" / "pos_transactions" / "dt=2026-11-05"
    assert validated.is_dir()
    args = ("transform", "--dataset", "pos_transactions", "--date", "2026-11-05")
    loaded = imported("data_pipeline", *args, tmp_path=tmp_path, env=env)
    assert (workspace.store / "curated" / "pos_transactions" / "dt=2026-11-05").is_dir()
    assert not loaded & HEAVY


LOAD_CONTRACTS = """
import sys
from etl_core.contracts import load_contracts
from {module} import {validator}
load_contracts(sys.argv[1], validators=[{validator}], memo_dir=sys.argv[2])
print("duckdb" in sys.modules)
"""


@pytest.mark.parametrize(
    ("module", "validator"),
    [
        ("file_processing.checks", "expression_problems"),
        ("data_pipeline.validate", "transform_problems"),
    ],
)
def test_a_second_start_with_the_same_contracts_does_not_load_duckdb_to_check_them(
    workspace: Workspace, tmp_path: Path, module: str, validator: str
) -> None:
    """The lanes' engine rules passed once are remembered: the next start skips the
    DuckDB probe and its import (issue 16, start-up)."""
    code = LOAD_CONTRACTS.format(module=module, validator=validator)
    runs = [
        subprocess.run(
            [sys.executable, "-c", code, str(workspace.config), str(tmp_path / "cache")],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout.split()
        for _ in range(2)
    ]
    assert runs == [["True"], ["False"]]


def test_the_quality_engine_as_a_library_loads_no_processor() -> None:
    code = (
        "import sys\n"
        "from file_processing.quality import validate_file\n"
        "import file_processing\n"
        "assert callable(file_processing.scan), file_processing.scan\n"
        "print('file_processing.process' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.split() == ["False"]


def test_process_and_transform_load_no_api_source_model(
    workspace: Workspace, tmp_path: Path
) -> None:
    """Dataset contracts alone: the API sources' model (``etl_core.contracts.sources``,
    its cursors) is loaded by the commands that read sources."""
    env = workspace.env()
    key = "landing/pos/pos_20261105.csv.zip.pgp"
    loaded = modules(
        "file_processing", "process", key, "--json", "--force", tmp_path=tmp_path, env=env
    )
    assert "file_processing.process" in loaded
    assert not loaded & API_SOURCE_MODULES
    args = ("transform", "--dataset", "pos_transactions", "--date", "2026-11-05")
    loaded = modules("data_pipeline", *args, tmp_path=tmp_path, env=env)
    assert "data_pipeline.transform" in loaded
    assert not loaded & API_SOURCE_MODULES


API_SOURCE_MODULES = {"etl_core.contracts.sources", "etl_core.contracts.cursors"}


def test_process_and_transform_load_no_backfill_scheduler_or_unit_executor(
    workspace: Workspace, tmp_path: Path
) -> None:
    """``process KEY`` and a one-partition ``transform`` plan no backfill, schedule nothing
    and run no units through an executor: the backfill planner, the scheduler, the
    executors and the data lane's unit and worker modules (and the file lane's JSON reader,
    for a CSV) are loaded by the commands that use them (issue 16, start-up)."""
    env = workspace.env()
    key = "landing/pos/pos_20261105.csv.zip.pgp"
    loaded = modules(
        "file_processing", "process", key, "--json", "--force", tmp_path=tmp_path, env=env
    )
    assert "file_processing.process" in loaded
    assert not loaded & EXECUTOR_MODULES
    assert "file_processing.json_records" not in loaded  # a CSV drop: no JSON reader
    args = ("transform", "--dataset", "pos_transactions", "--date", "2026-11-05")
    loaded = modules("data_pipeline", *args, tmp_path=tmp_path, env=env)
    assert "data_pipeline.transform" in loaded
    assert not loaded & TRANSFORM_UNUSED_MODULES
    loaded = modules("data_pipeline", "backfill", "--help", tmp_path=tmp_path, env=env)
    assert "data_pipeline.backfill" not in loaded  # --help builds the command, runs none of it


EXECUTOR_MODULES = {
    "etl_core.scheduler",
    "etl_core.work.choice",
    "etl_core.work.executor",
    "etl_core.work.inline",
    "etl_core.work.threads",
}
"""The scheduler and the unit executors (with the retry loop): ``scan``'s, ``run``'s, the
workers'; ``process KEY`` and ``transform`` run their one piece of work themselves."""

TRANSFORM_UNUSED_MODULES = EXECUTOR_MODULES | {
    "data_pipeline.backfill",
    "data_pipeline.db.backfills",
    "data_pipeline.ledger",
    "data_pipeline.tasks",
    "data_pipeline.work",
}


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_each_runtimes_console_script_loads_its_cli_with_the_collector_paused(
    runtime: str,
) -> None:
    """``etl_core.console_script`` imports ``<runtime>.cli`` and runs its ``main``."""
    script = f"etl-{runtime.replace('_', '-')}"
    project = tomllib.loads((PACKAGE_DIRS[script] / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {script: f"etl_core.console_script:{runtime}"}


def test_serve_ping_loads_no_http_stack_and_no_heavy_library(tmp_path: Path) -> None:
    """The image's health check runs every few seconds: it asks ``serve`` with the standard
    library, loading neither the server's HTTP stack nor the lanes' libraries."""
    env = {"ETL_STORAGE_URL": str(tmp_path), "ETL_SERVE_PORT": "9"}  # nothing listens on 9
    loaded = imported("observability", "serve-ping", "--timeout", "1", tmp_path=tmp_path, env=env)
    assert "observability" in loaded
    assert not loaded & (HEAVY | {"duckdb", "uvicorn", "starlette", "anyio"})
