"""Files written for other programs: whole or not at all, permissions kept, never a *.prom
half-file, two writers apart."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from observability.output_files import replace_file


@pytest.fixture
def strict_umask() -> Iterator[None]:
    """A service started with ``UMask=0077``: new files are 0600."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("strict_umask")
def test_a_replaced_file_keeps_the_permissions_its_reader_needs(tmp_path: Path) -> None:
    target = tmp_path / "check.prom"
    target.write_bytes(b"old\n")
    target.chmod(0o644)  # node_exporter runs as another user

    replace_file(target, b"new\n", make_folder=False)

    assert target.read_bytes() == b"new\n"
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)


def test_two_writers_of_one_file_do_not_share_a_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "check.prom"
    rename = os.replace
    in_flight: list[str] = []

    def second_writer_first(source: str | os.PathLike[str], destination: str | Path) -> None:
        if not in_flight:  # a second check finishes while the first is between write and rename
            in_flight.extend(sorted(p.name for p in tmp_path.iterdir()))
            replace_file(target, b"second\n", make_folder=False)
        rename(source, destination)

    monkeypatch.setattr(os, "replace", second_writer_first)

    replace_file(target, b"first\n", make_folder=False)

    assert target.read_bytes() == b"first\n"  # whole: the last renamed, not a mix or an error
    (partial,) = in_flight
    assert partial.startswith(".check.prom.")
    assert partial.endswith(".partial")  # never *.prom: the collector does not read it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["check.prom"]
