"""``etl-file-processing inspect PATH`` on a path that is no regular file: a FIFO waited
for a writer for ever (the delivery's first bytes read to sniff it), now refused at once
as a bad argument (exit 2) saying what is there; a symlink to a delivered file is
inspected as the file. ``process KEY`` of a FIFO in a local store says what is there."""

from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from etl_core.testing.scripts import run_script

from .test_cli_processing import cli


def inspect(path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_script("etl-file-processing", "inspect", str(path), cwd=cwd, timeout=20)


@pytest.mark.timeout(40)
def test_inspect_refuses_a_fifo_at_once_saying_what_it_is(tmp_path: Path) -> None:
    fifo = tmp_path / "orders.zip"
    os.mkfifo(fifo)

    result = inspect(fifo, tmp_path)

    assert result.returncode == 2, result.stderr
    said = " ".join(result.stderr.split())
    assert "it is a FIFO (named pipe), not a regular file" in said, said
    assert "Traceback" not in result.stderr


@pytest.mark.timeout(40)
def test_inspect_reads_a_symlink_to_a_delivered_file(tmp_path: Path) -> None:
    archive = tmp_path / "orders-2026-12-07.zip"
    with zipfile.ZipFile(archive, "w") as packed:
        packed.writestr("orders.csv", "id\n1\n")
    (tmp_path / "latest.zip").symlink_to(archive.name)

    result = inspect(tmp_path / "latest.zip", tmp_path)

    assert result.returncode == 0, result.stderr
    assert "orders.csv" in result.stdout


@pytest.mark.timeout(150)
def test_process_of_a_fifo_in_a_local_store_exits_2_saying_what_is_there(local_lane: Any) -> None:
    fifo = Path(local_lane.store.url.removeprefix("file://")) / "landing" / "vendor" / "x.csv"
    fifo.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(fifo)

    done = cli(local_lane, "process", "landing/vendor/x.csv")

    assert done.returncode == 2, done.stderr
    said = " ".join(done.stderr.split())
    assert "no such object: " in said
    assert "x.csv: the path there is a FIFO (named pipe), not a regular file" in said, said
