"""A local store's key whose path is no regular file (a FIFO, a directory) is no object:
reading it is refused at once, saying what is there, never waiting for a FIFO's writer
(an enrichment's reference, a landing file or a manifest named so hung the run for ever).
A symlink to a regular file is read as the file."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from etl_core.errors import NotAnObjectError, ObjectNotFoundError
from etl_core.storage import LocalObjectStore

KEY = "reference/stores.csv"
READS: dict[str, Callable[[LocalObjectStore, Path], Any]] = {
    "read_bytes": lambda store, _: store.read_bytes(KEY),
    "open_read": lambda store, _: store.open_read(KEY).close(),
    "head": lambda store, _: store.head(KEY),
    "download": lambda store, target: store.download(KEY, target),
    "copy": lambda store, _: store.copy(KEY, "reference/copy.csv"),
}


@pytest.fixture
def lake(tmp_path: Path) -> LocalObjectStore:
    store = LocalObjectStore(tmp_path / "lake")
    (store.root / "reference").mkdir(parents=True)
    return store


def place(lake: LocalObjectStore, kind: str) -> None:
    path = lake.root / KEY
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
        (path / "part.csv").write_bytes(b"a\n1\n")


@pytest.mark.timeout(20)
@pytest.mark.parametrize("read", list(READS))
def test_a_fifo_at_a_key_is_no_object_and_is_refused_without_waiting_for_a_writer(
    lake: LocalObjectStore, tmp_path: Path, read: str
) -> None:
    place(lake, "fifo")

    with pytest.raises(NotAnObjectError) as caught:
        READS[read](lake, tmp_path / "staged.csv")

    error = caught.value
    assert isinstance(error, ObjectNotFoundError)  # what callers of a missing object catch
    assert error.key == KEY
    assert error.found == "a FIFO (named pipe)"
    assert str(error) == (
        f"no object {KEY!r} in {lake.url}: the path there is a FIFO (named pipe), "
        "not a regular file"
    )
    assert pickle.loads(pickle.dumps(error)).found == error.found
    assert not (tmp_path / "staged.csv").exists()  # no link to the FIFO left behind
    assert not lake.exists(KEY)
    assert [info.key for info in lake.list("reference/")] == []


@pytest.mark.parametrize("read", list(READS))
def test_a_directory_at_a_key_is_said_to_be_one(
    lake: LocalObjectStore, tmp_path: Path, read: str
) -> None:
    place(lake, "directory")

    with pytest.raises(NotAnObjectError, match="the path there is a directory, not a regular"):
        READS[read](lake, tmp_path / "staged.csv")

    assert [info.key for info in lake.list("reference/")] == [f"{KEY}/part.csv"]


@pytest.mark.parametrize("read", ["read_bytes", "download"])
def test_a_symlink_to_a_regular_file_is_read_as_the_file(
    lake: LocalObjectStore, tmp_path: Path, read: str
) -> None:
    outside = tmp_path / "stores-2026.csv"
    outside.write_bytes(b"store_id\nS001\n")
    (lake.root / KEY).symlink_to(outside)

    got = READS[read](lake, tmp_path / "staged.csv")

    if read == "download":
        assert got == len(b"store_id\nS001\n")
        got = (tmp_path / "staged.csv").read_bytes()
    assert got == b"store_id\nS001\n"


_LEASE_HOLDER = """
import fcntl, os, signal, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
def give_back(*_):
    time.sleep(0.3)  # writes back what it holds, as a file server recalling a lease does
    fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
signal.signal(signal.SIGIO, give_back)
try:
    fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
except OSError as exc:
    print("unsupported", exc, flush=True)
    sys.exit()
print("leased", flush=True)
time.sleep(20)
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("read", ["read_bytes", "list"])
def test_a_file_under_a_lease_is_read_once_its_holder_gives_it_back(
    lake: LocalObjectStore, read: str
) -> None:
    """A file a server shares (Samba's kernel oplocks, an NFS server's delegation) is under
    a lease while a client holds it: a plain open waits for the holder to give it back, as
    reads always did; the open that waits for no FIFO writer must not fail with "Resource
    temporarily unavailable" instead (a listing of the landing zone failing whole)."""
    lake.write_bytes(KEY, b"store_id\nS001\n")
    holder = subprocess.Popen(
        [sys.executable, "-c", _LEASE_HOLDER, str(lake.root / KEY)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        said = holder.stdout.readline() if holder.stdout else ""
        if not said.startswith("leased"):
            pytest.skip(f"no file lease on this filesystem: {said.strip()}")
        started = time.monotonic()
        if read == "list":
            got: Any = [(info.key, info.size) for info in lake.list("reference/")]
            assert got == [(KEY, len(b"store_id\nS001\n"))]
        else:
            assert lake.read_bytes(KEY) == b"store_id\nS001\n"
        assert time.monotonic() - started < 30  # the holder's 0.3 s, not the kernel's 45 s
    finally:
        holder.kill()
        holder.wait(timeout=10)
