"""Store keys and folder names holding Rich markup are printed as they are, never read as
markup: ``[bold]`` stays written and ``[/x]`` (a closing tag with nothing open) raises
nothing. Both are legal in S3 keys and file names."""

from __future__ import annotations

import os
import subprocess
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from etl_core.storage import open_store

Cli = Callable[..., subprocess.CompletedProcess[str]]

CONTRACT = textwrap.dedent(
    """
    dataset = "sales"
    source = "sales"
    pattern = "sales_{date:%Y%m%d}*"
    [[columns]]
    name = "id"
    [freshness]
    warn_after = "1h"
    critical_after = "3h"
    """
)


def flat(text: str) -> str:
    """``text`` with its table borders and wrapping undone."""
    return "".join(text.replace("│", " ").split())


def test_inventory_prints_a_landing_folder_with_markup_as_it_is(cli: Cli, tmp_path: Path) -> None:
    with open_store(str(tmp_path / "lake")) as store:
        store.write_bytes("landing/vendor[bold]x[/x]/a.csv", b"a" * 10)

    result = cli("--storage", str(tmp_path / "lake"), "inventory", "--zone", "landing")

    assert result.returncode == 0, result.stderr
    assert "vendor[bold]x" in flat(result.stdout), result.stdout


def test_check_names_a_future_dated_key_with_markup_as_it_is(cli: Cli, tmp_path: Path) -> None:
    datasets = tmp_path / "config" / "datasets"
    datasets.mkdir(parents=True)
    (datasets / "sales.toml").write_text(CONTRACT)
    now = datetime.now(UTC)
    key = f"landing/sales/sales_{now:%Y%m%d}[bold]x[red].csv"  # a "/" would leave the pattern
    with open_store(str(tmp_path / "lake")) as store:
        store.write_bytes(key, b"id\n1\n")
    ahead = (now + timedelta(days=2)).timestamp()
    os.utime(tmp_path / "lake" / key, (ahead, ahead))

    options = ["--config-dir", str(tmp_path / "config"), "--storage", str(tmp_path / "lake")]
    result = cli(*options, "check", env={"COLUMNS": "400"})  # the key whole in its cell

    assert result.returncode == 1, result.stdout + result.stderr
    assert flat(key) in flat(result.stdout), result.stdout
