"""The store itself on a full disk (a real tmpfs, mounted by root; one test fakes the
error): a scan fails naming the store and the disk, with no traceback, nothing
half-published and nothing recorded as done; the scan after space is freed processes
every file exactly once."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from etl_core.errors import StorageError
from etl_core.storage import LocalObjectStore, open_store
from etl_core.testing.disks import small_disk as mounted_small_disk
from file_processing.quarantine import quarantine_key

Orders = Callable[..., bytes]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (mounting needs root, else the test is skipped)."""
    with mounted_small_disk(tmp_path, "1m") as mount:
        yield mount


def _fill(disk: Path, leave: int) -> Path:
    """A file taking all but ``leave`` bytes of ``disk``."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        chunk = b"\0" * 4096
        for _ in range(1024):  # the disk is 1 MiB: 256 chunks fill it
            try:
                os.write(fd, chunk)
            except OSError:
                break
        os.ftruncate(fd, max(0, os.fstat(fd).st_size - leave))
    finally:
        os.close(fd)
    return filler


def _ledger_states(store_root: Path) -> list[str]:
    folder = store_root / "_state" / "file_processing" / "objects"
    return sorted(json.loads(p.read_bytes())["state"] for p in folder.glob("*.json"))


@pytest.mark.parametrize("leave", [0, 12 * 1024, 40 * 1024])
def test_scan_on_a_full_store_fails_clean_and_the_next_scan_completes_once(
    small_disk: Path, tmp_path: Path, orders: Orders, leave: int
) -> None:
    from .conftest import _lane

    with open_store(small_disk / "lake") as store:
        lane = _lane(store, tmp_path)
        landed = [
            lane.deliver(f"orders_202611{day:02d}.csv", orders(300 + day)) for day in (1, 2, 3)
        ]
        filler = _fill(small_disk, leave)
        full = lane.cli("scan", "--concurrency", "1")
        assert full.returncode == 1, full.stderr
        said = [json.loads(line) for line in full.stderr.splitlines() if line.startswith("{")]
        assert not any(line["level"] == "critical" for line in said), full.stderr
        errors = [line["event"] for line in said if line["level"] == "error"]
        assert errors, full.stderr
        assert all("No space left on device" in e for e in errors), errors
        assert all(store.url in e for e in errors), errors
        assert "Traceback" not in full.stderr
        assert not list(small_disk.rglob(".etl-partial-*"))  # nothing half-written
        assert sorted(info.key for info in store.list("landing/")) == sorted(landed)
        manifests = [i.key for i in store.list("validated/") if "/_deliveries/" in i.key]
        # the ledger never claims what was not published (a delivery published whose
        # record could not be finished is redone by the next scan, under the same keys)
        assert _ledger_states(store.root).count("validated") <= len(manifests)
        filler.unlink()
        freed = lane.cli("scan", "--json")
        assert freed.returncode == 0, freed.stderr
        counts = json.loads(freed.stdout)["counts"]
        assert counts["failed"] == 0
        manifests = [i.key for i in store.list("validated/") if "/_deliveries/" in i.key]
        assert len(manifests) == 3
        assert _ledger_states(store.root) == ["validated"] * 3
        again = json.loads(lane.cli("scan", "--json").stdout)["counts"]
        assert again["validated"] == 0
        assert again["skipped"] == 3


class _RecordlessStore(LocalObjectStore):
    """A local store whose disk fills up just before a quarantine record is written."""

    def write_bytes(self, key: str, data: Any) -> None:
        if key.endswith(".quarantine.json"):
            raise StorageError(
                f"cannot write {key!r} in {self.url}: No space left on device", key=key
            )
        super().write_bytes(key, data)


def test_a_quarantine_whose_record_cannot_be_written_leaves_no_copy_behind(
    tmp_path: Path,
) -> None:
    """The copy stayed in quarantine/ with no record: invisible to ``quarantine list``."""
    from .conftest import _lane

    store = _RecordlessStore(tmp_path / "lake")
    lane = _lane(store, tmp_path)
    key = lane.deliver("store_manager_notes.txt", b"not a delivery\n")
    with lane.processor() as processor, pytest.raises(StorageError, match="No space left"):
        processor.process(key)
    assert lane.keys("quarantine/") == []
    assert lane.keys("landing/") == [key]


class _TimedOutStore(LocalObjectStore):
    """A store whose quarantine record write lands but reports a failure, as an S3 put
    whose response timed out after the object was stored does."""

    def write_bytes(self, key: str, data: Any) -> None:
        super().write_bytes(key, data)
        if key.endswith(".quarantine.json"):
            raise StorageError(f"cannot write {key!r} in {self.url}: read timed out", key=key)


def test_a_quarantine_record_written_despite_its_error_keeps_its_copy(tmp_path: Path) -> None:
    """The copy was removed after its record had been stored: a record of nothing, which
    ``quarantine release`` could not act on."""
    from .conftest import _lane

    store = _TimedOutStore(tmp_path / "lake")
    lane = _lane(store, tmp_path)
    key = lane.deliver("store_manager_notes.txt", b"not a delivery\n")
    with lane.processor() as processor, pytest.raises(StorageError, match="timed out"):
        processor.process(key)
    quarantined = lane.keys("quarantine/")
    records = [k for k in quarantined if k.endswith(".quarantine.json")]
    assert len(records) == 1
    assert records[0].removesuffix(".quarantine.json") in quarantined
    assert lane.keys("landing/") == [key]


def test_a_failed_record_over_an_unreadable_earlier_one_keeps_the_copy(tmp_path: Path) -> None:
    """An earlier episode's record that cannot be read still stands at the key: the copy
    (which replaced that episode's bytes) is what it names, not one to remove."""
    from .conftest import _lane

    store = _RecordlessStore(tmp_path / "lake")
    lane = _lane(store, tmp_path)
    key = lane.deliver("store_manager_notes.txt", b"not a delivery\n")
    copy = quarantine_key(key, None, datetime.now(UTC).date())
    LocalObjectStore.write_bytes(store, copy, b"an earlier episode's bytes\n")
    LocalObjectStore.write_bytes(store, copy + ".quarantine.json", b"{not json")
    with lane.processor() as processor, pytest.raises(StorageError, match="No space left"):
        processor.process(key)
    assert copy in lane.keys("quarantine/")
