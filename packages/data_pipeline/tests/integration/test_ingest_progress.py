"""``ingest`` progress: a bar with pages, records, retries and waits on a terminal; periodic
JSON progress lines off one."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from etl_core.testing.scripts import run_script

from .conftest import Fault

SOURCE = """
[[endpoints]]
name = "items"
path = "/offset"
dataset = "shop_items"
records_path = "items"
chunk_records = 10
[endpoints.pagination]
type = "offset"
page_size = 5
"""


def arguments(workspace) -> list[str]:
    return ["--storage", f"file://{workspace.store_dir}", "--config-dir", str(workspace.config)]


def test_off_a_terminal_progress_lines_count_pages_records_and_retries(workspace, api) -> None:
    workspace.source(SOURCE, endpoints=("items",))
    api.delay = 0.05  # 11 pages: about half a second
    api.faults.append(Fault("/offset", 503, {"Retry-After": "0"}))

    result = run_script(
        "etl-data-pipeline",
        *arguments(workspace),
        "ingest",
        cwd=workspace.root,
        env={"ETL_PROGRESS_INTERVAL": "0.1"},
    )

    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    progress = [line for line in lines if line["event"].startswith("progress: ingest:")]
    assert progress, result.stderr
    last = progress[-1]
    assert last["planned"] == 1
    assert 1 <= last["pages"] <= 11
    assert last["retries"] == 1
    assert "window(s) finished" in last["event"]


def test_on_a_terminal_a_bar_shows_pages_and_records(workspace, api) -> None:
    workspace.source(SOURCE, endpoints=("items",))
    api.delay = 0.05
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    environ.update({"TERM": "xterm", "COLUMNS": "160", "ETL_LOG_FORMAT": "json"})
    script = Path(sys.executable).parent / "etl-data-pipeline"
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [str(script), *arguments(workspace), "ingest"],
        cwd=workspace.root,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=secondary,
    )
    os.close(secondary)
    shown = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([primary], [], [], 0.2)
        if ready:
            try:
                data = os.read(primary, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not data:
                break
            shown += data
        elif process.poll() is not None:
            break
    process.communicate(timeout=30)
    os.close(primary)

    assert process.returncode == 0, shown.decode(errors="replace")
    text = shown.decode(errors="replace")
    assert "ingest (pages" in text
    assert "records" in text
    assert workspace.landed("items") == api.records
