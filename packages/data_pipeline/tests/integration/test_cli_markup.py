"""File names and errors holding Rich markup are printed as they are, never read as
markup: ``[bold]`` stays written and ``[/x]`` (a closing tag with nothing open) raises
nothing. Both are legal in S3 keys and file names."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from etl_core.storage import open_store
from etl_core.testing.deliveries import publish_delivery

Cli = Callable[..., subprocess.CompletedProcess[str]]

BAD = "bad[bold]x[red].csv"
"""A validated file lacking the contract's columns: the error names it (after a prefix)."""


def flat(text: str) -> str:
    """``text`` with its table borders and wrapping undone."""
    return "".join(text.replace("│", " ").split())


def test_run_and_backfill_status_print_a_failed_files_name_with_markup_as_it_is(
    cli_on: Callable[[Path], Cli], tmp_path: Path, retail: Any
) -> None:
    root = retail.seeded_at(tmp_path / "store", ["2026-11-01"], rows=10)
    with open_store(str(root)) as store:
        publish_delivery(store, "pos", date(2026, 11, 2), {BAD: b"transaction_id\nx\n"})
    pipeline = cli_on(root)

    ran = pipeline("run", "--dataset", "pos", "--no-load")
    assert ran.returncode == 1, ran.stderr
    assert "MarkupError" not in ran.stderr
    assert "1 partition(s) processed, 1 failed" in ran.stdout
    logged = [json.loads(line) for line in ran.stderr.splitlines()]
    assert any(BAD in str(line.get("event")) for line in logged), ran.stderr

    args = ("backfill", "--dataset", "pos", "--from", "2026-11-02", "--to", "2026-11-02")
    assert pipeline(*args, "--no-load").returncode == 1
    (job,) = (root / "_state/data_pipeline/backfills").glob("*.json")
    job_id = json.loads(job.read_text())["job_id"]
    shown = pipeline("backfill", "--dataset", "pos", "--status", job_id)

    assert shown.returncode == 1, shown.stderr
    assert BAD in flat(shown.stdout), shown.stdout
