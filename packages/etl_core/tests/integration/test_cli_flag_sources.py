"""A refused setting names the flag that set it, linked by the command, never guessed by its
value: an unrelated flag holding the same value is not named."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("typer", reason="the command line needs the 'cli' extra")

SCRIPT = """
import typer
from etl_core.cli import RuntimeCLI
from etl_core.runtime import RuntimeSettings

cli = RuntimeCLI(name="etl-test", lane="test", help="A test runtime.", settings=RuntimeSettings)

@cli.app.command()
def linked(
    ctx: typer.Context,
    report_every: float | None = typer.Option(None, "--report-every"),
    interval: float | None = typer.Option(None, "--interval"),
) -> None:
    'progress_interval from --report-every; --interval is no setting.'
    print(cli.session(ctx, report_every="progress_interval").settings.progress_interval)

@cli.app.command()
def programmed(
    ctx: typer.Context, interval: float | None = typer.Option(None, "--interval")
) -> None:
    'progress_interval set by the program; --interval is no setting.'
    print(cli.session(ctx).with_flags({"progress_interval": -1.0}).settings.progress_interval)

cli.main()
"""


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "etl_test_cli.py"
    script.write_text(SCRIPT)
    (tmp_path / "store").mkdir(exist_ok=True)
    env = {**os.environ, "ETL_STORAGE_URL": str(tmp_path / "store"), "ETL_LOG_FORMAT": "console"}
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )


def test_a_refused_value_names_the_flag_linked_to_it_not_one_holding_the_same_value(
    tmp_path: Path,
) -> None:
    """``--report-every -1 --interval -1``: the setting came from ``--report-every``;
    ``--interval``, whose name shares a word with ``progress_interval``, is not blamed."""
    result = run(tmp_path, "linked", "--report-every", "-1", "--interval", "-1")

    assert result.returncode == 2, result.stderr
    assert "(from flag --report-every)" in result.stderr
    assert "--interval" not in result.stderr


def test_a_value_the_program_set_is_never_blamed_on_a_flag_holding_the_same_value(
    tmp_path: Path,
) -> None:
    result = run(tmp_path, "programmed", "--interval", "-1")

    assert result.returncode == 2, result.stderr
    assert "(from override progress_interval)" in result.stderr
    assert "--interval" not in result.stderr


def test_a_linked_flag_left_out_keeps_the_source_of_the_value_read(tmp_path: Path) -> None:
    """Not typed, the setting comes from where it was read (here the environment)."""
    result = run(tmp_path, "linked", "--interval", "-1")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "10.0"
