"""Long keys and names are shown whole in every table of the lane's CLI, folded over
lines, never cut short with an ellipsis: an operator copies them (``quarantine show``
and ``release`` take the key ``quarantine list`` shows, ``process`` the landing key
``scan`` shows), on a terminal of any width and piped alike (160 columns)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .test_cli_processing import cli

Orders = Callable[..., bytes]

BIN = Path(sys.executable).parent / "etl-file-processing"
LONG = "orders_20261103.csv_" + "_".join(f"part{i:02d}" for i in range(30))
"""A landing name the ``orders`` contract matches, wider than a piped table (160 columns)."""
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def column(stdout: str, index: int) -> str:
    """The text of a table's column ``index`` (0: the first), its rows' lines joined: what
    a folded cell reads as whole."""
    cells = [line.split("│")[index + 1] for line in stdout.splitlines() if line.startswith("│")]
    return "".join(cell.strip() for cell in cells)


def on_terminal(command: list[str], columns: int, **env: str) -> str:
    """What ``command`` prints on a terminal ``columns`` wide (a pseudo-terminal), its
    colours left out; its logs (JSON, stderr is no terminal) dropped."""
    parent, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    environ = {**os.environ, "ETL_LOG_FORMAT": "json", "NO_COLOR": "1", "TERM": "xterm", **env}
    environ.pop("COLUMNS", None)
    process = subprocess.Popen(
        command, stdin=child, stdout=child, stderr=subprocess.DEVNULL, env=environ
    )
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(parent, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(parent)
    assert process.wait(timeout=120) == 0, b"".join(chunks).decode(errors="replace")
    return _ANSI.sub("", b"".join(chunks).decode()).replace("\r\n", "\n")


def test_scan_and_process_show_a_long_landing_key_whole(local_lane: Any, orders: Orders) -> None:
    key = local_lane.deliver(LONG, orders(10, bad_amounts=6))

    scanned = cli(local_lane, "scan")
    processed = cli(local_lane, "process", key, "--force")

    assert (scanned.returncode, processed.returncode) == (3, 3), scanned.stderr
    for shown in (scanned.stdout, processed.stdout):
        assert "…" not in shown, shown
        assert f"vendor/{LONG}" in column(shown, 0), shown
        assert "data.quality" in column(shown, 4), shown


def test_quarantine_list_shows_a_long_key_whole_piped_and_on_a_narrow_terminal(
    local_lane: Any, orders: Orders
) -> None:
    local_lane.deliver(LONG, orders(10, bad_amounts=6))
    assert cli(local_lane, "scan").returncode == 3
    command = [str(BIN), "--config-dir", str(local_lane.config_dir), "quarantine", "list"]

    piped = cli(local_lane, "quarantine", "list")
    narrow = on_terminal(command, 80, ETL_STORAGE_URL=local_lane.store.url)

    assert piped.returncode == 0, piped.stderr
    for shown in (piped.stdout, narrow):
        assert "…" not in shown, shown
        assert f"orders/dt=2026-11-03/{LONG}" in column(shown, 0), shown
        assert "data.quality" in column(shown, 3), shown


def test_inspect_shows_a_long_member_name_whole_on_a_narrow_terminal(tmp_path: Path) -> None:
    member = "data/" + "_".join(f"member{i:02d}" for i in range(15)) + ".csv"
    delivery = tmp_path / "delivery.zip"
    with zipfile.ZipFile(delivery, "w") as archive:
        archive.writestr(member, b"id,amount\n1,2.50\n")

    shown = on_terminal([str(BIN), "inspect", str(delivery)], 80)

    assert "…" not in shown, shown
    assert f"delivery.zip/{member}" in column(shown, 0), shown


def test_reasons_shows_every_code_whole_on_a_narrow_terminal() -> None:
    shown = on_terminal([str(BIN), "reasons"], 40)

    assert "…" not in shown, shown
    assert "archive.unsupported_compression" in column(shown, 0), shown
