"""A quarantine closed as superseded once a later delivery of the same landing key is
validated: gone from ``quarantine list`` and from the observability lane's open count."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from etl_core.artifacts import SUPERSEDED_BY, QuarantineRecord
from etl_core.storage import ObjectInfo
from file_processing import ledger as ledger_module
from file_processing.errors import FileProcessingError
from file_processing.ledger import Claim, LedgerConflictError
from file_processing.outcome import Outcome
from file_processing.quarantine import list_quarantined, read_record, release, supersede
from file_processing.scan import ScanSummary

Orders = Callable[..., bytes]


def _open_quarantines(store: Any) -> int:
    """The observability lane's open-quarantine count (its gauge's value), every dataset."""
    from observability.storage_index import StorageIndex

    totals = StorageIndex(store).collect(datetime.now(UTC)).totals()
    return sum(sum(t.open_quarantines.values()) for t in totals)


def test_a_good_redelivery_closes_the_earlier_quarantine_as_superseded(
    lane: Any, orders: Orders
) -> None:
    key = lane.deliver("orders_20261102.csv", orders(10, bad_amounts=6))
    with lane.processor() as processor:
        first = processor.process(key)
        assert first.status == "quarantined"
        bad = read_record(lane.store, first.outputs[0])
        assert [r.key for r in list_quarantined(lane.store)] == [bad.key]
        assert _open_quarantines(lane.store) == 1

        lane.deliver("orders_20261102.csv", orders(10))  # the vendor's good re-delivery
        good_etag = lane.store.head(key).etag
        again = processor.process(key)

    assert again.status == "validated"
    (closed,) = again.superseded
    assert (closed["key"], closed["etag"]) == (bad.key, bad.source_etag)
    record = read_record(lane.store, bad.key)
    assert record.superseded
    assert record.released
    assert record.superseded_by_etag == good_etag != bad.source_etag
    assert record.released_by == SUPERSEDED_BY
    assert record.released_at == closed["closed_at"]
    assert good_etag in (record.release_note or "")
    assert "test-run" in (record.release_note or "")
    assert (record.reason, record.failed_checks) == (bad.reason, bad.failed_checks)
    assert lane.store.exists(bad.key)  # the refused original stays for inspection
    assert list(list_quarantined(lane.store)) == []
    assert [r.key for r in list_quarantined(lane.store, include_released=True)] == [bad.key]
    assert _open_quarantines(lane.store) == 0
    assert ScanSummary(outcomes=[first, again]).superseded() == 1


def test_a_superseded_record_reads_as_closed_to_a_reader_without_the_field(
    lane: Any, orders: Orders
) -> None:
    key = lane.deliver("orders_20261102.csv", orders(10, bad_amounts=6))
    with lane.processor() as processor:
        first = processor.process(key)
        lane.deliver("orders_20261102.csv", orders(10))
        processor.process(key)
    document = json.loads(lane.store.read_bytes(first.outputs[1]))
    assert document["schema_version"] == QuarantineRecord.SCHEMA_VERSION  # no version bump
    # What the previous release reads: the fields it knows say closed (released_at set).
    assert document["released_at"]
    assert document["released_by"] == SUPERSEDED_BY
    # A record without the new field (as the previous release wrote it) still reads, open.
    del document["superseded_by_etag"]
    document.update(released_at=None, released_by=None, release_note=None)
    older = QuarantineRecord.from_dict(document)
    assert not older.superseded
    assert not older.released


def test_the_same_delivery_and_other_keys_leave_their_quarantines_open(
    lane: Any, orders: Orders
) -> None:
    key = lane.deliver("orders_20261102.csv", orders(10, bad_amounts=6))
    other = lane.deliver("orders_20261103.csv", orders(10, bad_amounts=6))
    with lane.processor() as processor:
        first = processor.process(key)
        processor.process(other)
        assert processor.process(key).status == "skipped"  # the same ETag scanned again
        same = lane.store.head(key)
        assert supersede(lane.store, first.outputs[0], same, run_id="r2") is None
        assert len(list(list_quarantined(lane.store))) == 2

        lane.deliver("orders_20261102.csv", orders(10))
        assert processor.process(key).status == "validated"
    (still_open,) = list_quarantined(lane.store)
    assert still_open.source_key == other
    assert not still_open.released
    assert _open_quarantines(lane.store) == 1


def test_a_released_quarantine_is_not_superseded_again(lane: Any, orders: Orders) -> None:
    key = lane.deliver("orders_20261102.csv", orders(10, bad_amounts=6))
    with lane.processor() as processor:
        first = processor.process(key)
        release(lane.store, processor.ledger, first.outputs[0], by="alice")
        lane.deliver("orders_20261102.csv", orders(10))
        again = processor.process(key)
    assert again.status == "validated"
    assert again.superseded == []
    record = read_record(lane.store, first.outputs[0])
    assert (record.released_by, record.superseded) == ("alice", False)


def test_two_writers_closing_one_record_at_once_close_it_once(lane: Any, orders: Orders) -> None:
    key = lane.deliver("orders_20261102.csv", orders(10, bad_amounts=6))
    with lane.processor() as processor:
        first = processor.process(key)
    lane.deliver("orders_20261102.csv", orders(10))
    good = lane.store.head(key)
    writers = 4
    barrier = threading.Barrier(writers, timeout=60)
    results: list[QuarantineRecord | None] = []
    lock = threading.Lock()

    def close(n: int) -> None:
        barrier.wait()
        record = supersede(lane.store, first.outputs[0], good, run_id=f"run-{n}")
        with lock:
            results.append(record)

    threads = [threading.Thread(target=close, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == writers
    (winner,) = [r for r in results if r is not None]
    stored = read_record(lane.store, first.outputs[0])
    assert stored == winner
    assert stored.superseded_by_etag == good.etag


def test_a_delivery_of_another_key_does_not_close_a_record(lane: Any, orders: Orders) -> None:
    key = lane.deliver("orders_20261102.csv", orders(10, bad_amounts=6))
    with lane.processor() as processor:
        first = processor.process(key)
    stranger = ObjectInfo(
        key="landing/vendor/orders_20261102.csv.bak",
        size=1,
        etag="other",
        last_modified=datetime.now(UTC),
    )
    assert supersede(lane.store, first.outputs[0], stranger, run_id="r2") is None
    assert not read_record(lane.store, first.outputs[0]).released


def test_a_later_quarantine_of_the_key_keeps_the_superseded_episode_in_its_history(
    lane: Any, orders: Orders
) -> None:
    key = lane.deliver("orders_20261102.csv", orders(10, bad_amounts=6))
    with lane.processor() as processor:
        first = processor.process(key)
        lane.deliver("orders_20261102.csv", orders(10))
        good = lane.store.head(key).etag
        processor.process(key)
        lane.deliver("orders_20261102.csv", orders(12, bad_amounts=7))
        third = processor.process(key)
    assert third.status == "quarantined"
    latest = read_record(lane.store, first.outputs[0])
    assert not latest.released
    (episode,) = latest.history
    assert episode["released_by"] == SUPERSEDED_BY
    assert episode["superseded_by_etag"] == good
    assert episode["released_at"]


def test_a_redo_of_a_run_killed_after_the_close_reports_it_for_the_mirror(
    lane: Any, orders: Orders
) -> None:
    key = lane.deliver("orders_20261102.csv", orders(10, bad_amounts=6))
    with lane.processor() as processor:
        first = processor.process(key)
        lane.deliver("orders_20261102.csv", orders(10))
        good = lane.store.head(key)
        # The killed attempt: it closed the record, then died before the ledger (and the
        # database mirror) recorded anything; its interruption is recorded as failed.
        claim = processor.ledger.claim(key, good.etag)
        assert isinstance(claim, Claim)
        assert supersede(lane.store, first.outputs[0], good, run_id="killed-run") is not None
        processor.ledger.finish(claim, "failed", message="interrupted")

        redone = processor.process(key)
        forced = processor.process(key, force=True)  # a finished delivery redone: not again
    assert redone.status == "validated"
    (closed,) = redone.superseded  # what the database mirror closes its row from
    record = read_record(lane.store, first.outputs[0])
    assert (closed["key"], closed["etag"]) == (record.key, record.source_etag)
    assert closed["closed_at"] == record.released_at
    assert "killed-run" in (record.release_note or "")  # closed once, by the killed attempt
    assert forced.status == "validated"
    assert forced.superseded == []


def test_a_new_key_validated_reads_no_quarantine_record(
    lane: Any, orders: Orders, monkeypatch: Any
) -> None:
    key = lane.deliver("orders_20261102.csv", orders(10))
    read_versioned = lane.store.read_versioned
    quarantine_reads: list[str] = []

    def counted(k: str) -> Any:
        if k.startswith("quarantine/"):
            quarantine_reads.append(k)
        return read_versioned(k)

    monkeypatch.setattr(lane.store, "read_versioned", counted)
    with lane.processor() as processor:
        assert processor.process(key).status == "validated"
    assert quarantine_reads == []  # the ledger never saw the key: nothing to supersede


def test_releasing_a_superseded_record_says_it_was_superseded_and_by_what(
    lane: Any, orders: Orders
) -> None:
    key = lane.deliver("orders_20261102.csv", orders(10, bad_amounts=6))
    with lane.processor() as processor:
        first = processor.process(key)
        lane.deliver("orders_20261102.csv", orders(10))
        good = lane.store.head(key).etag
        processor.process(key)
        try:
            release(lane.store, processor.ledger, first.outputs[0], by="alice")
        except FileProcessingError as exc:
            message = str(exc)
        else:
            raise AssertionError("a superseded record was released")
    assert "superseded" in message
    assert good in message
    assert first.outputs[0] in message
    assert read_record(lane.store, first.outputs[0]).released_by == SUPERSEDED_BY


def test_a_newer_quarantine_by_a_worker_that_took_the_key_over_stays_open(
    lane: Any, orders: Orders, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = lane.deliver("orders_20261102.csv", orders(10, bad_amounts=6))
    newer: list[Outcome] = []
    with lane.processor() as slow:
        first = slow.process(key)
        lane.deliver("orders_20261102.csv", orders(10))  # the good re-delivery, ETag 2
        record_content = slow.ledger.record_content

        def taken_over(entry: Any) -> None:
            record_content(entry)
            # While the slow worker published, its claim ran out (two hours on, as the
            # ledger sees it): the vendor delivered again and another worker took the key.
            lane.deliver("orders_20261102.csv", orders(12, bad_amounts=7))  # ETag 3
            later = ledger_module._now() + timedelta(hours=2)
            with monkeypatch.context() as clock, lane.processor() as other:
                clock.setattr(ledger_module, "_now", lambda: later)
                newer.append(other.process(key))

        monkeypatch.setattr(slow.ledger, "record_content", taken_over)
        with pytest.raises(LedgerConflictError):  # its ledger record is refused, as before
            slow.process(key)
    (third,) = newer
    assert third.status == "quarantined"
    record = read_record(lane.store, first.outputs[0])
    assert record.source_etag == lane.store.head(key).etag  # ETag 3's quarantine
    assert not record.released  # not closed as superseded by the older ETag 2
    assert len(list(list_quarantined(lane.store))) == 1


@pytest.mark.parametrize(
    "by",
    [
        "superseded\u200b",  # a zero-width space after it: shown as "superseded"
        "\u00adrevalidated",  # a soft hyphen before it
        "".join(chr(ord(c) + 0xFEE0) for c in "superseded"),  # in fullwidth letters
        "",
        "  ",
        "b" * 201,  # longer than the database mirror's released_by (200)
    ],
)
def test_a_release_by_a_lookalike_of_the_lanes_names_a_blank_or_overlong_name_is_refused(
    local_lane: Any, orders: Orders, by: str
) -> None:
    """A hand release never reads as the lane's close, and always names someone the
    database mirror can hold (a longer name failed there after the store had released
    it: the mirror kept it open for good)."""
    key = local_lane.deliver("orders_20261102.csv", orders(10, bad_amounts=6))
    with local_lane.processor() as processor:
        first = processor.process(key)
        with pytest.raises(FileProcessingError, match="--by"):
            release(local_lane.store, processor.ledger, first.outputs[0], by=by)
    assert not read_record(local_lane.store, first.outputs[0]).released


def test_a_release_by_a_name_of_200_characters_is_taken(local_lane: Any, orders: Orders) -> None:
    key = local_lane.deliver("orders_20261102.csv", orders(10, bad_amounts=6))
    with local_lane.processor() as processor:
        first = processor.process(key)
        release(local_lane.store, processor.ledger, first.outputs[0], by="b" * 200)
    assert read_record(local_lane.store, first.outputs[0]).released_by == "b" * 200
