"""The window's background writer: a checkpoint's files published together once sealed, a
failed write failing its checkpoint (none of its files visible), unsealed writes dropped on
close; the column-at-a-time profile and page checks giving the record-by-record answers."""

from __future__ import annotations

import gzip
import json
import random
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from data_pipeline.ingest.chunks import BATCH, encode_chunk, encode_lines
from data_pipeline.ingest.profile import FieldProfile
from data_pipeline.ingest.records import all_land, refusal
from data_pipeline.ingest.writer import CheckpointWriter
from etl_core.contracts import Endpoint
from etl_core.errors import StorageError
from etl_core.storage import LocalObjectStore


def test_a_checkpoints_files_appear_together_when_it_is_sealed(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    writer = CheckpointWriter(store)
    release = threading.Event()
    try:
        writer.submit(lambda: store.write_bytes("raw/a.json", b"a"))
        writer.submit(lambda: store.write_bytes("raw/b.json", b"b"))
        writer.submit(release.wait)
        assert not store.exists("raw/a.json")  # written, not published: no seal yet
        durable = writer.seal()
        release.set()
        durable.result(timeout=30)
        assert store.read_bytes("raw/a.json") == b"a"
        assert store.read_bytes("raw/b.json") == b"b"
    finally:
        writer.close()


class FailingStore(LocalObjectStore):
    def write_bytes(self, key: str, data: object) -> None:
        if key.endswith("bad.json"):
            raise StorageError(f"disk full writing {key}", key=key, url=self.url)
        super().write_bytes(key, data)  # type: ignore[arg-type]


def test_a_failed_write_fails_its_checkpoint_and_every_later_one(tmp_path: Path) -> None:
    store = FailingStore(tmp_path)
    writer = CheckpointWriter(store)
    try:
        writer.submit(lambda: store.write_bytes("raw/first.json", b"1"))
        writer.seal().result(timeout=30)
        writer.submit(lambda: store.write_bytes("raw/good.json", b"2"))
        writer.submit(lambda: store.write_bytes("raw/bad.json", b"3"))
        writer.submit(lambda: store.write_bytes("raw/after.json", b"4"))
        with pytest.raises(StorageError, match=r"bad\.json"):
            writer.seal().result(timeout=30)
        with pytest.raises(StorageError, match=r"bad\.json"):
            writer.submit(lambda: None)
    finally:
        writer.close()
    assert store.exists("raw/first.json")
    assert not store.exists("raw/good.json")  # its checkpoint failed: not published
    assert not store.exists("raw/after.json")
    assert not list(tmp_path.rglob(".etl-partial-*"))


def test_writes_not_sealed_are_dropped_on_close(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    writer = CheckpointWriter(store)
    writer.submit(lambda: store.write_bytes("raw/sealed.json", b"1"))
    durable = writer.seal()
    writer.submit(lambda: store.write_bytes("raw/unsealed.json", b"2"))
    writer.close()
    durable.result(timeout=30)
    assert store.exists("raw/sealed.json")
    assert not store.exists("raw/unsealed.json")
    assert not list(tmp_path.rglob(".etl-partial-*"))


def test_writes_queued_after_the_last_seal_are_not_run_on_close(tmp_path: Path) -> None:
    # an interrupted walk has up to a queue of pages not sealed: writing (compressing,
    # hashing) them only to drop them held its exit
    store = LocalObjectStore(tmp_path)
    writer = CheckpointWriter(store)
    release = threading.Event()
    ran: list[str] = []
    writer.submit(lambda: store.write_bytes("raw/sealed.json", b"1"))
    writer.submit(lambda: release.wait(30))
    durable = writer.seal()
    writer.submit(lambda: ran.append("first page after the seal"))  # the writer blocked:
    writer.submit(lambda: ran.append("second page after the seal"))  # both still queued
    closing = threading.Thread(target=writer.close, daemon=True)
    closing.start()
    release.set()
    closing.join(30)
    assert not closing.is_alive()
    durable.result(timeout=30)
    assert store.exists("raw/sealed.json")  # what was sealed is finished, as ever
    assert ran == []


def _in_untimed_join(thread: threading.Thread) -> bool:
    """Whether ``thread`` waits for another thread's end (``Thread.join``)."""
    frame = sys._current_frames().get(thread.ident or 0)
    wait = threading.Thread._wait_for_tstate_lock.__code__  # type: ignore[attr-defined]
    return frame is not None and frame.f_code is wait


def test_an_interruption_while_close_waits_for_a_slow_write_is_handled_at_once(
    tmp_path: Path,
) -> None:
    # a Ctrl-C taken by another thread while the walk's thread joined the writer's, untimed,
    # was handled once the write ended (a slow store: as long as it took)
    store = LocalObjectStore(tmp_path)
    writer = CheckpointWriter(store)
    release = threading.Event()
    main = threading.main_thread()
    writer.submit(lambda: release.wait(30))
    writer.seal()

    def interrupt() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _in_untimed_join(main):
            time.sleep(0.001)
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)  # handled by this thread

    threading.Thread(target=interrupt, daemon=True).start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            writer.close()
        assert time.monotonic() - started < 5
    finally:
        release.set()


def test_a_seals_then_runs_once_its_files_are_durable_in_order(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    writer = CheckpointWriter(store)
    seen: list[tuple[str, bool]] = []
    try:
        sealed = []
        for name in ("one", "two", "three"):
            writer.submit(lambda name=name: store.write_bytes(f"raw/{name}.json", b"x"))
            then = lambda name=name: seen.append((name, store.exists(f"raw/{name}.json")))  # noqa: E731
            sealed.append(writer.seal(then=then))
        for durable in sealed:
            durable.result(timeout=30)
    finally:
        writer.close()
    assert seen == [("one", True), ("two", True), ("three", True)]


def test_a_failed_then_fails_its_seal_the_later_ones_and_later_writes(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    writer = CheckpointWriter(store)
    ran: list[str] = []

    def lost() -> None:
        raise StorageError("the lease was taken over", key="lease", url=store.url)

    try:
        writer.submit(lambda: store.write_bytes("raw/first.json", b"1"))
        first = writer.seal(then=lost)
        writer.submit(lambda: store.write_bytes("raw/second.json", b"2"))
        second = writer.seal(then=lambda: ran.append("second"))
        for durable in (first, second):
            with pytest.raises(StorageError, match="taken over"):
                durable.result(timeout=30)
        with pytest.raises(StorageError, match="taken over"):
            writer.submit(lambda: None)
    finally:
        writer.close()
    assert store.exists("raw/first.json")  # durable before its then ran
    assert ran == []  # a later state is never committed after an earlier one failed


class UnpublishableStore(LocalObjectStore):
    def deferred_sync(self) -> Any:
        return _failing_block(super().deferred_sync())


class _failing_block:  # noqa: N801
    def __init__(self, block: Any) -> None:
        self.block = block

    def __enter__(self) -> None:
        self.block.__enter__()

    def __exit__(self, *exc: object) -> None:
        self.block.__exit__(*exc)
        if exc[0] is None:
            raise StorageError("the flush failed", key="raw", url="file:///")


def test_a_checkpoint_whose_flush_fails_fails_its_seal(tmp_path: Path) -> None:
    store = UnpublishableStore(tmp_path)
    writer = CheckpointWriter(store)
    ran: list[str] = []
    try:
        writer.submit(lambda: store.write_bytes("raw/a.json", b"a"))
        with pytest.raises(StorageError, match="flush failed"):
            writer.seal(then=lambda: ran.append("committed")).result(timeout=30)
    finally:
        writer.close()
    assert ran == []


VALUES: list[Any] = [
    None,
    True,
    0,
    2.5,
    "x",
    "2026-03-01",
    "2026-02-30",
    "2026-03-01T10:00:00Z",
    "2026-13-01T10:00:00Z",
    "\uff12\uff10\uff12\uff16-01-01T00:00",  # digits, not ASCII: text
    "\u0662\u0660\u0662\u0666-01-01",
    "2026-03-01T1",
    {"a": 1},
    [1],
]


def test_profiling_a_page_at_once_counts_as_record_by_record_in_the_same_order() -> None:
    rnd = random.Random(13)
    for _ in range(500):
        names = rnd.sample("abcdefg", rnd.randint(0, 5))
        same = rnd.random() < 0.5
        records = []
        for _ in range(rnd.randint(0, 40)):
            keys = names if same or rnd.random() < 0.8 else rnd.sample("abcdefg", 3)
            value = rnd.choice(VALUES)
            records.append({k: value if rnd.random() < 0.9 else rnd.choice(VALUES) for k in keys})
        one, many = FieldProfile(), FieldProfile()
        for record in records:
            one.add(record, skip=("c",))
        many.add_many(records, skip=("c",))
        assert json.dumps(many.to_dict()) == json.dumps(one.to_dict()), records


def test_a_page_lands_whole_only_when_every_item_would() -> None:
    endpoint = Endpoint(name="items", path="/items", dataset="shop_items", primary_key=("id",))
    good = [{"id": i} for i in range(5)]
    pages = [good, [*good, {"id": None}], [*good, {"name": "x"}], [*good, "text"], [*good, [1]]]
    for page in pages:
        assert all_land(page, endpoint) == all(refusal(i, endpoint) is None for i in page)


def test_chunk_lines_are_encoded_in_batches_with_the_same_bytes() -> None:
    records = [{"id": i, "n": f"é{i}"} for i in range(BATCH * 2 + 5)]
    records[BATCH + 3]["big"] = 2**70  # only the standard library writes it
    text = gzip.decompress(encode_chunk(records)).decode()
    assert encode_lines(records).decode() == text
    assert [json.loads(line) for line in text.splitlines()] == records
