"""What `process` does ahead, beside the critical path: the keyring made while the delivery
is described, members written back to disk while they are checked, the delivery's scratch
copy dropped before publishing. None of it changes an outcome."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from etl_core.storage import LocalObjectStore
from etl_core.testing.deliveries import zipped
from file_processing import flush_ahead
from file_processing import process as process_module

Orders = Callable[..., bytes]


@pytest.fixture
def flushed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files flushed ahead (by name), as each flush starts; small ones too."""
    monkeypatch.setattr(flush_ahead, "MIN_BYTES", 0)
    names: list[str] = []
    real = os.fdatasync

    def record(fd: int) -> None:
        names.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(flush_ahead.os, "fdatasync", record)
    return names


def test_an_unpacked_member_is_flushed_to_disk_before_it_is_published(
    local_lane: Any, orders: Orders, flushed: list[str]
) -> None:
    key = local_lane.deliver("orders_20261101.csv.zip", zipped({"a.csv": orders(30)}))
    with local_lane.processor() as processor:
        outcome = processor.process(key)
    assert outcome.status == "validated"
    assert len(flushed) == 1
    assert Path(flushed[0]).parent.name == "members"  # the staged member itself
    published = "validated/orders/dt=2026-11-01/orders_20261101.csv.zip/a.csv"
    assert local_lane.store.read_bytes(published) == orders(30)


def test_nothing_is_flushed_ahead_for_a_store_that_does_not_flush(
    local_lane: Any, orders: Orders, flushed: list[str]
) -> None:
    lane = replace(local_lane, store=LocalObjectStore(local_lane.store.root, fsync=False))
    key = lane.deliver("orders_20261101.csv", orders(5))
    with lane.processor() as processor:
        assert processor.process(key).status == "validated"
    assert flushed == []


def test_a_member_gone_before_its_flush_is_not_an_error(tmp_path: Path) -> None:
    with flush_ahead.FlushAhead(min_bytes=0) as flusher:
        flusher.add(tmp_path / "never-written", 10)


def test_a_small_member_is_left_to_the_flush_at_publishing(
    local_lane: Any, orders: Orders, flushed: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(flush_ahead, "MIN_BYTES", len(orders(30)) + 1)
    key = local_lane.deliver("orders_20261101.csv.zip", zipped({"a.csv": orders(30)}))
    with local_lane.processor() as processor:
        assert processor.process(key).status == "validated"
    assert flushed == []


def test_nothing_is_flushed_ahead_when_the_store_is_on_another_filesystem(
    local_lane: Any, orders: Orders, flushed: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process_module, "same_filesystem", lambda a, b: False)
    key = local_lane.deliver("orders_20261101.csv.zip", zipped({"a.csv": orders(30)}))
    with local_lane.processor() as processor:
        assert processor.process(key).status == "validated"
    assert flushed == []


def test_files_on_one_filesystem_are_told_apart_from_another(tmp_path: Path) -> None:
    assert flush_ahead.same_filesystem(tmp_path, tmp_path.parent)
    assert not flush_ahead.same_filesystem(tmp_path, Path("/proc"))
    assert not flush_ahead.same_filesystem(tmp_path, tmp_path / "missing")


def test_a_failed_write_back_fails_the_run_before_anything_is_published(
    local_lane: Any, orders: Orders, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(flush_ahead, "MIN_BYTES", 0)

    def fail(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(flush_ahead.os, "fdatasync", fail)
    data = zipped({"a.csv": orders(30)})
    key = local_lane.deliver("orders_20261101.csv.zip", data)
    with local_lane.processor() as processor, pytest.raises(OSError, match="Input/output"):
        processor.process(key)
    store = local_lane.store
    assert store.read_bytes(key) == data  # left where it landed, for the next run
    assert list(store.list("validated/")) == []


def test_the_delivery_copy_is_gone_before_publishing_and_kept_for_a_quarantine(
    local_lane: Any, orders: Orders, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = local_lane.store
    seen: list[bool] = []
    real = store.move_in

    def move_in(path: Any, key: str) -> int:
        seen.append((Path(path).parents[1] / "delivery").exists())
        return int(real(path, key))

    monkeypatch.setattr(store, "move_in", move_in)
    key = local_lane.deliver("orders_20261101.csv", orders(5))
    bad = local_lane.deliver("orders_20261102.csv", orders(10, bad_amounts=5))
    with local_lane.processor() as processor:
        assert processor.process(key).status == "validated"
        assert seen == [False]
        outcome = processor.process(bad)
    assert outcome.status == "quarantined"
    assert store.read_bytes(outcome.outputs[0]) == orders(10, bad_amounts=5)


def test_the_keyring_of_an_encrypted_delivery_is_being_made_before_it_is_described(
    lane: Any, orders: Orders, pgp: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_ORDERS_KEY", pgp.recipient_secret_armored.decode())
    plain = tmp_path / "orders.csv"
    plain.write_bytes(orders(4))
    sealed = pgp.encrypt(plain, tmp_path / "orders_20261109.csv.pgp")
    key = lane.deliver(sealed.name, sealed)
    with lane.processor() as processor:
        making: list[bool] = []
        real = processor.store.head

        def head(asked: str) -> Any:
            if asked == key:
                making.append(bool(processor._decryptors))
            return real(asked)

        monkeypatch.setattr(processor.store, "head", head)
        outcome = processor.process(key)
    assert outcome.status == "validated"
    assert making[:1] == [True]
