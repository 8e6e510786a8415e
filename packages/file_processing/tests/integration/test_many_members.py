"""A delivery of many small members: per-member work is not repeated, results do not depend
on how many members are checked at once, and no document grows with the member count.

Speed itself is measured by ``bench/file_processing_members.py``, not asserted here.
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date
from typing import Any

import duckdb
import pytest

from etl_core.artifacts import read_deliveries

Orders = Any
DAY = date(2026, 11, 20)


def members_zip(count: int, *, bad: int | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(count):
            amount = b"5000.00" if i == bad else b"1.50"
            archive.writestr(f"part_{i:05d}.csv", b"id,amount\n%d,%s\n" % (i, amount))
    return buffer.getvalue()


def test_every_member_of_a_delivery_is_checked_on_one_database(
    local_lane: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[object] = []
    connect = duckdb.connect

    def counting(*args: Any, **kwargs: Any) -> Any:
        opened.append(args)
        return connect(*args, **kwargs)

    monkeypatch.setattr(duckdb, "connect", counting)
    key = local_lane.deliver("orders_20261120.csv.zip", members_zip(40))

    with local_lane.processor() as processor:
        outcome = processor.process(key)

    assert outcome.status == "validated", outcome.reason
    assert len(opened) == 1
    (manifest,) = read_deliveries(local_lane.store, "orders", DAY)
    assert len(manifest.members) == 40


def test_a_members_report_does_not_grow_with_the_number_of_members(local_lane: Any) -> None:
    small = local_lane.deliver("orders_20261120.csv.zip", members_zip(2))
    large = local_lane.deliver("orders_20261121.csv.zip", members_zip(150))

    with local_lane.processor() as processor:
        outcomes = [processor.process(small), processor.process(large)]

    assert [o.status for o in outcomes] == ["validated", "validated"]
    reports = [
        local_lane.store.read_bytes(f"{prefix}/part_00000.csv.quality.json")
        for prefix in (
            "validated/orders/dt=2026-11-20/orders_20261120.csv.zip",
            "validated/orders/dt=2026-11-21/orders_20261121.csv.zip",
        )
    ]
    small_report, large_report = (json.loads(r) for r in reports)
    assert small_report["delivery"]["members"] == [
        "orders_20261120.csv.zip/part_00000.csv",
        "orders_20261120.csv.zip/part_00001.csv",
    ]
    assert large_report["delivery"]["members"] == []  # the delivery manifest lists them
    assert len(reports[1]) <= len(reports[0])
    (manifest,) = read_deliveries(local_lane.store, "orders", date(2026, 11, 21))
    assert len(manifest.members) == 150


def test_results_do_not_depend_on_how_many_members_are_checked_at_once(
    local_lane: Any,
) -> None:
    key = local_lane.deliver("orders_20261120.csv.zip", members_zip(30))

    with local_lane.processor(member_concurrency=1) as one_at_a_time:
        first = one_at_a_time.process(key)
        (serial,) = read_deliveries(local_lane.store, "orders", DAY)
    with local_lane.processor(member_concurrency=8) as eight_at_once:
        second = eight_at_once.process(key, force=True)
        (parallel,) = read_deliveries(local_lane.store, "orders", DAY)

    assert second.outputs == first.outputs
    assert [m.key for m in parallel.members] == [m.key for m in serial.members]
    assert second.members == first.members


def test_members_checked_in_batches_get_the_reports_they_get_one_by_one(
    local_lane: Any,
) -> None:
    key = local_lane.deliver("orders_20261120.csv.zip", members_zip(30))
    prefix = "validated/orders/dt=2026-11-20/orders_20261120.csv.zip/part_"

    def reports() -> list[dict[str, Any]]:
        found = []
        for name in local_lane.keys(prefix):
            if name.endswith(".quality.json"):
                report = json.loads(local_lane.store.read_bytes(name))
                report["delivery"].pop("run_id")
                report.pop("duration_seconds")
                found.append(report)
        return found

    with local_lane.processor(member_batch=1) as one_by_one:
        first = one_by_one.process(key)
        alone = reports()
    with local_lane.processor(member_batch=8, member_concurrency=2) as batched:
        second = batched.process(key, force=True)
        together = reports()

    assert second.members == first.members
    assert len(together) == 30
    assert together == alone


def test_one_failing_member_among_many_quarantines_the_whole_delivery(
    local_lane: Any,
) -> None:
    body = members_zip(60, bad=37)
    key = local_lane.deliver("orders_20261120.csv.zip", body)

    with local_lane.processor(member_concurrency=4) as processor:
        outcome = processor.process(key)

    assert outcome.status == "quarantined"
    assert outcome.reason is not None
    assert outcome.reason["code"] == "data.quality"
    assert "part_00037.csv" in json.dumps(outcome.to_dict())
    assert local_lane.keys("validated/") == []
    assert local_lane.store.read_bytes(outcome.outputs[0]) == body
    assert not list((local_lane.tmp / "scratch").iterdir())


@pytest.fixture
def engine_threads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The ``threads`` of every quality engine a delivery makes, in order."""
    import file_processing.process as process

    made: list[int] = []
    engine = process.QualityEngine

    def recording(*args: Any, threads: int = 0, **kwargs: Any) -> Any:
        made.append(threads)
        return engine(*args, threads=threads, **kwargs)

    monkeypatch.setattr(process, "QualityEngine", recording)
    return made


@pytest.mark.parametrize(("members", "threads"), [(1, 4), (2, 2), (30, 1)])
def test_a_zip_s_members_share_the_cores_only_as_many_as_it_holds(
    local_lane: Any,
    monkeypatch: pytest.MonkeyPatch,
    engine_threads: list[int],
    members: int,
    threads: int,
) -> None:
    made = engine_threads
    monkeypatch.setattr("etl_core.work.cores.host_cores", lambda: 4)
    key = local_lane.deliver("orders_20261120.csv.zip", members_zip(members))

    with local_lane.processor(member_concurrency=4) as processor:
        assert processor.process(key).status == "validated"

    assert made == [threads]


@pytest.mark.parametrize(
    ("members", "at_once", "threads"), [(None, 1, 4), (None, 2, 2), (None, 8, 1), (2, 2, 1)]
)
def test_a_delivery_shares_the_cores_with_the_deliveries_processed_beside_it(
    local_lane: Any,
    monkeypatch: pytest.MonkeyPatch,
    engine_threads: list[int],
    members: int | None,
    at_once: int,
    threads: int,
) -> None:
    """Two deliveries at once (a pool's threads, a worker's processes) on 4 cores: each
    engine gets 2 threads, not 4 (8 threads waiting for each other)."""
    from etl_core.work.cores import sharing_cores

    made = engine_threads
    monkeypatch.setattr("etl_core.work.cores.host_cores", lambda: 4)
    if members is None:
        key = local_lane.deliver("orders_20261120.csv", b"id,amount\n1,1.50\n")
    else:
        key = local_lane.deliver("orders_20261120.csv.zip", members_zip(members))

    with local_lane.processor(member_concurrency=4) as processor, sharing_cores(at_once):
        assert processor.process(key).status == "validated"

    assert made == [threads]


def test_quality_threads_set_are_kept_beside_other_deliveries(
    local_lane: Any, engine_threads: list[int]
) -> None:
    from etl_core.work.cores import sharing_cores

    made = engine_threads
    key = local_lane.deliver("orders_20261120.csv", b"id,amount\n1,1.50\n")

    with local_lane.processor(quality_threads=3) as processor, sharing_cores(4):
        assert processor.process(key).status == "validated"

    assert made == [3]
