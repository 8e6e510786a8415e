"""A worker killed while publishing a delivery loses nothing and shows nothing half done.

The worker is a real process that dies with ``os._exit`` (no ``finally``, no
clean-up: what SIGKILL leaves) at a chosen write; the next run must finish the
delivery, and no reader may see a delivery whose manifest is not written.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date
from typing import Any

import pytest

from etl_core.artifacts import read_deliveries
from etl_core.layout import delivery_manifest_key
from etl_core.testing.deliveries import zipped
from etl_core.work import InlineExecutor
from file_processing.scan import scan

CRASHING_WORKER = """
import os, sys
from pathlib import Path
from etl_core.contracts import load_contracts
from etl_core.storage import open_store
from file_processing.process import Processor
from file_processing.settings import FileProcessingSettings

store_dir, config_dir, scratch, key, suffix, nth = sys.argv[1:7]
store = open_store(store_dir)
seen = []

def crash_on(write):
    def wrapped(*args, **kwargs):
        target = args[1] if write.__name__ in ("upload", "move_in") else args[0]
        if str(target).endswith(suffix):
            seen.append(target)
            if len(seen) == int(nth):
                os._exit(137)
        return write(*args, **kwargs)
    return wrapped

store.write_bytes = crash_on(store.write_bytes)
store.upload = crash_on(store.upload)
store.move_in = crash_on(store.move_in)
contracts = load_contracts(config_dir)
settings = FileProcessingSettings(work_dir=Path(scratch))
Processor(store, contracts, settings, run_id="crashed").process(key)
print("no crash")
"""


def crash_while_processing(lane: Any, key: str, suffix: str, nth: int = 1) -> None:
    """Process ``key`` in a worker that dies at its ``nth`` write of a key ending in ``suffix``."""
    (lane.tmp / "scratch").mkdir(exist_ok=True)
    args = [str(lane.tmp / "lake"), str(lane.config_dir), str(lane.tmp / "scratch"), key]
    result = subprocess.run(
        [sys.executable, "-c", CRASHING_WORKER, *args, suffix, str(nth)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 137, result.stdout + result.stderr


def test_a_crash_between_data_and_report_does_not_wedge_the_delivery(
    local_lane: Any, orders: Any
) -> None:
    key = local_lane.deliver("orders_20261121.csv", orders(30))
    crash_while_processing(local_lane, key, ".quality.json")
    data_key = "validated/orders/dt=2026-11-21/orders_20261121.csv"
    # The data was written, its report was not: members become visible together when
    # all of them are written, so the data stays a partial write nobody lists.
    assert not local_lane.store.exists(data_key)
    assert list((local_lane.tmp / "lake" / "validated").rglob(".etl-partial-*"))
    assert read_deliveries(local_lane.store, "orders", date(2026, 11, 21)) == []
    assert list((local_lane.tmp / "scratch").glob("etl-file-*"))  # what the crash left
    with local_lane.processor() as processor:
        outcome = processor.process(key)
    assert outcome.status == "validated", outcome.reason
    (manifest,) = read_deliveries(local_lane.store, "orders", date(2026, 11, 21))
    assert manifest.data_keys == (data_key,)
    assert not list((local_lane.tmp / "scratch").glob("etl-*"))  # swept by the re-run


def test_readers_never_see_a_delivery_whose_publish_did_not_finish(
    local_lane: Any, orders: Any
) -> None:
    body = zipped({"a.csv": orders(10), "b.csv": orders(12)})
    key = local_lane.deliver("orders_20261122.csv.zip", body)
    crash_while_processing(local_lane, key, ".csv", nth=2)  # dies uploading the second member
    day = date(2026, 11, 22)
    prefix = "validated/orders/dt=2026-11-22/orders_20261122.csv.zip/"
    # Members are published several at a time: which files a crash leaves varies.
    outputs = {prefix + name for name in ("a.csv", "b.csv")}
    outputs |= {key + ".quality.json" for key in outputs}
    assert set(local_lane.keys(prefix)) < outputs
    assert read_deliveries(local_lane.store, "orders", day) == []
    with local_lane.processor() as processor:
        assert processor.process(key).status == "validated"
    (manifest,) = read_deliveries(local_lane.store, "orders", day)
    assert manifest.data_keys == (prefix + "a.csv", prefix + "b.csv")
    assert [m.rows for m in manifest.members] == [10, 12]


class _TimeLimit(BaseException):
    """A time limit striking in the unit (as Celery's SoftTimeLimitExceeded)."""


def test_a_publish_stopped_once_its_manifest_landed_leaves_no_delivery_without_members(
    local_lane: Any, orders: Any
) -> None:
    # the manifest was written, then the limit struck before the write returned: the
    # members were removed and the manifest stayed, a delivery naming missing files
    key = local_lane.deliver("orders_20261124.csv", orders(6))
    day = date(2026, 11, 24)
    manifest_key = delivery_manifest_key("orders", day, key)
    processor = local_lane.processor()
    write = processor.store.write_bytes

    def write_then_stopped(target: str, data: bytes, *args: Any, **kwargs: Any) -> Any:
        written = write(target, data, *args, **kwargs)
        if target == manifest_key:
            raise _TimeLimit
        return written

    processor.store.write_bytes = write_then_stopped  # type: ignore[method-assign]
    try:
        with processor, pytest.raises(_TimeLimit):
            processor.process(key)
    finally:
        del processor.store.write_bytes
    assert read_deliveries(local_lane.store, "orders", day) == []
    assert not local_lane.keys("validated/orders/dt=2026-11-24/")
    with local_lane.processor() as again:  # the next scan publishes it whole
        assert again.process(key).status == "validated"
    (manifest,) = read_deliveries(local_lane.store, "orders", day)
    assert all(local_lane.store.exists(data_key) for data_key in manifest.data_keys)


def test_force_always_redoes_a_delivery(local_lane: Any, orders: Any) -> None:
    key = local_lane.deliver("orders_20261123.csv", orders(8))
    manifest_key = delivery_manifest_key("orders", date(2026, 11, 23), key)
    with local_lane.processor() as processor:
        assert processor.process(key).status == "validated"
        first = local_lane.store.read_bytes(manifest_key)
        assert processor.process(key, force=True).status == "validated"
    assert local_lane.store.read_bytes(manifest_key) != first  # published again


def test_a_scan_removes_partial_writes_older_than_a_claim(local_lane: Any, orders: Any) -> None:
    lake = local_lane.tmp / "lake"
    partial = lake / "validated/orders/dt=2026-11-20/.etl-partial-1a2b3c"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"x" * 4096)  # what a writer killed mid-upload leaves
    fresh = lake / "quarantine/_unknown/dt=2026-11-20/.etl-partial-4d5e6f"
    fresh.parent.mkdir(parents=True)
    fresh.write_bytes(b"y")  # may be another worker's write in progress
    two_hours_ago = time.time() - 7200
    os.utime(partial, (two_hours_ago, two_hours_ago))
    local_lane.deliver("orders_20261120.csv", orders(4))
    with local_lane.processor() as processor:
        summary = scan(processor, InlineExecutor())
    assert [o.status for o in summary.outcomes] == ["validated"]
    assert not partial.exists()
    assert fresh.exists()
