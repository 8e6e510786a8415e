"""Every command of every lane, with stderr piped as under a scheduler or in a container:
each line on stderr is one JSON object carrying ``run_id`` and ``lane`` — on success and
on every failure path (bad usage, bad settings, bad input, a failed partition)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from retail_workspace import Workspace, retail_workspace, stderr_problems

from etl_core.testing.ports import free_port

FP, DP, OB = "etl-file-processing", "etl-data-pipeline", "etl-observability"
DATASET = ["--dataset", "pos_transactions"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    if shutil.which("gpg") is None:
        pytest.skip("gpg is not installed (the example's OpenPGP drops need it)")
    return retail_workspace(tmp_path_factory.mktemp("stderr-json"))


def records(stderr: str) -> list[dict[str, Any]]:
    """The JSON records among the lines of ``stderr`` (others are reported elsewhere)."""
    found = []
    for line in stderr.splitlines():
        with contextlib.suppress(ValueError):
            found.append(json.loads(line))
    return [record for record in found if isinstance(record, dict)]


class Commands:
    """Runs commands, remembering each one whose exit or stderr is not as expected."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.problems: list[str] = []

    def __call__(
        self, tool: str, *args: str, codes: tuple[int, ...] = (0,), **env: str
    ) -> subprocess.CompletedProcess[str]:
        done = self.workspace.run(tool, *args, **env)
        said = f"{tool} {' '.join(args)} (exit {done.returncode})"
        if done.returncode not in codes:
            self.problems.append(f"{said}: expected exit {codes}: {done.stderr[-600:]}")
        self.problems += [f"{said}: {problem}" for problem in stderr_problems(done.stderr)]
        return done


def test_file_processing_writes_only_json_lines_to_a_piped_stderr(workspace: Workspace) -> None:
    run = Commands(workspace)
    landing = workspace.store / "landing" / "pos"
    for usage in (["--help"], ["--version"], ["reasons"], ["reasons", "--json"]):
        run(FP, *usage)
    for bad_usage in ([], ["nosuchcommand"], ["--bogus", "scan"], ["--log-level"]):
        run(FP, *bad_usage, codes=(2,))
    run(FP, "config", "show")
    run(FP, "config", "show", codes=(2,), ETL_LOG_LEVEL="verbose")
    run(FP, "contracts", "check")
    run(FP, "inspect", str(landing / "pos_20261101.csv"))
    run(FP, "inspect", str(landing / "pos_20261109.csv.zip"), codes=(3,))
    run(FP, "inspect", str(landing / "missing.csv"), codes=(2,))
    run(FP, "process", "landing/pos/pos_20261101.csv", "--database-url", workspace.database_url)
    run(FP, "process", "landing/pos/nothing.csv", codes=(2,))
    run(FP, "scan", "--dataset", "nope", codes=(2,))
    scanned = run(
        FP, "--log-level", "DEBUG", "scan", codes=(3,), DATABASE_URL=workspace.database_url
    )
    gpg = [r for r in records(scanned.stderr) if str(r.get("event")).startswith("gpg status")]
    assert gpg, "the encrypted drops log gpg's status at DEBUG"
    assert all(r.get("key", "").endswith(".pgp") and r.get("dataset") for r in gpg)
    run(FP, "scan", "--storage", str(workspace.root / "typo"), codes=(2,))
    run(FP, "--storage", "ftp://host/lake", "scan", codes=(2,))
    listed = run(FP, "quarantine", "list", "--json")
    key = json.loads(listed.stdout)[0]["key"]
    run(FP, "quarantine", "list")
    run(FP, "quarantine", "show", key)
    run(FP, "quarantine", "show", "quarantine/nothing/here.csv", codes=(2,))
    run(FP, "quarantine", "release", key, "--by", "test")
    run(FP, "quarantine", "release", key, codes=(2,))
    assert run.problems == []


def test_data_pipeline_writes_only_json_lines_to_a_piped_stderr(workspace: Workspace) -> None:
    run = Commands(workspace)
    database = workspace.database_url
    run(FP, "scan", codes=(0, 3))
    for usage in (["--help"], ["--version"], ["config", "show"], ["contracts", "check"]):
        run(DP, *usage)
    run(DP, codes=(2,))
    run(DP, "db", "status", codes=(2,))
    run(DP, "db", "status", "--database-url", database)
    run(DP, "db", "status", codes=(2,), DATABASE_URL="mysql://etl@db/etl")
    run(DP, "transform", *DATASET, "--date", "2026-11-01")
    run(DP, "transform", *DATASET, "--date", "2026-13-01", codes=(2,))
    run(DP, "transform", "--dataset", "nope", "--date", "2026-11-01", codes=(2,))
    run(DP, "load", *DATASET, "--date", "2026-11-01", codes=(2,))
    run(DP, "load", *DATASET, "--date", "2026-11-01", "--database-url", database)
    run(DP, "run", "--no-load")
    run(DP, "run", codes=(2,))
    run(DP, "run", "--database-url", database)
    span = ["--from", "2026-11-01", "--to", "2026-11-03"]
    run(DP, "backfill", *DATASET, *span, "--dry-run", "--no-load")
    run(DP, "backfill", *DATASET, "--only-failed", codes=(2,))
    run(DP, "backfill", *DATASET, *span, "--database-url", database)
    (workspace.store / "reference" / "products.csv").unlink()  # every partition now fails
    run(DP, "backfill", *DATASET, *span, "--no-load", codes=(1,))
    run(DP, "transform", *DATASET, "--date", "2026-11-02", codes=(1,))
    assert run.problems == []


def test_observability_writes_only_json_lines_to_a_piped_stderr(workspace: Workspace) -> None:
    run = Commands(workspace)
    for usage in (["--help"], ["--version"], ["config", "show"], ["contracts", "check"]):
        run(OB, *usage)
    run(OB, codes=(2,))
    run(OB, "inventory")
    run(OB, "inventory", "--json")
    run(OB, "inventory", "--zone", "landingg", codes=(2,))
    run(OB, "--storage", "file://host/lake", "inventory", codes=(2,))
    run(OB, "database", codes=(2,))
    run(OB, "database", "--database-url", workspace.database_url)
    run(OB, "database", "--database-url", "mysql://etl@db/etl", codes=(2,))
    run(OB, "check", codes=(0, 1))  # the example's monitors judge dates of 2026-11
    run(OB, "check", "--json", codes=(0, 1))
    run(OB, "check", "--dataset", "nope", codes=(2,))
    assert run.problems == []


def test_the_status_service_writes_only_json_lines_until_it_is_stopped(
    workspace: Workspace,
) -> None:
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / OB), "serve", "--port", str(port), "--interval", "1s"],
        cwd=workspace.root,
        env={**environ, **workspace.env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert answers(f"http://127.0.0.1:{port}/healthz", seconds=60), "serve never answered"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)
    assert process.returncode == 143, stderr
    assert stderr_problems(stderr) == []
    assert records(stderr), "serve logs what it does"


def answers(url: str, *, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
        time.sleep(0.2)
    return False
