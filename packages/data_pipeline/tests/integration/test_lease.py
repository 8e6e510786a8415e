"""Partition leases and fenced publishes: exactly one writer per partition, on both backends."""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from data_pipeline.errors import PartitionBusyError, PublishFencedError, SupersededError
from data_pipeline.layout import publish_partition, read_manifest
from data_pipeline.lease import Lease, lease_key, partition_lease
from etl_core.errors import LeaseLostError, LeaseWaitStoppedError
from etl_core.layout import curated_prefix, manifest_key
from etl_core.storage import ObjectStore, S3ObjectStore, read_lease
from etl_core.threads import ContextThreadPoolExecutor
from etl_core.work.limits import unit_limits

DAY = date(2026, 11, 1)


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


def waiting_lease(store: ObjectStore) -> contextlib.AbstractContextManager[Lease]:
    """A backfill's wait for the partition: up to a minute, reading the lease every 5 s."""
    return partition_lease(
        store, "pos", DAY, purpose="backfill", ttl_seconds=60, wait_seconds=60, poll_seconds=5.0
    )


def test_a_wait_for_a_live_writer_gives_up_before_the_units_deadline_naming_it(
    store: ObjectStore,
) -> None:
    # issue 15: a backfill unit waited up to lease_seconds, past Celery's soft time limit
    with partition_lease(store, "pos", DAY, purpose="scheduled run", ttl_seconds=60):
        started = time.monotonic()
        limits = unit_limits(deadline=started + 1.0)
        with limits, pytest.raises(PartitionBusyError) as busy, waiting_lease(store):
            pass
        waited = time.monotonic() - started

    assert waited < 2, waited
    said = str(busy.value)
    assert "partition dt=2026-11-01" in said
    assert "(scheduled run)" in said
    assert "before the unit's time limit (task_soft_time_limit)" in said
    assert busy.value.holder is not None


def test_an_interruption_ends_a_wait_for_a_live_writer_at_once(store: ObjectStore) -> None:
    stop = threading.Event()
    with partition_lease(store, "pos", DAY, purpose="scheduled run", ttl_seconds=60):
        threading.Timer(0.3, stop.set).start()
        started = time.monotonic()
        limits = unit_limits(stop=stop)
        with limits, pytest.raises(LeaseWaitStoppedError) as stopped, waiting_lease(store):
            pass
        waited = time.monotonic() - started

    assert waited < 2, waited
    assert "the run was interrupted" in str(stopped.value)
    assert "(scheduled run)" in str(stopped.value)


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
    # A holder whose heartbeat stopped (a stalled or crashed process) lets its lease expire.
    with partition_lease(
        store, "pos", DAY, purpose="crashed", ttl_seconds=0.01, heartbeat_seconds=0
    ):
        time.sleep(0.05)
        with partition_lease(store, "pos", DAY, purpose="next", ttl_seconds=60) as lease:
            assert lease.purpose == "next"


def test_unreadable_lease_object_is_replaced(store: ObjectStore) -> None:
    store.write_bytes(lease_key("pos", DAY), b"{not json")
    with partition_lease(store, "pos", DAY, purpose="repair", ttl_seconds=60) as lease:
        assert lease.purpose == "repair"


# ------------------------------------------------------------------ fencing at publish

WORKER = Path(__file__).with_name("publish_worker.py")


def publish(store: ObjectStore, tmp_path: Path, generation: str, lease: Lease | None) -> None:
    part = tmp_path / f"{generation}.parquet"
    part.write_bytes(generation.encode())
    publish_partition(
        store,
        dataset="pos",
        dt=DAY,
        generation=generation,
        started_at=datetime.now(UTC),
        files=[part],
        rows=1,
        inputs={},
        lease=lease,
    )


def parts(store: ObjectStore) -> list[str]:
    return [info.key for info in store.list(curated_prefix("pos", DAY)) if "part-" in info.key]


def test_a_publish_under_the_lease_records_its_token(store: ObjectStore, tmp_path: Path) -> None:
    for _ in range(2):
        with partition_lease(store, "pos", DAY, purpose="transform", ttl_seconds=60) as lease:
            publish(store, tmp_path, f"g{lease.token}", lease)

    manifest = read_manifest(store, "pos", DAY)
    assert manifest is not None
    assert (manifest.generation, manifest.lease_token) == ("g2", 2)


class _TimeLimit(BaseException):
    """A time limit striking in the unit (as Celery's SoftTimeLimitExceeded)."""


def test_a_time_limit_striking_once_the_manifest_is_written_leaves_the_partition_whole(
    store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the manifest landed, then the limit struck before the flip returned: the files it
    # names were deleted as an unpublished generation's, a published partition left broken
    written = store.put_if

    def put_then_stopped(key: str, data: bytes, *args: object, **kwargs: object) -> object:
        etag = written(key, data, *args, **kwargs)  # type: ignore[arg-type]
        if key == manifest_key("pos", DAY):
            raise _TimeLimit
        return etag

    with partition_lease(store, "pos", DAY, purpose="transform", ttl_seconds=60) as lease:
        monkeypatch.setattr(store, "put_if", put_then_stopped)
        with pytest.raises(_TimeLimit):
            publish(store, tmp_path, "stopped", lease)
        monkeypatch.undo()

    manifest = read_manifest(store, "pos", DAY)
    assert manifest is not None
    assert manifest.generation == "stopped"
    assert manifest.files
    assert sorted(manifest.files) == sorted(parts(store))  # every file it names is there


def test_a_time_limit_striking_before_the_manifest_is_written_removes_the_files(
    store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def stopped(*args: object, **kwargs: object) -> object:
        raise _TimeLimit

    with partition_lease(store, "pos", DAY, purpose="transform", ttl_seconds=60) as lease:
        publish(store, tmp_path, "first", lease)
        monkeypatch.setattr(store, "put_if", stopped)
        with pytest.raises(_TimeLimit):
            publish(store, tmp_path, "second", lease)
        monkeypatch.undo()

    manifest = read_manifest(store, "pos", DAY)
    assert manifest is not None
    assert manifest.generation == "first"
    assert not [key for key in parts(store) if "part-second-" in key]


def test_a_manifest_written_under_a_newer_token_is_never_replaced(
    store: ObjectStore, tmp_path: Path
) -> None:
    with partition_lease(store, "pos", DAY, purpose="stale", ttl_seconds=60) as stale:
        publish(store, tmp_path, "newer", None)  # stands for a later holder's publish:
        newer = read_manifest(store, "pos", DAY)
        assert newer is not None
        store.write_bytes(  # recorded with a token the stale writer cannot have
            manifest_key("pos", DAY), replace(newer, lease_token=stale.token + 1).to_json()
        )
        with pytest.raises(LeaseLostError, match=f"token {stale.token + 1}"):
            publish(store, tmp_path, "stale", stale)

    manifest = read_manifest(store, "pos", DAY)
    assert manifest is not None
    assert manifest.generation == "newer"
    assert not [key for key in parts(store) if "part-stale-" in key]


def test_a_publish_refused_because_its_leases_tokens_restarted_says_how_to_recover(
    store: ObjectStore, tmp_path: Path
) -> None:
    """A lease object deleted from the store restarts its tokens at 1, below the one the
    manifest records: the publish is refused while its lease is still held, and the error
    says so and names the manifest to delete and the run that rebuilds the day."""
    for _ in range(2):
        with partition_lease(store, "pos", DAY, purpose="transform", ttl_seconds=60) as lease:
            publish(store, tmp_path, f"g{lease.token}", lease)
    store.delete(lease_key("pos", DAY))  # the lease object is lost: its tokens restart at 1
    with partition_lease(store, "pos", DAY, purpose="transform", ttl_seconds=60) as lease:
        assert lease.token == 1
        with pytest.raises(PublishFencedError) as caught:
            publish(store, tmp_path, "after-reset", lease)

    refused = caught.value
    manifest = store.location_for(manifest_key("pos", DAY))
    assert isinstance(refused, LeaseLostError)
    assert refused.manifest == manifest
    if isinstance(store, S3ObjectStore):
        assert manifest == store.url_for(manifest_key("pos", DAY))
    else:  # a local store's manifest as an operator pastes it: its plain path
        assert manifest.endswith("/curated/pos/dt=2026-11-01/_manifest.json")
        assert Path(manifest).is_file()
    assert (refused.token, refused.newer, refused.key) == (1, 2, lease_key("pos", DAY))
    assert str(refused).startswith(
        "dataset 'pos', partition dt=2026-11-01: the curated manifest was published under "
        f"lease token 2 of {lease_key('pos', DAY)}; this publish's token 1 is older, yet its "
        "lease is still held at token 1: no holder has token 2, the lease's tokens restarted"
    )
    assert str(refused).endswith(
        f"delete {manifest} only if it still names generation g2 (lease token 2; one naming "
        "another generation was published since: keep it), "
        "then run `etl-data-pipeline transform --dataset pos --date 2026-11-01`"
    )
    assert not [key for key in parts(store) if "part-after-reset-" in key]
    store.delete(manifest_key("pos", DAY))  # the operator's recovery, as the error gives it
    with partition_lease(store, "pos", DAY, purpose="transform", ttl_seconds=60) as lease:
        publish(store, tmp_path, "rebuilt", lease)
    rebuilt = read_manifest(store, "pos", DAY)
    assert rebuilt is not None
    assert (rebuilt.generation, rebuilt.lease_token) == ("rebuilt", 2)
    assert all("part-rebuilt-" in key for key in parts(store))


def test_a_restarted_publish_recovery_never_deletes_a_later_writers_manifest(
    store: ObjectStore, tmp_path: Path
) -> None:
    """The recovery is read later: by then a writer whose token climbed past the old one
    may have published. It names the generation (and token) of the manifest to delete, so
    an operator keeps a later writer's manifest instead of deleting it unconditionally."""
    for _ in range(2):
        with partition_lease(store, "pos", DAY, purpose="transform", ttl_seconds=60) as lease:
            publish(store, tmp_path, f"g{lease.token}", lease)
    store.delete(lease_key("pos", DAY))
    with (
        partition_lease(store, "pos", DAY, purpose="transform", ttl_seconds=60) as lease,
        pytest.raises(PublishFencedError) as caught,  # token 1, below the manifest's 2
    ):
        publish(store, tmp_path, "refused", lease)
    with partition_lease(store, "pos", DAY, purpose="transform", ttl_seconds=60) as lease:
        publish(store, tmp_path, "later", lease)  # token 2 again: a good manifest, to keep

    said = str(caught.value)
    assert caught.value.generation == "g2"
    assert pickle.loads(pickle.dumps(caught.value)).generation == "g2"
    manifest = store.location_for(manifest_key("pos", DAY))
    assert (
        f"delete {manifest} only if it still names generation g2 (lease token 2; one naming "
        "another generation was published since: keep it)" in said
    )
    current = read_manifest(store, "pos", DAY)
    assert current is not None
    assert current.generation == "later"


def test_a_writer_taken_over_is_not_said_to_have_restarted_tokens(
    store: ObjectStore, tmp_path: Path
) -> None:
    with partition_lease(
        store, "pos", DAY, purpose="stale", ttl_seconds=0.01, heartbeat_seconds=0
    ) as stale:
        time.sleep(0.05)  # expired unrenewed: the next writer takes the lease over
        with partition_lease(store, "pos", DAY, purpose="newer", ttl_seconds=60) as newer:
            publish(store, tmp_path, "newer", newer)
            with pytest.raises(LeaseLostError) as caught:
                publish(store, tmp_path, "stale", stale)
    assert not isinstance(caught.value, PublishFencedError)
    assert "restarted" not in str(caught.value)


def test_a_writer_without_the_lease_cannot_replace_a_fenced_manifest(
    store: ObjectStore, tmp_path: Path
) -> None:
    with partition_lease(store, "pos", DAY, purpose="transform", ttl_seconds=60) as lease:
        publish(store, tmp_path, "fenced", lease)

    with pytest.raises(SupersededError, match="without the lease"):
        publish(store, tmp_path, "unfenced", None)
    manifest = read_manifest(store, "pos", DAY)
    assert manifest is not None
    assert manifest.generation == "fenced"


@pytest.mark.slow
def test_a_writer_stopped_until_its_lease_is_taken_over_does_not_publish(
    store: ObjectStore, tmp_path: Path
) -> None:
    endpoint = store.client.meta.endpoint_url if isinstance(store, S3ObjectStore) else "-"
    state = tmp_path / "worker.state"
    worker = subprocess.Popen(
        [sys.executable, str(WORKER), store.url, endpoint, str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: state.exists() and state.read_text().startswith("holding"))
        os.kill(worker.pid, signal.SIGSTOP)
        try:
            wait_until(lambda: _expired(store))  # its heartbeat is stopped with it
            with partition_lease(store, "pos", DAY, purpose="taker", ttl_seconds=60) as taker:
                (tmp_path / "go").touch()
                os.kill(worker.pid, signal.SIGCONT)
                assert worker.wait(timeout=60) == 3
                assert taker.token == 2
        finally:
            if worker.poll() is None:
                os.kill(worker.pid, signal.SIGCONT)
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.wait(timeout=30)

    assert state.read_text().split() == ["holding", "1", "lost"]
    assert read_manifest(store, "pos", DAY) is None
    assert parts(store) == []


def wait_until(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"condition not met within {seconds} s"
        time.sleep(0.02)


def _expired(store: ObjectStore) -> bool:
    held = read_lease(store, lease_key("pos", DAY))
    return held is not None and held.expires_at < time.time()
