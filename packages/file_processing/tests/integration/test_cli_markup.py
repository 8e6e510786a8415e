"""Keys, names and messages with Rich markup in them are printed as they are, never read
as markup: ``[bold]`` stays written, ``[/x]`` (a closing tag with nothing open) raises
nothing. Both are legal in S3 keys and file names."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from etl_core.testing.scripts import run_script

from .test_cli_processing import cli

Orders = Callable[..., bytes]

NAME = "orders_20261103.csv[bold]x[/x]"
"""A key holding an opening and a stray closing tag (its ``/`` makes it unmatched)."""


def flat(text: str) -> str:
    """``text`` with its table borders and wrapping undone."""
    return "".join(text.replace("│", " ").split())


def test_scan_and_quarantine_list_and_release_print_a_key_with_markup_as_it_is(
    local_lane: Any, orders: Orders
) -> None:
    key = local_lane.deliver(NAME, orders(10, bad_amounts=6))

    scanned = cli(local_lane, "scan")
    assert scanned.returncode == 3, scanned.stderr
    assert flat(f"vendor/{NAME}") in flat(scanned.stdout), scanned.stdout

    listed = cli(local_lane, "quarantine", "list")
    assert listed.returncode == 0, listed.stderr
    assert flat(f"vendor/{NAME}") in flat(listed.stdout), listed.stdout

    (record,) = json.loads(cli(local_lane, "quarantine", "list", "--json").stdout)
    released = cli(local_lane, "quarantine", "release", record["key"], "--by", "bob")
    assert released.returncode == 0, released.stderr
    said = f"released {record['key']}: {key} will be processed by the next scan"
    assert flat(said) in flat(released.stdout), released.stdout


def test_process_prints_a_key_with_markup_as_it_is(local_lane: Any, orders: Orders) -> None:
    key = local_lane.deliver("orders_20261103.csv[bold]x[red]", orders(10, bad_amounts=6))

    done = cli(local_lane, "process", key)

    assert done.returncode == 3, done.stderr
    assert key in flat(done.stdout), done.stdout  # the table's title
    assert flat(key.removeprefix("landing/")) in flat(done.stdout)  # its row


def test_inspect_prints_a_refused_file_name_with_markup_as_it_is(tmp_path: Path) -> None:
    evil = tmp_path / "evil[bold]x[red].zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../../etc/cron.d/evil", "* * * * * root true\n")

    result = run_script("etl-file-processing", "inspect", str(evil), cwd=tmp_path)

    assert result.returncode == 3, result.stderr
    assert f"refused {evil}: archive.path_traversal" in " ".join(result.stdout.split())


def test_inspect_writes_a_member_name_with_control_or_bidi_characters_as_escapes(
    tmp_path: Path,
) -> None:
    """A vendor's archive names its members: an escape sequence in one would recolour,
    move or retitle the operator's terminal, a right-to-left override reverse what
    follows; each is written as its escape, as in every key the lane prints."""
    archive = tmp_path / "vendor.zip"
    with zipfile.ZipFile(archive, "w") as packed:
        packed.writestr("a\x1b[31mred\u202eX.csv", "id\n1\n")

    result = run_script("etl-file-processing", "inspect", str(archive), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout, result.stdout
    assert "\u202e" not in result.stdout, result.stdout
    assert "a\\x1b[31mred\\u202eX.csv" in flat(result.stdout), result.stdout
