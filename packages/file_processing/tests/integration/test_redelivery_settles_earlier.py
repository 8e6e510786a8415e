"""A validated delivery settles what earlier deliveries of its landing key left, whatever
came between: the open quarantine records are closed (superseded by another ETag,
revalidated for the same one) and the validated members the new delivery lacks are
removed, also after a failed attempt, a killed one, a wait or a duplicate in between, for
a quarantine under ``_unknown`` and one dated by its arrival on another day."""

from __future__ import annotations

import io
import logging
import os
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

import pytest

from etl_core.artifacts import REVALIDATED_BY, SUPERSEDED_BY
from etl_core.errors import StorageError
from etl_core.layout import delivery_manifest_key, quality_report_key
from etl_core.storage import LocalObjectStore, ObjectStore
from file_processing import ledger as ledger_module
from file_processing import process as process_module
from file_processing.errors import FileProcessingError
from file_processing.ledger import Claim
from file_processing.process import Outcome, Processor
from file_processing.quarantine import list_quarantined, read_record, release, settle

Orders = Callable[..., bytes]

AMOUNTS = """
packing = "none"
encryption = "none"

[[columns]]
name = "id"
type = "int"

[[columns]]
name = "amount"
type = "decimal"
precision = 12
scale = 2

[[checks]]
kind = "range"
column = "amount"
min = 0
max = 1000
"""
"""Unpacked, unencrypted ``id,amount`` rows with amounts of 0-1000: what both contracts read."""

RETURNS_CONTRACT = (
    """
dataset = "returns"
source = "vendor"
pattern = "returns_{date:%Y%m%d}.csv"
"""
    + AMOUNTS
)

ARRIVALS_CONTRACT = (
    """
dataset = "arrivals"
source = "feed"
pattern = "report.csv"
date_from = "arrival"
"""
    + AMOUNTS
)


def _timed_out(*args: Any, **kwargs: Any) -> Any:
    """A store call failing as a store that timed out does (a transient failure)."""
    raise StorageError("the store timed out (a transient failure)")


class Redeliver(Protocol):
    """The :func:`redelivered` fixture: a re-delivery processed after one failed attempt."""

    def __call__(
        self, lane: Any, processor: Processor, name: str, data: bytes, *, source: str = ...
    ) -> Outcome: ...


@pytest.fixture
def redelivered(monkeypatch: pytest.MonkeyPatch) -> Redeliver:
    """``redelivered(lane, processor, name, data)``: the vendor sends ``name`` (landing
    under ``source``) again with ``data``, the first attempt on it fails with a transient
    store error (recorded ``failed``), and the next attempt's outcome is returned."""

    def redeliver(
        lane: Any, processor: Processor, name: str, data: bytes, *, source: str = "vendor"
    ) -> Outcome:
        key = lane.deliver(name, data, source=source)
        with monkeypatch.context() as patch:
            patch.setattr(processor, "_download", _timed_out)
            with pytest.raises(StorageError):
                processor.process(key)
        record = processor.ledger.get(key)
        assert record is not None
        assert record.state == "failed"
        return processor.process(key)

    return redeliver


def _dated(lane: Any, key: str, days_ago: int) -> None:
    """Make the local landing file ``key`` look delivered ``days_ago`` days ago."""
    assert isinstance(lane.store, LocalObjectStore)
    stamp = (datetime.now(UTC) - timedelta(days=days_ago)).timestamp()
    os.utime(lane.store.root / key, (stamp, stamp))


def _zip(**members: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_an_unknown_quarantine_is_closed_by_a_good_redelivery_after_a_failed_attempt(
    lane: Any, orders: Orders, redelivered: Redeliver
) -> None:
    key = lane.deliver("returns_20261102.csv", orders(10, bad_amounts=6))
    with lane.processor() as processor:  # no contract matches it yet
        first = processor.process(key)
    assert first.status == "quarantined"
    assert first.outputs[0].startswith("quarantine/_unknown/")
    (lane.config_dir / "datasets" / "returns.toml").write_text(RETURNS_CONTRACT)
    with lane.processor() as processor:  # the good re-delivery, another ETag
        again = redelivered(lane, processor, "returns_20261102.csv", orders(10))
    good = lane.store.head(key).etag

    assert again.status == "validated"
    (closed,) = again.superseded
    assert closed["key"] == first.outputs[0]
    assert closed["closed_by"] == SUPERSEDED_BY
    record = read_record(lane.store, first.outputs[0])
    assert (record.released_by, record.superseded_by_etag) == (SUPERSEDED_BY, good)
    assert list(list_quarantined(lane.store)) == []


def test_an_unknown_quarantine_of_a_killed_attempt_is_closed_by_the_good_redelivery(
    lane: Any, orders: Orders, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = lane.deliver("returns_20261102.csv", orders(10, bad_amounts=6))
    with lane.processor() as killed:

        def kill(*args: Any) -> None:  # the process dies after the quarantine is written
            raise KeyboardInterrupt

        killed.mirror = kill
        with pytest.raises(KeyboardInterrupt):
            killed.process(key)
    (left,) = list_quarantined(lane.store)
    stuck = killed.ledger.get(key)
    assert stuck is not None
    assert stuck.state == "processing"
    assert left.key.startswith("quarantine/_unknown/")

    (lane.config_dir / "datasets" / "returns.toml").write_text(RETURNS_CONTRACT)
    lane.deliver("returns_20261102.csv", orders(10))
    later = ledger_module._now() + timedelta(hours=2)  # the dead claim ran out
    monkeypatch.setattr(ledger_module, "_now", lambda: later)
    with lane.processor() as processor:
        again = processor.process(key)
    assert again.status == "validated"
    assert [c["key"] for c in again.superseded] == [left.key]
    assert read_record(lane.store, left.key).superseded


def test_a_quarantine_a_store_error_left_open_is_closed_by_the_next_delivery(
    lane: Any, orders: Orders, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = lane.deliver("returns_20261102.csv", orders(10, bad_amounts=6))
    with lane.processor() as processor:
        first = processor.process(key)  # under _unknown: no contract yet
    (lane.config_dir / "datasets" / "returns.toml").write_text(RETURNS_CONTRACT)
    lane.deliver("returns_20261102.csv", orders(10))
    with lane.processor() as processor:
        with monkeypatch.context() as patch:
            patch.setattr(process_module, "settle", _timed_out)
            validated = processor.process(key)
        assert (validated.status, validated.superseded) == ("validated", [])
        assert not read_record(lane.store, first.outputs[0]).released
        lane.deliver("returns_20261102.csv", orders(11))  # the next delivery of the key
        again = processor.process(key)
    assert [c["key"] for c in again.superseded] == [first.outputs[0]]
    assert read_record(lane.store, first.outputs[0]).superseded


def test_an_arrival_dated_quarantine_of_another_day_is_closed_after_a_failed_attempt(
    local_lane: Any, orders: Orders, redelivered: Redeliver
) -> None:
    lane = local_lane  # the arrival day is the file's modification time, set here
    (lane.config_dir / "datasets" / "arrivals.toml").write_text(ARRIVALS_CONTRACT)
    key = lane.deliver("report.csv", orders(10, bad_amounts=6), source="feed")
    _dated(lane, key, days_ago=3)
    with lane.processor() as processor:
        first = processor.process(key)
        assert first.status == "quarantined"
        again = redelivered(lane, processor, "report.csv", orders(10), source="feed")  # today

    assert again.status == "validated"
    assert first.partition != again.partition
    assert [c["key"] for c in again.superseded] == [first.outputs[0]]
    assert read_record(lane.store, first.outputs[0]).superseded
    assert list(list_quarantined(lane.store)) == []


def test_every_quarantine_of_the_key_since_the_last_validation_is_closed(
    local_lane: Any, orders: Orders, redelivered: Redeliver
) -> None:
    lane = local_lane
    (lane.config_dir / "datasets" / "arrivals.toml").write_text(ARRIVALS_CONTRACT)
    key = lane.deliver("report.csv", orders(10, bad_amounts=6), source="feed")
    _dated(lane, key, days_ago=3)
    with lane.processor() as processor:
        first = processor.process(key)
        lane.deliver("report.csv", orders(11, bad_amounts=5), source="feed")
        _dated(lane, key, days_ago=2)
        second = processor.process(key)  # quarantined again, on another day
        again = redelivered(lane, processor, "report.csv", orders(10), source="feed")
    assert (first.status, second.status, again.status) == ("quarantined",) * 2 + ("validated",)
    assert first.outputs[0] != second.outputs[0]
    assert sorted(c["key"] for c in again.superseded) == sorted(
        [first.outputs[0], second.outputs[0]]
    )
    assert list(list_quarantined(lane.store)) == []


def test_members_a_redelivery_lacks_are_removed_after_a_failed_attempt(
    lane: Any, orders: Orders, redelivered: Redeliver
) -> None:
    key = lane.deliver("orders_20261102.csv.zip", _zip(**{"a.csv": orders(5), "b.csv": orders(6)}))
    stale = "validated/orders/dt=2026-11-02/orders_20261102.csv.zip/b.csv"
    with lane.processor() as processor:
        first = processor.process(key)
        assert first.status == "validated", first
        assert stale in first.outputs, first.outputs
        renewed = _zip(**{"a.csv": orders(7)})
        again = redelivered(lane, processor, "orders_20261102.csv.zip", renewed)
    assert again.status == "validated"
    assert not lane.store.exists(stale)
    assert not lane.store.exists(stale + ".quality.json")
    assert lane.store.exists("validated/orders/dt=2026-11-02/orders_20261102.csv.zip/a.csv")


def test_a_redelivery_of_a_duplicate_keeps_the_data_of_the_original_it_duplicated(
    lane: Any, orders: Orders
) -> None:
    original = lane.deliver("orders_20261101.csv", orders(5))
    copy = lane.deliver("orders_20261102.csv", orders(5))  # byte-identical, another name
    with lane.processor() as processor:
        validated = processor.process(original)
        duplicate = processor.process(copy)
        assert duplicate.duplicate_of == original
        lane.deliver("orders_20261102.csv", orders(8))  # the vendor's real file for that day
        again = processor.process(copy)
    assert again.status == "validated"
    for key in validated.outputs:  # the original's data is not the copy's to remove
        assert lane.store.exists(key), key


def test_a_forced_reprocess_that_validates_closes_its_own_quarantine_as_revalidated(
    lane: Any, orders: Orders
) -> None:
    key = lane.deliver("orders_20261102.csv", orders(10, bad_amounts=6))
    with lane.processor() as processor:
        first = processor.process(key)
    assert first.status == "quarantined"
    contract = lane.config_dir / "datasets" / "orders.toml"
    contract.write_text(contract.read_text().replace("max = 1000", "max = 10000"))  # fixed
    etag = lane.store.head(key).etag
    with lane.processor() as processor:
        forced = processor.process(key, force=True)
        with pytest.raises(FileProcessingError) as refused:
            release(lane.store, processor.ledger, first.outputs[0], by="alice")
        again = processor.process(key, force=True)  # once closed, closed once

    assert forced.status == "validated"
    (closed,) = forced.superseded
    assert (closed["key"], closed["etag"], closed["closed_by"]) == (
        first.outputs[0],
        etag,
        REVALIDATED_BY,
    )
    record = read_record(lane.store, first.outputs[0])
    assert record.released_by == REVALIDATED_BY
    assert record.released_at == closed["closed_at"]
    assert not record.superseded  # the same delivery, not a later one
    assert "test-run" in (record.release_note or "")
    assert "validated again" in str(refused.value)
    assert "test-run" in str(refused.value)
    assert again.superseded == []
    assert list(list_quarantined(lane.store)) == []


def test_a_redo_of_a_forced_run_killed_after_the_close_reports_it_for_the_mirror(
    lane: Any, orders: Orders
) -> None:
    key = lane.deliver("orders_20261102.csv", orders(10, bad_amounts=6))
    with lane.processor() as processor:
        first = processor.process(key)
    contract = lane.config_dir / "datasets" / "orders.toml"
    contract.write_text(contract.read_text().replace("max = 1000", "max = 10000"))
    same = lane.store.head(key)
    with lane.processor() as processor:
        # The killed forced attempt: it closed the record, then died before the ledger
        # (and the database mirror) recorded anything; its interruption is recorded.
        claim = processor.ledger.claim(key, same.etag, force=True)
        assert isinstance(claim, Claim)
        assert settle(lane.store, first.outputs[0], same, run_id="killed-run") is not None
        processor.ledger.finish(claim, "failed", message="interrupted")
        redone = processor.process(key)  # the next scan takes it: no --force needed
    assert redone.status == "validated"
    (closed,) = redone.superseded
    record = read_record(lane.store, first.outputs[0])
    assert (closed["key"], closed["closed_by"]) == (record.key, REVALIDATED_BY)
    assert closed["closed_at"] == record.released_at
    assert "killed-run" in (record.release_note or "")  # closed once, by the killed attempt


def test_a_release_mid_way_is_not_closed_again(lane: Any, orders: Orders) -> None:
    key = lane.deliver("orders_20261102.csv", orders(10, bad_amounts=6))
    with lane.processor() as processor:
        first = processor.process(key)
        release(lane.store, processor.ledger, first.outputs[0], by="alice")
        contract = lane.config_dir / "datasets" / "orders.toml"
        contract.write_text(contract.read_text().replace("max = 1000", "max = 10000"))
    with lane.processor() as processor:
        again = processor.process(key)  # released: the next scan takes it
    assert again.status == "validated"
    assert again.superseded == []
    assert read_record(lane.store, first.outputs[0]).released_by == "alice"


def test_a_released_duplicate_never_carries_the_data_of_the_original_it_duplicated(
    lane: Any, orders: Orders
) -> None:
    original = lane.deliver("orders_20261101.csv", orders(5))
    copy = lane.deliver("orders_20261102.csv", orders(10, bad_amounts=6))
    with lane.processor() as processor:
        refused = processor.process(copy)  # its quarantine stays open through the duplicate
        assert refused.status == "quarantined"
        validated = processor.process(original)
        lane.deliver("orders_20261102.csv", orders(5))  # byte-identical to the original
        duplicate = processor.process(copy)
        assert duplicate.duplicate_of == original
        # The operator releases the open quarantine: the ledger record of the copy (a
        # duplicate, naming the original's outputs) is marked released.
        release(lane.store, processor.ledger, refused.outputs[0], by="alice")
        again = processor.process(copy)
        assert again.duplicate_of == original
        lane.deliver("orders_20261102.csv", orders(8))  # the vendor's real file for that day
        real = processor.process(copy)
    assert real.status == "validated"
    for key in validated.outputs:  # the original's data is not the copy's to remove
        assert lane.store.exists(key), key


def test_an_arrival_dated_delivery_of_another_day_keeps_the_days_before(
    local_lane: Any, orders: Orders
) -> None:
    lane = local_lane  # one landing key, a new file every day: every day is its own data
    (lane.config_dir / "datasets" / "arrivals.toml").write_text(ARRIVALS_CONTRACT)
    key = lane.deliver("report.csv", orders(10), source="feed")
    _dated(lane, key, days_ago=3)
    with lane.processor() as processor:
        first = processor.process(key)
        lane.deliver("report.csv", orders(11, bad_amounts=5), source="feed")
        _dated(lane, key, days_ago=2)
        refused = processor.process(key)
        lane.deliver("report.csv", orders(12), source="feed")
        _dated(lane, key, days_ago=1)
        second = processor.process(key)
        lane.deliver("report.csv", orders(13), source="feed")
        third = processor.process(key)  # today's
    assert (first.status, refused.status) == ("validated", "quarantined")
    assert (second.status, third.status) == ("validated", "validated")
    assert len({first.partition, second.partition, third.partition}) == 3
    for key in [*first.outputs, *second.outputs]:  # another day's data, not replaced
        assert lane.store.exists(key), key


def test_a_forced_reprocess_published_elsewhere_removes_what_the_same_delivery_published(
    lane: Any, orders: Orders
) -> None:
    key = lane.deliver("orders_20261102.csv", orders(10))
    with lane.processor() as processor:
        first = processor.process(key)
    contract = lane.config_dir / "datasets" / "orders.toml"
    contract.write_text(contract.read_text().replace('dataset = "orders"', 'dataset = "sales"'))
    with lane.processor() as processor:
        forced = processor.process(key, force=True)  # the same delivery, now another dataset's
    assert forced.status == "validated"
    assert forced.outputs[0].startswith("validated/sales/")
    for stale in first.outputs:  # the same data, published again under its right name
        assert not lane.store.exists(stale), stale


def test_a_close_by_a_killed_attempt_is_reported_by_the_next_delivery_of_another_etag(
    lane: Any, orders: Orders
) -> None:
    key = lane.deliver("orders_20261102.csv", orders(10, bad_amounts=6))
    with lane.processor() as processor:
        first = processor.process(key)
        lane.deliver("orders_20261102.csv", orders(10))  # the good re-delivery
        killed = lane.store.head(key)
        # Its attempt closed the quarantine, then died before the ledger (and the
        # database mirror) recorded anything; its interruption is recorded.
        claim = processor.ledger.claim(key, killed.etag)
        assert isinstance(claim, Claim)
        assert settle(lane.store, first.outputs[0], killed, run_id="killed-run") is not None
        processor.ledger.finish(claim, "failed", message="interrupted")
        lane.deliver("orders_20261102.csv", orders(12))  # the vendor sent it again meanwhile
        latest = processor.process(key)
    assert latest.status == "validated"
    record = read_record(lane.store, first.outputs[0])
    assert record.superseded_by_etag == killed.etag  # closed once, by the killed attempt
    # ... and reported now, so the database mirror closes its row too
    assert [(c["key"], c["closed_by"], c["closed_at"]) for c in latest.superseded] == [
        (record.key, SUPERSEDED_BY, record.released_at)
    ]


@pytest.mark.parametrize("between", ["failed before publishing", "killed after publishing"])
def test_a_forced_reprocess_moved_elsewhere_after_an_unfinished_attempt_leaves_no_copy(
    lane: Any, orders: Orders, monkeypatch: pytest.MonkeyPatch, between: str
) -> None:
    """The same delivery moved to another dataset by ``process --force``, whose first forced
    attempt did not finish: the redo removes what the delivery published under the old
    name, so downstream reads its rows once (one delivery manifest names them)."""

    from etl_core.artifacts import read_deliveries

    key = lane.deliver("orders_20261102.csv", orders(10))
    day = date(2026, 11, 2)
    with lane.processor() as processor:
        first = processor.process(key)
    assert first.status == "validated"
    contract = lane.config_dir / "datasets" / "orders.toml"
    contract.write_text(contract.read_text().replace('dataset = "orders"', 'dataset = "sales"'))
    with lane.processor() as processor:
        with monkeypatch.context() as patch:
            if between == "failed before publishing":
                patch.setattr(processor, "_download", _timed_out)
                expected: type[BaseException] = StorageError
            else:  # interrupted once the new partition was published, before the clean-up

                def interrupted(*args: Any, **kwargs: Any) -> None:
                    raise KeyboardInterrupt

                patch.setattr(process_module, "remove_stale", interrupted)
                expected = KeyboardInterrupt
            with pytest.raises(expected):
                processor.process(key, force=True)
        redone = processor.process(key)  # the next scan takes it: no --force needed
    assert redone.status == "validated"
    assert redone.outputs[0].startswith("validated/sales/")
    for stale in first.outputs:  # the same data, published again under its right name
        assert not lane.store.exists(stale), stale
    assert read_deliveries(lane.store, "orders", day) == []
    assert [m.delivery.key for m in read_deliveries(lane.store, "sales", day)] == [key]


def test_an_arrival_dated_reupload_of_earlier_bytes_keeps_the_day_they_were_first_published(
    local_lane: Any, orders: Orders
) -> None:
    """The same bytes (the same ETag) arriving again on a later day, after another delivery
    of the key: that day's partition, the first day's stays (no data lost)."""
    lane = local_lane
    (lane.config_dir / "datasets" / "arrivals.toml").write_text(ARRIVALS_CONTRACT)
    key = lane.deliver("report.csv", orders(10), source="feed")
    _dated(lane, key, days_ago=3)
    with lane.processor() as processor:
        first = processor.process(key)
        lane.deliver("report.csv", orders(11, bad_amounts=5), source="feed")
        _dated(lane, key, days_ago=2)
        assert processor.process(key).status == "quarantined"
        lane.deliver("report.csv", orders(10), source="feed")  # the first day's bytes again
        again = processor.process(key)
    assert (first.status, again.status) == ("validated", "validated")
    assert first.partition != again.partition
    for kept in first.outputs:
        assert lane.store.exists(kept), kept


def test_a_moved_partition_loses_its_manifest_before_its_members(
    lane: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process killed while removing what the same delivery published elsewhere leaves
    no manifest naming a removed file (downstream would refuse the partition): a member
    whose name sorts before ``_deliveries`` (a digit, a capital) goes after it."""

    from etl_core.layout import delivery_manifest_key, quality_report_key
    from file_processing.outputs import remove_stale

    landing = "landing/vendor/2026-11-02_Orders.csv"
    data = "validated/orders/dt=2026-11-02/2026-11-02_Orders.csv"
    earlier = [data, quality_report_key(data)]
    earlier.append(delivery_manifest_key("orders", date(2026, 11, 2), landing))
    for name in earlier:
        lane.store.write_bytes(name, b"{}")
    deleted: list[str] = []
    real = lane.store.delete

    def delete(name: str) -> None:
        deleted.append(name)
        real(name)

    monkeypatch.setattr(lane.store, "delete", delete)
    moved = [k.replace("validated/orders/", "validated/sales/") for k in earlier]
    remove_stale(lane.store, earlier, moved, landing_key=landing, same_delivery=True)
    assert sorted(deleted) == sorted(earlier)
    assert deleted[0] == earlier[-1], deleted  # the manifest first


def test_a_name_dated_redelivery_after_a_date_format_fix_removes_the_misdated_day(
    lane: Any, orders: Orders, caplog: pytest.LogCaptureFixture
) -> None:
    """A name-dated key is one day's file: once the contract's date format is fixed (day
    and month were swapped), its re-delivery replaces what it published on the wrong day;
    left there, downstream would load its rows on both days."""

    from etl_core.artifacts import read_deliveries, read_withdrawal_notice, utc_timestamp

    # the warning is heard whatever level an earlier test left the root logger at
    caplog.set_level(logging.WARNING, logger="file_processing.outputs")
    contract = lane.config_dir / "datasets" / "orders.toml"
    contract.write_text(contract.read_text().replace("{date:%Y%m%d}", "{date:%Y%d%m}"))
    key = lane.deliver("orders_20261102.csv", orders(10))  # 2 November, read as 11 February
    with lane.processor() as processor:
        first = processor.process(key)
    assert first.partition == "2026-02-11"
    (misdated,) = read_deliveries(lane.store, "orders", date(2026, 2, 11))
    misdated_keys = misdated.data_keys
    assert misdated_keys
    withdrawn = {k: lane.store.head(k).etag for k in misdated_keys}
    contract.write_text(contract.read_text().replace("{date:%Y%d%m}", "{date:%Y%m%d}"))
    lane.deliver("orders_20261102.csv", orders(11))  # the vendor sends it again
    with lane.processor() as processor:
        again = processor.process(key)
    assert (again.status, again.partition) == ("validated", "2026-11-02")
    for stale in first.outputs:
        assert not lane.store.exists(stale), stale
    assert read_deliveries(lane.store, "orders", date(2026, 2, 11)) == []
    assert [m.delivery.key for m in read_deliveries(lane.store, "orders", date(2026, 11, 2))] == [
        key
    ]
    # what was curated and loaded for the misdated day is withdrawn by the pipeline's next run
    # on the notice written before the delivery's manifest was removed: said
    (warned,) = [r for r in caplog.records if "withdrawn" in r.getMessage()]
    assert warned.getMessage().startswith("validated/orders/dt=2026-02-11/: the delivery")
    notice = read_withdrawal_notice(lane.store, "orders", date(2026, 2, 11))
    assert notice is not None
    assert (notice.landing_key, notice.moved_to) == (key, ("validated/orders/dt=2026-11-02/",))
    # the keys it withdrew: a build that read none of them is not withdrawn, whatever the clocks
    assert notice.data_keys == misdated_keys
    # and the very objects: a build of a new delivery under those keys is not withdrawn
    assert notice.data_etags == withdrawn
    assert notice.withdrawn_at <= utc_timestamp(datetime.now(UTC))
    assert read_withdrawal_notice(lane.store, "orders", date(2026, 11, 2)) is None


def test_a_delivery_moved_back_to_a_day_voids_that_days_withdrawal_notice(
    lane: Any, orders: Orders
) -> None:
    """A key moved off a day and later back onto it (two contract fixes) publishes there
    again: the day's notice of its move is no longer true. Left, a lifecycle rule expiring
    the day's validated partition later would make downstream withdraw its curated output
    and loaded rows (the notice is newer than a build made before the move away and never
    redone: its inputs read the same). Another key's notice of the day stays."""

    from etl_core.artifacts import read_deliveries, read_withdrawal_notice

    misdated, right = date(2026, 2, 11), date(2026, 11, 2)
    contract = lane.config_dir / "datasets" / "orders.toml"
    text = contract.read_text()
    key = lane.deliver("orders_20261102.csv", orders(10))
    contract.write_text(text.replace("{date:%Y%m%d}", "{date:%Y%d%m}"))
    with lane.processor() as processor:
        assert processor.process(key).partition == misdated.isoformat()
    contract.write_text(text)
    lane.deliver("orders_20261102.csv", orders(11))
    with lane.processor() as processor:
        assert processor.process(key).partition == right.isoformat()
    notice = read_withdrawal_notice(lane.store, "orders", misdated)
    assert notice is not None
    assert notice.landing_key == key
    contract.write_text(text.replace("{date:%Y%m%d}", "{date:%Y%d%m}"))  # back again
    lane.deliver("orders_20261102.csv", orders(12))
    with lane.processor() as processor:
        assert processor.process(key).partition == misdated.isoformat()

    assert [m.delivery.key for m in read_deliveries(lane.store, "orders", misdated)] == [key]
    assert read_withdrawal_notice(lane.store, "orders", misdated) is None
    moved_off = read_withdrawal_notice(lane.store, "orders", right)  # the move is noted there
    assert moved_off is not None
    assert moved_off.landing_key == key


def test_a_moved_partition_whose_withdrawal_notice_cannot_be_written_keeps_its_manifest(
    lane: Any, orders: Orders, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Downstream withdraws a day only on its notice: a delivery removed without one would
    leave the day's curated output and loaded rows for good. The manifest and its members
    stay (as after a failed delete), named in the ledger; the next delivery of the key
    writes the notice and removes them."""

    from etl_core.artifacts import read_deliveries
    from etl_core.layout import withdrawal_notice_key

    misdated = date(2026, 2, 11)
    contract = lane.config_dir / "datasets" / "orders.toml"
    contract.write_text(contract.read_text().replace("{date:%Y%m%d}", "{date:%Y%d%m}"))
    key = lane.deliver("orders_20261102.csv", orders(10))
    with lane.processor() as processor:
        first = processor.process(key)
        assert first.partition == misdated.isoformat()
        contract.write_text(contract.read_text().replace("{date:%Y%d%m}", "{date:%Y%m%d}"))
    notice = withdrawal_notice_key("orders", misdated)
    real = {"write_bytes": lane.store.write_bytes, "put_if": lane.store.put_if}

    def refusing(method: str) -> Callable[..., Any]:
        def refused(name: str, data: bytes, *args: Any, **kwargs: Any) -> Any:
            if name == notice:
                raise StorageError(f"{name}: the store timed out (a transient failure)")
            return real[method](name, data, *args, **kwargs)

        return refused

    lane.deliver("orders_20261102.csv", orders(11))
    with lane.processor() as processor:
        with monkeypatch.context() as patch:
            for method in real:  # the notice is written by compare-and-put
                patch.setattr(lane.store, method, refusing(method))
            again = processor.process(key)
        assert (again.status, again.partition) == ("validated", "2026-11-02")
        assert [m.delivery.key for m in read_deliveries(lane.store, "orders", misdated)] == [key]
        for kept in first.outputs:
            assert lane.store.exists(kept), kept
        record = processor.ledger.get(key)
        assert record is not None
        assert set(first.outputs) <= set(record.earlier_outputs)
        assert not lane.store.exists(notice)
        lane.deliver("orders_20261102.csv", orders(12))
        assert processor.process(key).status == "validated"
    assert lane.store.exists(notice)
    assert read_deliveries(lane.store, "orders", misdated) == []
    for stale in first.outputs:
        assert not lane.store.exists(stale), stale


def test_a_stale_member_the_store_would_not_delete_leaves_the_delivery_validated_and_owned(
    lane: Any, orders: Orders, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its data is published: a store error removing what the earlier delivery left must not
    record it failed (its content given up, a byte-identical copy under another name would
    be validated and loaded a second time); the member is removed by the next delivery."""
    key = lane.deliver("orders_20261102.csv.zip", _zip(**{"a.csv": orders(5), "b.csv": orders(6)}))
    stale = "validated/orders/dt=2026-11-02/orders_20261102.csv.zip/b.csv"
    renewed = _zip(**{"a.csv": orders(7)})
    with lane.processor() as processor:
        assert processor.process(key).status == "validated"
        lane.deliver("orders_20261102.csv.zip", renewed)
        real = lane.store.delete

        def refused(name: str) -> None:
            if name == stale:
                raise StorageError(f"{name}: the store timed out (a transient failure)")
            real(name)

        with monkeypatch.context() as patch:
            patch.setattr(lane.store, "delete", refused)
            again = processor.process(key)
        assert again.status == "validated"
        assert lane.store.exists(stale)  # left for the next delivery, named in the ledger
        record = processor.ledger.get(key)
        assert record is not None
        assert stale in record.earlier_outputs
        copy = lane.deliver("orders_20261103.csv.zip", renewed)  # the same bytes, another name
        assert processor.process(copy).duplicate_of == key
        lane.deliver("orders_20261102.csv.zip", _zip(**{"a.csv": orders(8)}))
        assert processor.process(key).status == "validated"
    assert not lane.store.exists(stale)
    assert not lane.store.exists(stale + ".quality.json")


def test_a_content_index_the_store_would_not_update_leaves_the_published_delivery_owned(
    lane: Any, orders: Orders, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once published, a store error recording the outputs in the content index must not
    record the delivery failed: it would give its content up, and a byte-identical copy
    under another name would be validated and loaded a second time."""
    body = orders(9)
    key = lane.deliver("orders_20261102.csv", body)
    with lane.processor() as processor:
        with monkeypatch.context() as patch:
            patch.setattr(processor.ledger, "record_content", _timed_out)
            first = processor.process(key)
        assert first.status == "validated"
        copy = lane.deliver("orders_20261103.csv", body)  # the same bytes, another name
        assert processor.process(copy).duplicate_of == key


def test_an_arrival_dated_reupload_of_the_same_bytes_after_a_release_keeps_the_first_day(
    local_lane: Any, orders: Orders
) -> None:
    """The same bytes (the same ETag) uploaded again on a later day after the key's record
    was released (``quarantine release`` of an older quarantine of the key marks whatever
    record the key has released): a new day's delivery, not the same upload moved by a
    contract change, so the day they were first published keeps them (no data lost)."""
    lane = local_lane
    (lane.config_dir / "datasets" / "arrivals.toml").write_text(ARRIVALS_CONTRACT)
    key = lane.deliver("report.csv", orders(10), source="feed")
    _dated(lane, key, days_ago=3)
    with lane.processor() as processor:
        first = processor.process(key)
        processor.ledger.release(key)
        lane.deliver("report.csv", orders(10), source="feed")  # today's, byte-identical
        again = processor.process(key)
    assert (first.status, again.status) == ("validated", "validated")
    assert first.partition != again.partition
    for kept in first.outputs:
        assert lane.store.exists(kept), kept


def test_an_old_partition_a_forced_move_could_not_remove_is_removed_by_the_next_arrival(
    local_lane: Any, orders: Orders, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An arrival-dated delivery moved to another dataset by ``process --force``, whose old
    manifest the store would not delete: its ledger record names the old partition, and
    the next delivery of the key (another day) removes it; forgotten, that partition stays
    published beside the moved copy and downstream reads its rows twice."""
    from etl_core.artifacts import read_deliveries
    from etl_core.layout import is_delivery_manifest

    lane = local_lane
    contract = lane.config_dir / "datasets" / "arrivals.toml"
    contract.write_text(ARRIVALS_CONTRACT)
    key = lane.deliver("report.csv", orders(10), source="feed")
    _dated(lane, key, days_ago=3)
    with lane.processor() as processor:
        first = processor.process(key)
    contract.write_text(ARRIVALS_CONTRACT.replace('"arrivals"', '"arrivals2"'))
    with lane.processor() as processor:
        real = lane.store.delete

        def refused(name: str) -> None:
            if is_delivery_manifest(name):
                raise StorageError(f"{name}: the store timed out (a transient failure)")
            real(name)

        with monkeypatch.context() as patch:
            patch.setattr(lane.store, "delete", refused)
            moved = processor.process(key, force=True)
        assert moved.status == "validated"
        assert all(lane.store.exists(k) for k in first.outputs)  # left, named in the record
        lane.deliver("report.csv", orders(11), source="feed")  # the next day's file
        _dated(lane, key, days_ago=1)
        assert processor.process(key).status == "validated"
    day = first.partition
    assert day is not None

    assert read_deliveries(lane.store, "arrivals", date.fromisoformat(day)) == []
    for stale in first.outputs:
        assert not lane.store.exists(stale), stale


@pytest.mark.parametrize("back", ["a", "b"])
def test_a_second_key_moved_off_a_day_keeps_the_first_keys_withdrawal_in_the_notice(
    lane: Any, back: str
) -> None:
    """The notice is one per day, replaced by the last move off it: two keys moved off one
    day (both misdated by one contract) leave one notice naming both their data keys, so a
    build that read only the first is still withdrawn downstream (its rows counted on two
    days otherwise). Either moved back takes only its own keys out of the notice, the
    last mover's too (its notice then still names the other's)."""

    from etl_core.artifacts import read_withdrawal_notice
    from etl_core.layout import delivery_manifest_key, quality_report_key
    from etl_core.testing.deliveries import publish_delivery
    from file_processing.outputs import remove_stale

    misdated, right = date(2026, 2, 11), date(2026, 11, 2)
    landings = {"a": "landing/a/orders_1.csv", "b": "landing/b/orders_2.csv"}

    def outputs(dt: date, name: str) -> list[str]:
        landing = landings[name]
        manifest = publish_delivery(
            lane.store, "orders", dt, {f"{name}.csv": b"x\n"}, landing=landing
        )
        keys = list(manifest.data_keys)
        keys += [quality_report_key(k) for k in keys]
        return [*keys, delivery_manifest_key("orders", dt, landing)]

    moves = {name: (outputs(misdated, name), outputs(right, name)) for name in landings}
    data = {name: before[0] for name, (before, _) in moves.items()}
    for name, (before, after) in moves.items():  # a, then b, moved off the misdated day
        left = remove_stale(lane.store, before, after, landing_key=landings[name], one_day_key=True)
        assert left == []

    notice = read_withdrawal_notice(lane.store, "orders", misdated)
    assert notice is not None
    assert notice.landing_key == landings["b"]
    assert sorted(notice.data_keys) == sorted(data.values())

    after = moves[back][1]  # one of them moved back onto the misdated day
    again = outputs(misdated, back)
    assert (
        remove_stale(lane.store, after, again, landing_key=landings[back], one_day_key=True) == []
    )
    kept = read_withdrawal_notice(lane.store, "orders", misdated)
    assert kept is not None
    (other,) = set(landings) - {back}
    assert kept.data_keys == (data[other],)


def test_two_keys_moved_off_a_day_at_once_are_both_named_in_its_notice(
    lane: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers of one scan move two keys off the same day at once: the notice written
    between one's read of the day's notice and its write is not overwritten (a
    compare-and-put), so both keys' data keys stay named."""

    from etl_core.artifacts import WithdrawalNotice, read_withdrawal_notice
    from etl_core.layout import delivery_manifest_key, quality_report_key, withdrawal_notice_key
    from etl_core.testing.deliveries import publish_delivery
    from file_processing.outputs import remove_stale

    misdated, right = date(2026, 2, 11), date(2026, 11, 2)
    notice_key = withdrawal_notice_key("orders", misdated)

    def outputs(dt: date, name: str) -> list[str]:
        landing = f"landing/{name}/orders.csv"
        manifest = publish_delivery(
            lane.store, "orders", dt, {f"{name}.csv": b"x\n"}, landing=landing
        )
        keys = list(manifest.data_keys)
        keys += [quality_report_key(k) for k in keys]
        return [*keys, delivery_manifest_key("orders", dt, landing)]

    a_data = outputs(misdated, "a")[0]
    before, after = outputs(misdated, "b"), outputs(right, "b")
    theirs = WithdrawalNotice(
        dataset="orders",
        dt=misdated.isoformat(),
        landing_key="landing/a/orders.csv",
        withdrawn_at="2026-12-07T10:00:00.000000Z",
        data_keys=(a_data,),
    )
    raced: list[str] = []
    write_bytes, put_if = lane.store.write_bytes, lane.store.put_if

    def race(key: str) -> None:
        if key == notice_key and not raced:  # the other worker's notice lands first
            raced.append(key)
            write_bytes(key, theirs.to_json())

    def racing_write(key: str, data: Any) -> None:
        race(key)
        write_bytes(key, data)

    def racing_put(key: str, data: Any, *, etag: str | None) -> str:
        race(key)
        return put_if(key, data, etag=etag)

    monkeypatch.setattr(lane.store, "write_bytes", racing_write)
    monkeypatch.setattr(lane.store, "put_if", racing_put)
    left = remove_stale(
        lane.store, before, after, landing_key="landing/b/orders.csv", one_day_key=True
    )
    assert left == []
    assert raced == [notice_key]
    notice = read_withdrawal_notice(lane.store, "orders", misdated)
    assert notice is not None
    assert sorted(notice.data_keys) == sorted([a_data, before[0]])


def test_a_new_key_publishing_a_withdrawn_data_key_again_drops_it_from_the_notice(
    lane: Any, orders: Orders
) -> None:
    """A folder-dated key moved off a day (its folder's date format fixed) withdrew
    ``validated/orders/dt=<day>/orders.csv`` there; the day's own file, a key never
    delivered before, then publishes that very data key again. The notice is no longer
    true of it: left naming it, downstream takes the day's build from the new file for a
    build of the withdrawn delivery, and withdraws it (curated output, loaded rows) once
    the day's validated partition is gone for another reason (a lifecycle rule)."""

    from etl_core.artifacts import read_deliveries, read_withdrawal_notice

    misdated, right = date(2026, 2, 11), date(2026, 11, 2)
    contract = lane.config_dir / "datasets" / "orders.toml"
    fixed = contract.read_text().replace(
        'pattern = "orders_{date:%Y%m%d}.csv*"',
        'pattern = "{date:%Y-%m-%d}/*.csv"\ndate_from = "path"',
    )
    contract.write_text(fixed.replace("%Y-%m-%d", "%Y-%d-%m"))  # day and month swapped
    moved = lane.deliver("2026-11-02/orders.csv", orders(10))
    with lane.processor() as processor:
        assert processor.process(moved).partition == misdated.isoformat()
    contract.write_text(fixed)
    lane.deliver("2026-11-02/orders.csv", orders(11))  # the vendor sends it again
    with lane.processor() as processor:
        assert processor.process(moved).partition == right.isoformat()
        notice = read_withdrawal_notice(lane.store, "orders", misdated)
        assert notice is not None
        assert notice.data_keys == ("validated/orders/dt=2026-02-11/orders.csv",)
        assert notice.emptied  # the day's last delivery moved: withdrawn, never lost
        extra = lane.deliver("2026-02-11/extra.csv", orders(3))  # another file of the day
        assert processor.process(extra).partition == misdated.isoformat()
        kept = read_withdrawal_notice(lane.store, "orders", misdated)
        assert kept is not None
        assert (kept.data_keys, kept.emptied) == (notice.data_keys, False)
        own = lane.deliver("2026-02-11/orders.csv", orders(12))  # the day's own file
        outcome = processor.process(own)

    assert (outcome.status, outcome.partition) == ("validated", misdated.isoformat())
    delivered = sorted(m.delivery.key for m in read_deliveries(lane.store, "orders", misdated))
    assert delivered == sorted([extra, own])
    assert read_withdrawal_notice(lane.store, "orders", misdated) is None


def test_a_data_key_withdrawn_twice_with_other_bytes_is_noted_by_key_only_and_voided_whole(
    lane: Any,
) -> None:
    """A key moved off a day whose void failed (its notice still names the object it
    withdrew), delivered there again and moved off again, withdrew two objects under one
    data key: the notice names the key without an ETag (any build that read it was of a
    withdrawn delivery). Another key's withdrawal keeps its ETag, and moving the key back
    drops the key and its ETag from the notice."""

    from etl_core.artifacts import WithdrawalNotice, read_withdrawal_notice
    from etl_core.layout import delivery_manifest_key, quality_report_key, validated_key
    from etl_core.testing.deliveries import publish_delivery
    from file_processing.outputs import remove_stale

    misdated, right = date(2026, 2, 11), date(2026, 11, 2)
    landing = "landing/a/orders.csv"

    def outputs(dt: date) -> list[str]:
        manifest = publish_delivery(lane.store, "orders", dt, {"a.csv": b"x\n"}, landing=landing)
        keys = list(manifest.data_keys)
        keys += [quality_report_key(k) for k in keys]
        return [*keys, delivery_manifest_key("orders", dt, landing)]

    before, after = outputs(misdated), outputs(right)
    data, other = before[0], validated_key("orders", misdated, "other.csv")
    earlier = WithdrawalNotice(
        dataset="orders",
        dt=misdated.isoformat(),
        landing_key=landing,
        withdrawn_at="2026-12-07T10:00:00.000000Z",
        data_keys=(data, other),
        data_etags={data: "the-object-withdrawn-first", other: "the-other-keys-object"},
    )
    lane.store.write_bytes(earlier.key, earlier.to_json())
    assert lane.store.head(data).etag != "the-object-withdrawn-first"

    assert remove_stale(lane.store, before, after, landing_key=landing, one_day_key=True) == []

    notice = read_withdrawal_notice(lane.store, "orders", misdated)
    assert notice is not None
    assert sorted(notice.data_keys) == sorted([data, other])
    assert notice.data_etags == {other: "the-other-keys-object"}
    again = outputs(misdated)  # moved back
    assert remove_stale(lane.store, after, again, landing_key=landing, one_day_key=True) == []
    voided = read_withdrawal_notice(lane.store, "orders", misdated)
    assert voided is not None
    assert (voided.data_keys, voided.data_etags) == ((other,), {other: "the-other-keys-object"})


def test_another_keys_first_delivery_landing_while_a_move_lists_the_day_is_not_emptied(
    lane: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A move lists the day's other deliveries to say whether it leaves the day none
    (``emptied``); another key's first delivery published right after that listing, its
    void run before the notice is written, finds no notice to clear. The move checks the
    day again once its notice is written: the notice does not say the day emptied (a
    backfill unit of the day would skip it as withdrawn instead of naming a lost input)."""

    from etl_core.artifacts import read_withdrawal_notice
    from etl_core.layout import deliveries_prefix, delivery_manifest_key, quality_report_key
    from etl_core.testing.deliveries import publish_delivery
    from file_processing.outputs import remove_stale, void_withdrawals

    misdated, right = date(2026, 2, 11), date(2026, 11, 2)
    landing, newcomer = "landing/a/orders.csv", "landing/new/orders.csv"

    def outputs(dt: date, landing: str) -> list[str]:
        manifest = publish_delivery(lane.store, "orders", dt, {"a.csv": b"x\n"}, landing=landing)
        keys = list(manifest.data_keys)
        keys += [quality_report_key(k) for k in keys]
        return [*keys, delivery_manifest_key("orders", dt, landing)]

    before, after = outputs(misdated, landing), outputs(right, landing)
    listing, landed = lane.store.list, []

    def list_then_land(prefix: str = "") -> Any:
        found = list(listing(prefix))
        if prefix == deliveries_prefix("orders", misdated) and not landed:
            landed.append(True)  # the newcomer's first delivery, its void: no notice yet
            published = publish_delivery(
                lane.store, "orders", misdated, {"new.csv": b"y\n"}, landing=newcomer
            )
            void_withdrawals(lane.store, published.data_keys, newcomer)
        return iter(found)

    monkeypatch.setattr(lane.store, "list", list_then_land)
    assert remove_stale(lane.store, before, after, landing_key=landing, one_day_key=True) == []
    monkeypatch.undo()

    assert landed
    notice = read_withdrawal_notice(lane.store, "orders", misdated)
    assert notice is not None
    assert notice.data_keys == (before[0],)
    assert not notice.emptied


def test_moving_a_many_member_delivery_off_a_day_reads_its_etags_without_a_request_per_member(
    lane: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An archive delivery of up to ``max_entries`` members moved off a day: its notice
    records each member's ETag from the partition's listing, not a HEAD per member (10,000
    requests, minutes on S3, for one move)."""

    from etl_core.artifacts import read_withdrawal_notice
    from etl_core.layout import delivery_manifest_key, quality_report_key
    from etl_core.testing.deliveries import publish_delivery
    from file_processing.outputs import remove_stale

    misdated, right = date(2026, 2, 11), date(2026, 11, 2)
    landing = "landing/a/orders.zip"
    files = {f"part-{n:03d}.csv": f"{n}\n".encode() for n in range(40)}

    def outputs(dt: date) -> list[str]:
        manifest = publish_delivery(lane.store, "orders", dt, files, landing=landing)
        keys = list(manifest.data_keys)
        keys += [quality_report_key(k) for k in keys]
        return [*keys, delivery_manifest_key("orders", dt, landing)]

    before, after = outputs(misdated), outputs(right)
    members = before[:40]
    etags = {key: lane.store.head(key).etag for key in members}
    heads: list[str] = []
    head = lane.store.head

    def counted(key: str) -> Any:
        heads.append(key)
        return head(key)

    monkeypatch.setattr(lane.store, "head", counted)
    assert remove_stale(lane.store, before, after, landing_key=landing, one_day_key=True) == []
    monkeypatch.undo()

    notice = read_withdrawal_notice(lane.store, "orders", misdated)
    assert notice is not None
    assert notice.data_etags == etags
    assert len([key for key in heads if key in etags]) < 4


@pytest.mark.parametrize("members", [2, 40])
def test_a_move_whose_etags_the_store_will_not_give_names_its_data_keys_by_key_only(
    lane: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, members: int
) -> None:
    """The store fails reading the withdrawn objects' ETags (a HEAD each for a few members,
    the partition's listing for many): the move goes on, its notice names the data keys
    without ETags (downstream withdraws any build that read one, as before ETags were
    recorded), and a warning names the delivery."""

    from etl_core.artifacts import read_withdrawal_notice
    from etl_core.layout import delivery_manifest_key, quality_report_key, validated_prefix
    from etl_core.testing.deliveries import publish_delivery
    from file_processing.outputs import remove_stale

    misdated, right = date(2026, 2, 11), date(2026, 11, 2)
    landing = "landing/a/orders.zip"
    files = {f"part-{n:03d}.csv": f"{n}\n".encode() for n in range(members)}

    def outputs(dt: date) -> list[str]:
        manifest = publish_delivery(lane.store, "orders", dt, files, landing=landing)
        keys = list(manifest.data_keys)
        keys += [quality_report_key(k) for k in keys]
        return [*keys, delivery_manifest_key("orders", dt, landing)]

    before, after = outputs(misdated), outputs(right)
    head, listing = lane.store.head, lane.store.list

    def failing_head(key: str) -> Any:
        if key in before[:members]:
            raise StorageError("the store timed out (a transient failure)", key=key)
        return head(key)

    def failing_list(prefix: str = "") -> Any:
        if prefix == validated_prefix("orders", misdated):
            raise StorageError("the store timed out (a transient failure)", key=prefix)
        return listing(prefix)

    monkeypatch.setattr(lane.store, "head", failing_head)
    monkeypatch.setattr(lane.store, "list", failing_list)
    with caplog.at_level("WARNING", logger="file_processing.outputs"):
        assert remove_stale(lane.store, before, after, landing_key=landing, one_day_key=True) == []
    monkeypatch.undo()

    notice = read_withdrawal_notice(lane.store, "orders", misdated)
    assert notice is not None
    assert sorted(notice.data_keys) == sorted(before[:members])
    assert notice.data_etags == {}
    manifest = delivery_manifest_key("orders", misdated, landing)
    assert any(
        manifest in r.getMessage() and "by key only" in r.getMessage() for r in caplog.records
    )
    assert not lane.store.exists(manifest)


def test_a_redelivery_renaming_members_then_moving_off_the_day_names_every_version_withdrawn(
    lane: Any,
) -> None:
    """A corrected archive under the same key renames a member on the same day, then (a
    date-format fix) the key moves off that day before downstream rebuilt it. The day's
    build read the first version's member: the notice names it, with its ETag, beside the
    moved version's, so downstream withdraws that build instead of keeping its rows on both
    days for good. Until the move, the day still has the delivery (not ``emptied``)."""

    from etl_core.artifacts import read_withdrawal_notice
    from file_processing.outputs import remove_stale

    misdated, right = date(2026, 2, 11), date(2026, 11, 2)
    landing = "landing/a/orders.zip"

    def outputs(dt: date, names: list[str]) -> list[str]:
        return delivered(lane.store, dt, names, landing)

    first = outputs(misdated, ["a.csv", "b.csv"])
    dropped = first[0]
    etag = lane.store.head(dropped).etag
    corrected = outputs(misdated, ["b.csv", "c.csv"])
    assert remove_stale(lane.store, first, corrected, landing_key=landing, one_day_key=True) == []

    assert not lane.store.exists(dropped)
    notice = read_withdrawal_notice(lane.store, "orders", misdated)
    assert notice is not None
    assert notice.data_keys == (dropped,)
    assert notice.data_etags == {dropped: etag}
    assert not notice.emptied

    moved = outputs(right, ["b.csv", "c.csv"])
    assert remove_stale(lane.store, corrected, moved, landing_key=landing, one_day_key=True) == []

    notice = read_withdrawal_notice(lane.store, "orders", misdated)
    assert notice is not None
    assert notice.data_keys == tuple(sorted([dropped, *corrected[:2]]))
    assert notice.data_etags[dropped] == etag
    assert notice.emptied


def test_a_redelivery_keeping_its_members_writes_no_notice(lane: Any) -> None:
    """The usual corrected file under the same key and name: nothing dropped, no notice."""

    from etl_core.layout import delivery_manifest_key, quality_report_key, withdrawal_notice_key
    from etl_core.testing.deliveries import publish_delivery
    from file_processing.outputs import remove_stale

    day, landing = date(2026, 2, 11), "landing/a/orders.csv"

    def outputs(body: bytes) -> list[str]:
        files = {"orders.csv": body}
        manifest = publish_delivery(lane.store, "orders", day, files, landing=landing)
        keys = list(manifest.data_keys)
        return [*keys, quality_report_key(keys[0]), delivery_manifest_key("orders", day, landing)]

    first, corrected = outputs(b"1\n"), outputs(b"2\n")
    assert remove_stale(lane.store, first, corrected, landing_key=landing, one_day_key=True) == []
    assert not lane.store.exists(withdrawal_notice_key("orders", day))


def test_members_dropped_whose_notice_cannot_be_written_are_left_for_the_next_delivery(
    lane: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store refuses the notice naming the members a corrected archive dropped: they
    stay (returned, so the ledger record names them and the next delivery retries), never
    removed unnamed while a build of the earlier version may have read them."""

    from etl_core.layout import quality_report_key, withdrawal_notice_key
    from file_processing.outputs import remove_stale

    day, landing = date(2026, 2, 11), "landing/a/orders.zip"

    def outputs(names: list[str]) -> list[str]:
        return delivered(lane.store, day, names, landing)

    first, corrected = outputs(["a.csv", "b.csv"]), outputs(["b.csv", "c.csv"])
    notice = withdrawal_notice_key("orders", day)
    with notice_writes_refused(lane.store, notice):
        left = remove_stale(lane.store, first, corrected, landing_key=landing, one_day_key=True)

    assert sorted(left) == sorted([first[0], quality_report_key(first[0])])
    assert lane.store.exists(first[0])
    assert not lane.store.exists(notice)


def test_a_member_renamed_back_by_a_later_redelivery_is_no_longer_named_withdrawn(
    lane: Any,
) -> None:
    """A corrected archive renames a member on the same day (named in the day's notice),
    then the next one puts the first version's member back, byte for byte (the wrong
    correction reverted). The member is published again under the key: the notice no
    longer names it. Left named, with the very ETag the day publishes now, a rebuild that
    reads it never spends the notice, and a lifecycle rule expiring the day later
    withdraws its current build downstream."""

    from etl_core.artifacts import read_withdrawal_notice
    from file_processing.outputs import remove_stale

    day, landing = date(2026, 2, 11), "landing/a/orders.zip"

    def outputs(names: list[str]) -> list[str]:
        return delivered(lane.store, day, names, landing)

    first = outputs(["a.csv", "b.csv"])
    renamed = outputs(["b.csv", "c.csv"])
    assert remove_stale(lane.store, first, renamed, landing_key=landing, one_day_key=True) == []
    reverted = outputs(["a.csv", "b.csv"])
    assert remove_stale(lane.store, renamed, reverted, landing_key=landing, one_day_key=True) == []

    notice = read_withdrawal_notice(lane.store, "orders", day)
    assert notice is not None  # c.csv, renamed away in turn, is named
    assert first[0] not in notice.data_keys
    assert first[0] not in notice.data_etags
    assert notice.data_keys == (renamed[1],)
    assert not notice.emptied


def test_a_redelivery_redone_after_its_dropped_members_were_removed_keeps_their_etags(
    lane: Any,
) -> None:
    """The worker is killed after removing the members a corrected archive dropped, before
    the ledger recorded the delivery: the redo removes them again (gone already). The
    notice still names them with the ETags of the objects withdrawn; the redo read none
    (nothing there now) and must not turn them into keys judged by key only."""

    from etl_core.artifacts import read_withdrawal_notice
    from file_processing.outputs import remove_stale

    day, landing = date(2026, 2, 11), "landing/a/orders.zip"

    def outputs(names: list[str]) -> list[str]:
        return delivered(lane.store, day, names, landing)

    first = outputs(["a.csv", "b.csv"])
    etag = lane.store.head(first[0]).etag
    corrected = outputs(["b.csv", "c.csv"])
    assert remove_stale(lane.store, first, corrected, landing_key=landing, one_day_key=True) == []
    assert not lane.store.exists(first[0])
    # redone from the same ledger record (the kill came before it was updated)
    assert remove_stale(lane.store, first, corrected, landing_key=landing, one_day_key=True) == []

    notice = read_withdrawal_notice(lane.store, "orders", day)
    assert notice is not None
    assert notice.data_keys == (first[0],)
    assert notice.data_etags == {first[0]: etag}


def test_members_left_by_a_failed_notice_are_named_when_the_key_then_moves_off_the_day(
    lane: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A corrected archive renamed the day's only member; the notice naming the member
    renamed away could not be written, so it stayed (the ledger record names it). The
    next delivery moves the key off the day (a date-format fix): the move's notice names
    that member too, beside the corrected version's, before removing it. Named by the
    corrected version's members only, a build of the first version (which read none of
    them) would be kept downstream, its rows counted on both days."""

    from etl_core.artifacts import read_withdrawal_notice
    from etl_core.layout import withdrawal_notice_key
    from file_processing.outputs import remove_stale

    misdated, right = date(2026, 2, 11), date(2026, 11, 2)
    landing = "landing/a/orders.zip"

    def outputs(dt: date, names: list[str]) -> list[str]:
        return delivered(lane.store, dt, names, landing)

    first = outputs(misdated, ["a.csv"])
    etag = lane.store.head(first[0]).etag
    corrected = outputs(misdated, ["c.csv"])
    notice = withdrawal_notice_key("orders", misdated)
    with notice_writes_refused(lane.store, notice):
        left = remove_stale(lane.store, first, corrected, landing_key=landing, one_day_key=True)
    assert lane.store.exists(first[0])

    moved = outputs(right, ["c.csv"])
    previous = [*left, *corrected]  # the ledger record: its outputs and what it left
    assert (
        remove_stale(
            lane.store, previous, moved, landing_key=landing, one_day_key=True, leftovers=left
        )
        == []
    )

    assert not lane.store.exists(first[0])
    withdrawn = read_withdrawal_notice(lane.store, "orders", misdated)
    assert withdrawn is not None
    assert first[0] in withdrawn.data_keys
    assert withdrawn.data_etags[first[0]] == etag
    assert corrected[0] in withdrawn.data_keys
    assert withdrawn.emptied


def delivered(store: ObjectStore, dt: date, names: list[str], landing: str) -> list[str]:
    """Publish members ``names`` (each holding its own name) as ``landing``'s delivery of
    ``orders`` on ``dt``: its outputs, as the ledger records them."""
    files = {name: f"{name}\n".encode() for name in names}
    from etl_core.testing.deliveries import publish_delivery

    manifest = publish_delivery(store, "orders", dt, files, landing=landing)
    keys = list(manifest.data_keys)
    keys += [quality_report_key(k) for k in keys]
    return [*keys, delivery_manifest_key("orders", dt, landing)]


@contextmanager
def notice_writes_refused(store: ObjectStore, notice: str) -> Iterator[None]:
    """Within: the store fails every write of withdrawal notice ``notice`` (a transient
    store error); other writes go through."""
    put_if = store.put_if

    def refusing(key: str, data: Any, *, etag: str | None) -> str:
        if key == notice:
            raise StorageError("the store timed out (a transient failure)", key=key)
        return put_if(key, data, etag=etag)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "put_if", refusing)
        yield
