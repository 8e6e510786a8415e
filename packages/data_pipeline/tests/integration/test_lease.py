"""Partition leases: exactly one writer per partition, on both store backends."""

from __future__ import annotations

import threading
import time
from datetime import date
from pathlib import Path

import pytest

from data_pipeline.errors import PartitionBusyError
from data_pipeline.lease import lease_key, partition_lease
from etl_core.storage import ObjectStore, open_store
from etl_core.threads import ContextThreadPoolExecutor

DAY = date(2026, 11, 1)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return open_store(tmp_path / "lake")
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = request.getfixturevalue("s3_bucket")
    return open_store(f"s3://{bucket}/lease-{tmp_path.name}", endpoint_url=endpoint)


def test_racing_writers_get_the_lease_one_at_a_time(store: ObjectStore) -> None:
    start = threading.Barrier(6, timeout=30)
    holders: list[int] = []
    overlap = threading.Event()
    inside = threading.Lock()

    def write(worker: int) -> bool:
        start.wait()
        try:
            with partition_lease(store, "pos", DAY, purpose=f"w{worker}", ttl_seconds=60):
                if not inside.acquire(blocking=False):
                    overlap.set()
                    return True
                holders.append(worker)
                time.sleep(0.3)
                inside.release()
                return True
        except PartitionBusyError:
            return False

    with ContextThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(write, range(6)))
    assert not overlap.is_set()
    assert outcomes.count(True) >= 1
    assert len(holders) == outcomes.count(True)


def test_released_lease_can_be_taken_again(store: ObjectStore) -> None:
    with (
        partition_lease(store, "pos", DAY, purpose="first", ttl_seconds=60),
        pytest.raises(PartitionBusyError, match="first"),
        partition_lease(store, "pos", DAY, purpose="second", ttl_seconds=60),
    ):
        pass
    with partition_lease(store, "pos", DAY, purpose="third", ttl_seconds=60) as lease:
        assert lease.purpose == "third"


def test_expired_lease_is_taken_over(store: ObjectStore) -> None:
    with partition_lease(store, "pos", DAY, purpose="crashed", ttl_seconds=0.01):
        time.sleep(0.05)
        with partition_lease(store, "pos", DAY, purpose="next", ttl_seconds=60) as lease:
            assert lease.purpose == "next"


def test_unreadable_lease_object_is_replaced(store: ObjectStore) -> None:
    store.write_bytes(lease_key("pos", DAY), b"{not json")
    with partition_lease(store, "pos", DAY, purpose="repair", ttl_seconds=60) as lease:
        assert lease.purpose == "repair"
