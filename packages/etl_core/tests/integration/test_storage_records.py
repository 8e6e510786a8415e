"""Records changed by compare-and-put (etl_core.storage.records), on both store backends."""

from __future__ import annotations

import json
import pickle
import threading

import pytest

from etl_core.errors import ObjectConflictError, RecordConflictError
from etl_core.retry import RetryPolicy
from etl_core.storage import NO_CHANGE, ObjectStore, Records
from etl_core.threads import ContextThreadPoolExecutor

KEY = "_state/test/counter.json"


def counters(store: ObjectStore, retry: RetryPolicy | None = None) -> Records[dict[str, int]]:
    return Records(
        store,
        decode=lambda data, key: dict(json.loads(data)),
        encode=lambda value: json.dumps(value, sort_keys=True).encode(),
        retry=retry,
    )


def test_update_creates_a_missing_record(store: ObjectStore) -> None:
    records = counters(store)

    update = records.update(KEY, lambda current: {"n": 1} if current is None else NO_CHANGE)

    assert update.changed
    assert update.before is None
    assert update.after is not None
    assert update.after.value == {"n": 1}
    assert update.after.etag == store.head(KEY).etag


def test_update_returning_no_change_writes_nothing(store: ObjectStore) -> None:
    records = counters(store)
    written = records.put(KEY, {"n": 1}, expect=None)
    before = store.head(KEY).last_modified

    update = records.update(KEY, lambda current: NO_CHANGE)

    assert not update.changed
    assert update.after == update.before == written
    assert store.head(KEY).last_modified == before


def test_an_update_function_that_raises_aborts_and_writes_nothing(store: ObjectStore) -> None:
    records = counters(store)
    records.put(KEY, {"n": 1}, expect=None)

    def refuse(current: dict[str, int] | None) -> dict[str, int]:
        raise ValueError("not this one")

    with pytest.raises(ValueError, match="not this one"):
        records.update(KEY, refuse)
    assert json.loads(store.read_bytes(KEY)) == {"n": 1}


def test_put_refuses_a_record_that_is_no_longer_the_expected_version(store: ObjectStore) -> None:
    records = counters(store)
    first = records.put(KEY, {"n": 1}, expect=None)
    records.put(KEY, {"n": 2}, expect=first)

    with pytest.raises(ObjectConflictError):
        records.put(KEY, {"n": 3}, expect=first)
    with pytest.raises(ObjectConflictError):
        records.put(KEY, {"n": 3}, expect=None)


def test_concurrent_updates_lose_nothing(store: ObjectStore) -> None:
    records = counters(store)
    start = threading.Barrier(6, timeout=30)

    def add_one(worker: int) -> None:
        start.wait()
        for _ in range(5):
            records.update(KEY, lambda current: {"n": (current or {"n": 0})["n"] + 1})

    with ContextThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(add_one, range(6)))

    assert json.loads(store.read_bytes(KEY)) == {"n": 30}


def test_an_update_that_always_loses_gives_up_after_its_attempts(store: ObjectStore) -> None:
    records = counters(store, RetryPolicy(attempts=3, initial_delay=0.001, max_delay=0.01))
    records.put(KEY, {"n": 0}, expect=None)
    calls: list[int] = []

    def change_behind_its_back(current: dict[str, int] | None) -> dict[str, int]:
        calls.append(1)
        store.write_bytes(KEY, json.dumps({"n": -len(calls)}).encode())  # another writer
        return {"n": 100}

    with pytest.raises(RecordConflictError, match="3 compare-and-puts") as caught:
        records.update(KEY, change_behind_its_back)

    assert len(calls) == 3
    assert caught.value.key == KEY
    assert caught.value.attempts == 3
    restored = pickle.loads(pickle.dumps(caught.value))
    assert (restored.key, restored.attempts) == (KEY, 3)
    assert json.loads(store.read_bytes(KEY)) == {"n": -3}
