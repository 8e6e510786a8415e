"""What ``etl-schema`` says when its output or its SQLite file is not where it can go."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def test_showmigrations_into_a_closed_pipe_exits_141_quietly(tmp_path: Path) -> None:
    """`etl-schema showmigrations | head -1` printed a BrokenPipeError traceback (exit 1);
    every other console script exits 141 quietly, as the root README's conventions say."""
    script = shutil.which("etl-schema", path=str(Path(sys.executable).parent))
    assert script is not None, "the etl-schema console script is not installed"
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "ETL_DATABASE_URL"}}
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader went away before the first line: every write fails
    try:
        result = subprocess.run(
            [script, "showmigrations", "--database-url=sqlite:///db.sqlite3"],
            cwd=tmp_path,
            env=env,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)

    assert result.returncode == 141, result.stderr
    assert "Traceback" not in result.stderr
    assert "BrokenPipeError" not in result.stderr


def test_a_sqlite_file_in_a_missing_directory_is_a_url_mistake_naming_the_directory(
    run_cli: RunCli, tmp_path: Path
) -> None:
    """It said `etl-schema: error: unable to open database file` (exit 1), naming neither
    the file nor why."""
    result = run_cli("migrate", "--database-url=sqlite:///nodir/etl.sqlite3")

    assert result.returncode == 2, result.stderr
    assert str(tmp_path / "nodir") in result.stderr
    assert "does not exist" in result.stderr
    assert not (tmp_path / "nodir").exists()


def test_version_prints_the_package_version_as_the_runtimes_do(run_cli: RunCli) -> None:
    """`etl-schema --version` was a usage error (exit 2), unlike the three runtimes'."""
    from importlib.metadata import version

    result = run_cli("--version")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"etl-schema {version('etl-database-schema')}"
