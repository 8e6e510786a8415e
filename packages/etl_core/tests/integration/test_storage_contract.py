"""One contract, two backends: every test runs against a local directory and S3 (moto).

The ``store`` fixture (conftest.py) gives a fresh, empty store per test.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import threading
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from etl_core.errors import (
    InvalidKeyError,
    ObjectConflictError,
    ObjectNotFoundError,
    StorageConfigError,
    StorageError,
)
from etl_core.storage import (
    MIN_PART_SIZE,
    LocalObjectStore,
    ObjectStore,
    S3ObjectStore,
    open_store,
)
from etl_core.testing import local_store_can_hold, plant_object
from etl_core.threads import ContextThreadPoolExecutor

MIB = 1024 * 1024
BAD_KEYS = ["", "/etc/passwd", "../outside", "a/../../b", "a/./b", "a\\b", "a\x00b", "a//b", "a/"]


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def patterned(size: int) -> bytes:
    """Deterministic, non-repeating-per-MiB content so misplaced parts are detected."""
    block = bytes(range(256)) * 4096
    return b"".join(block[i % 251 :] + block[: i % 251] for i in range(-(-size // len(block))))[
        :size
    ]


def write_then_fail(store: ObjectStore, key: str, data: bytes) -> None:
    """Write ``data`` under ``key`` and raise before the writer can close."""
    with store.open_write(key, part_size=MIN_PART_SIZE) as writer:
        writer.write(data)
        raise RuntimeError("boom")


def keys(store: ObjectStore, prefix: str = "") -> list[str]:
    return [info.key for info in store.list(prefix)]


# ---------------------------------------------------------------- read back


def test_written_object_reads_back_with_size_and_md5_etag(store: ObjectStore) -> None:
    before = datetime.now(UTC) - timedelta(minutes=1)
    store.write_bytes("landing/acme/orders.csv", b"id,total\n1,9.50\n")

    info = store.head("landing/acme/orders.csv")

    assert store.read_bytes("landing/acme/orders.csv") == b"id,total\n1,9.50\n"
    assert info.key == "landing/acme/orders.csv"
    assert info.size == 16
    assert info.etag == md5(b"id,total\n1,9.50\n")
    assert info.last_modified.tzinfo is not None
    assert before <= info.last_modified <= datetime.now(UTC) + timedelta(minutes=1)


def test_overwrite_replaces_content_and_changes_etag(store: ObjectStore) -> None:
    store.write_bytes("k", b"first")
    first = store.head("k").etag

    store.write_bytes("k", b"second")

    assert store.read_bytes("k") == b"second"
    assert store.head("k").etag == md5(b"second") != first


def test_empty_object_is_an_object(store: ObjectStore) -> None:
    store.write_bytes("empty", b"")

    assert store.exists("empty")
    assert store.head("empty").size == 0
    assert store.read_bytes("empty") == b""


def test_write_bytes_accepts_any_buffer(store: ObjectStore) -> None:
    store.write_bytes("a", bytearray(b"abc"))
    store.write_bytes("b", memoryview(b"xyz")[1:])

    assert store.read_bytes("a") == b"abc"
    assert store.read_bytes("b") == b"yz"


def test_read_stream_is_a_binary_file(store: ObjectStore) -> None:
    store.write_bytes("lines.txt", b"one\ntwo\nthree\n")

    with store.open_read("lines.txt") as stream:
        first = stream.readline()
        rest = list(stream)

    assert first == b"one\n"
    assert rest == [b"two\n", b"three\n"]


def test_writer_works_as_a_file_object_for_gzip(store: ObjectStore) -> None:
    with store.open_write("data.jsonl.gz") as raw, gzip.GzipFile(fileobj=raw, mode="wb") as gz:
        gz.write(b'{"id": 1}\n' * 1000)

    assert gzip.decompress(store.read_bytes("data.jsonl.gz")) == b'{"id": 1}\n' * 1000


# ------------------------------------------------------------------ listing


def test_listing_is_recursive_and_sorted_by_key(store: ObjectStore) -> None:
    for key in ["b/c/d.txt", "a0", "a/b", "a-c", "a/a/z", "B"]:
        store.write_bytes(key, key.encode())

    listed = list(store.list())

    assert [i.key for i in listed] == ["B", "a-c", "a/a/z", "a/b", "a0", "b/c/d.txt"]
    assert [i.size for i in listed] == [1, 3, 5, 3, 2, 9]
    assert all(i.etag == md5(i.key.encode()) for i in listed)


def test_listing_prefix_matches_as_a_string_prefix(store: ObjectStore) -> None:
    for key in ["dt=2024-05-01/a", "dt=2024-05-02/b", "dt=2024-06-01/c", "dt=2024-05.txt"]:
        store.write_bytes(key, b"x")

    assert keys(store, "dt=2024-05") == ["dt=2024-05-01/a", "dt=2024-05-02/b", "dt=2024-05.txt"]
    assert keys(store, "dt=2024-05-01/") == ["dt=2024-05-01/a"]
    assert keys(store, "dt=2024-06-01/c") == ["dt=2024-06-01/c"]
    assert keys(store, "nothing/") == []


def test_listing_an_empty_store_yields_nothing(store: ObjectStore) -> None:
    assert keys(store) == []


def test_listing_many_objects_returns_every_one(store: ObjectStore) -> None:
    names = [f"part-{n:04d}" for n in range(120)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: store.write_bytes(f"many/{k}", b"."), names))

    assert keys(store, "many/") == [f"many/{n}" for n in names]


def test_listing_is_a_lazy_iterator(store: ObjectStore) -> None:
    store.write_bytes("x/1", b"1")
    store.write_bytes("x/2", b"2")

    listing = store.list("x/")
    first = next(listing)
    store.write_bytes("x/3", b"3")

    assert first.key == "x/1"
    assert next(listing).key == "x/2"


def test_listing_with_escaping_prefix_is_refused(store: ObjectStore) -> None:
    with pytest.raises(InvalidKeyError, match=r"\.\./up"):
        store.list("../up")


def test_store_opened_on_a_sub_url_sees_only_its_prefix(
    store: ObjectStore, reopen: Callable[[str], ObjectStore]
) -> None:
    store.write_bytes("outside.txt", b"o")
    child = reopen(store.url_for("zone"))

    child.write_bytes("inside.txt", b"i")

    assert keys(child) == ["inside.txt"]
    assert keys(store) == ["outside.txt", "zone/inside.txt"]
    assert store.read_bytes("zone/inside.txt") == b"i"


# ------------------------------------------------------------ head / exists


def test_head_of_a_missing_key_names_it(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFoundError, match=r"missing/key\.csv") as caught:
        store.head("missing/key.csv")
    assert caught.value.key == "missing/key.csv"


def test_exists_tells_objects_from_missing_keys_and_folders(store: ObjectStore) -> None:
    store.write_bytes("dir/file", b"1")

    assert store.exists("dir/file")
    assert not store.exists("dir")
    assert not store.exists("dir/other")


def test_reading_a_missing_key_raises_object_not_found(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFoundError, match="nope"):
        store.read_bytes("nope")
    with pytest.raises(ObjectNotFoundError, match="nope"):
        store.open_read("nope", start=0, end=0)


# ------------------------------------------------------------------- ranges


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (2, 5, b"234"),
        (None, 3, b"012"),
        (7, None, b"789"),
        (0, 10, b"0123456789"),
        (8, 100, b"89"),
        (10, None, b""),
        (25, 30, b""),
        (4, 4, b""),
    ],
)
def test_byte_ranges_behave_like_slices(
    store: ObjectStore, start: int | None, end: int | None, expected: bytes
) -> None:
    store.write_bytes("digits", b"0123456789")

    with store.open_read("digits", start=start, end=end) as stream:
        assert stream.read() == expected


def test_range_read_streams_in_small_reads(store: ObjectStore) -> None:
    content = patterned(3 * MIB)
    store.write_bytes("big", content)

    with store.open_read("big", start=MIB + 3, end=2 * MIB + 7) as stream:
        chunks = iter(lambda: stream.read(65_536), b"")
        assert b"".join(chunks) == content[MIB + 3 : 2 * MIB + 7]


def test_range_of_an_empty_object_is_empty(store: ObjectStore) -> None:
    store.write_bytes("empty", b"")

    with store.open_read("empty", start=0, end=10) as stream:
        assert stream.read() == b""


@pytest.mark.parametrize(("start", "end"), [(-1, None), (None, -2), (5, 2), (1.5, None)])
def test_invalid_ranges_are_refused(store: ObjectStore, start: object, end: object) -> None:
    store.write_bytes("digits", b"0123456789")

    with pytest.raises(ValueError, match="byte range"):
        store.open_read("digits", start=start, end=end)  # type: ignore[arg-type]


# ------------------------------------------------------------------- writes


def test_multipart_write_reads_back_intact(store: ObjectStore) -> None:
    content = patterned(11 * MIB + 123)

    with store.open_write("curated/big.bin", part_size=MIN_PART_SIZE) as writer:
        for offset in range(0, len(content), 700_001):
            writer.write(content[offset : offset + 700_001])
        assert writer.tell() == len(content)

    assert store.head("curated/big.bin").size == len(content)
    digest = hashlib.md5(usedforsecurity=False)
    with store.open_read("curated/big.bin") as stream:
        for chunk in iter(lambda: stream.read(MIB), b""):
            digest.update(chunk)
    assert digest.hexdigest() == md5(content)


def test_object_is_invisible_until_the_writer_closes(store: ObjectStore) -> None:
    with store.open_write("pending", part_size=MIN_PART_SIZE) as writer:
        writer.write(patterned(6 * MIB))  # more than one part on S3
        assert not store.exists("pending")
        assert keys(store) == []

    assert store.head("pending").size == 6 * MIB


@pytest.mark.parametrize("size", [100, 6 * MIB], ids=["single-part", "multipart"])
def test_exception_mid_write_leaves_nothing(store: ObjectStore, size: int) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail(store, "broken", patterned(size))

    assert not store.exists("broken")
    assert keys(store) == []


def test_failed_overwrite_keeps_the_previous_version(store: ObjectStore) -> None:
    store.write_bytes("report.json", b'{"v": 1}')

    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail(store, "report.json", patterned(6 * MIB))

    assert store.read_bytes("report.json") == b'{"v": 1}'


def test_aborted_writer_publishes_nothing(store: ObjectStore) -> None:
    writer = store.open_write("aborted")
    writer.write(b"partial")
    writer.abort()

    assert writer.closed
    assert not store.exists("aborted")
    with pytest.raises(ValueError, match="closed"):
        writer.write(b"more")


def test_writer_dropped_without_close_publishes_nothing(store: ObjectStore) -> None:
    writer = store.open_write("forgotten")
    writer.write(b"never closed")
    del writer

    assert not store.exists("forgotten")
    assert keys(store) == []


@pytest.mark.parametrize("part_size", [MIN_PART_SIZE - 1, 6 * 1024**3])
def test_part_size_outside_s3_limits_is_refused(store: ObjectStore, part_size: int) -> None:
    with pytest.raises(ValueError, match="part_size"):
        store.open_write("x", part_size=part_size)


def test_concurrent_writers_of_different_keys_all_land(store: ObjectStore) -> None:
    def write(n: int) -> None:
        store.write_bytes(f"shared/dir/obj-{n:02d}", str(n).encode() * 1000)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(32)))

    assert keys(store) == [f"shared/dir/obj-{n:02d}" for n in range(32)]
    assert store.read_bytes("shared/dir/obj-07") == b"7" * 1000


def test_concurrent_writers_of_one_key_leave_one_whole_version(store: ObjectStore) -> None:
    versions = [bytes([n]) * 200_000 for n in range(8)]
    barrier = threading.Barrier(len(versions))

    def write(content: bytes) -> None:
        with store.open_write("contended") as writer:
            writer.write(content[:100_000])
            barrier.wait(timeout=30)
            writer.write(content[100_000:])

    with ThreadPoolExecutor(len(versions)) as pool:
        list(pool.map(write, versions))

    assert store.read_bytes("contended") in versions
    assert keys(store) == ["contended"]


# -------------------------------------------------------- copy, move, delete


def test_copy_makes_an_independent_object(store: ObjectStore) -> None:
    store.write_bytes("landing/a.csv", b"original")

    store.copy("landing/a.csv", "quarantine/x/a.csv")
    store.write_bytes("landing/a.csv", b"changed")

    assert store.read_bytes("quarantine/x/a.csv") == b"original"
    assert store.head("quarantine/x/a.csv").etag == md5(b"original")


def test_copy_replaces_an_existing_destination(store: ObjectStore) -> None:
    store.write_bytes("src", b"new")
    store.write_bytes("dst", b"old")

    store.copy("src", "dst")

    assert store.read_bytes("dst") == b"new"


def test_copy_onto_itself_keeps_the_object(store: ObjectStore) -> None:
    store.write_bytes("same", b"data")

    store.copy("same", "same")
    store.move("same", "same")

    assert store.read_bytes("same") == b"data"


def test_copy_of_a_missing_key_raises_and_creates_nothing(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFoundError, match="ghost"):
        store.copy("ghost", "copy")
    assert keys(store) == []


def test_move_removes_the_source(store: ObjectStore) -> None:
    store.write_bytes("validated/tmp/part-0", b"rows")

    store.move("validated/tmp/part-0", "validated/ds/dt=2024-05-01/part-0")

    assert keys(store) == ["validated/ds/dt=2024-05-01/part-0"]
    assert store.read_bytes("validated/ds/dt=2024-05-01/part-0") == b"rows"


def test_move_of_a_missing_key_raises_and_creates_nothing(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFoundError, match="ghost"):
        store.move("ghost", "elsewhere")
    assert keys(store) == []


def test_delete_is_idempotent(store: ObjectStore) -> None:
    store.write_bytes("gone/soon", b"x")
    store.write_bytes("stays", b"y")

    store.delete("gone/soon")
    store.delete("gone/soon")
    store.delete("never/existed")

    assert keys(store) == ["stays"]


# -------------------------------------------------------------------- URLs


def test_presigned_url_downloads_the_object_without_credentials(store: ObjectStore) -> None:
    store.write_bytes("share/report.csv", b"a,b\n1,2\n")

    url = store.presigned_url("share/report.csv", expires=timedelta(minutes=5))

    parts = urlsplit(url)
    assert parts.scheme in {"http", "file"}
    assert parts.scheme == "file" or parts.hostname == "127.0.0.1"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"a,b\n1,2\n"


@pytest.mark.parametrize("expires", [0, -5, 8 * 24 * 3600, timedelta(days=8)])
def test_presigned_url_lifetime_outside_limits_is_refused(
    store: ObjectStore, expires: float | timedelta
) -> None:
    with pytest.raises(ValueError, match="expires"):
        store.presigned_url("k", expires=expires)


def test_url_for_names_the_key_under_the_store_url(store: ObjectStore) -> None:
    url = store.url_for("landing/acme/file.csv")

    assert url.startswith(store.url + "/")
    assert url.endswith("/landing/acme/file.csv")
    assert url.split(":", 1)[0] == ("s3" if isinstance(store, S3ObjectStore) else "file")


@pytest.mark.parametrize("key", ["landing/acme/file.csv", "curated/pos/dt=2026-01-01/a b%20c.csv"])
def test_key_at_reads_a_key_back_from_its_url_and_from_where_a_message_names_it(
    store: ObjectStore, key: str
) -> None:
    assert store.key_at(store.url_for(key)) == key
    if isinstance(store, LocalObjectStore):  # a shell hands the command the path unquoted
        assert store.key_at(str(store.root / key)) == key
    else:
        assert store.key_at(store.location_for(key)) == key


def test_key_at_names_nothing_outside_the_store(store: ObjectStore) -> None:
    assert store.key_at(store.url) is None
    assert store.key_at(store.url + "-sibling/k") is None
    assert store.key_at("s3://another-bucket/k") is None
    assert store.key_at("/elsewhere/k") is None
    assert store.key_at("https://example.com/k") is None


# -------------------------------------------------------------- bad keys


@pytest.mark.parametrize("key", BAD_KEYS)
def test_escaping_or_malformed_keys_are_refused_everywhere(store: ObjectStore, key: str) -> None:
    store.write_bytes("good", b"g")
    operations: list[Callable[[], object]] = [
        lambda: store.head(key),
        lambda: store.exists(key),
        lambda: store.open_read(key),
        lambda: store.open_write(key),
        lambda: store.write_bytes(key, b"x"),
        lambda: store.copy("good", key),
        lambda: store.copy(key, "good"),
        lambda: store.move("good", key),
        lambda: store.delete(key),
        lambda: store.url_for(key),
        lambda: store.presigned_url(key),
    ]

    for operation in operations:
        with pytest.raises(InvalidKeyError) as caught:
            operation()
        assert repr(key) in str(caught.value)

    assert keys(store) == ["good"]
    assert store.read_bytes("good") == b"g"


# ------------------------------------------------------------ conditional puts


def test_put_if_creates_only_when_the_key_is_free(store: ObjectStore) -> None:
    etag = store.put_if("_state/claims/a.json", b'{"owner": 1}', etag=None)
    assert store.head("_state/claims/a.json").etag == etag
    with pytest.raises(ObjectConflictError, match=r"a\.json"):
        store.put_if("_state/claims/a.json", b'{"owner": 2}', etag=None)
    assert store.read_bytes("_state/claims/a.json") == b'{"owner": 1}'


def test_put_if_replaces_only_the_expected_version(store: ObjectStore) -> None:
    first = store.put_if("_state/lease.json", b"v1", etag=None)
    second = store.put_if("_state/lease.json", b"v2", etag=first)
    assert second != first
    with pytest.raises(ObjectConflictError):
        store.put_if("_state/lease.json", b"v3", etag=first)
    assert store.read_bytes("_state/lease.json") == b"v2"


def test_put_if_with_an_etag_on_a_missing_key_is_a_conflict(store: ObjectStore) -> None:
    with pytest.raises(ObjectConflictError):
        store.put_if("_state/never-written.json", b"x", etag="0" * 32)
    assert not store.exists("_state/never-written.json")


def test_delete_if_removes_only_the_expected_version(store: ObjectStore) -> None:
    first = store.put_if("_state/doc.json", b"v1", etag=None)
    second = store.put_if("_state/doc.json", b"v2", etag=first)
    with pytest.raises(ObjectConflictError, match=r"doc\.json"):
        store.delete_if("_state/doc.json", etag=first)
    assert store.read_bytes("_state/doc.json") == b"v2"
    store.delete_if("_state/doc.json", etag=second)
    assert not store.exists("_state/doc.json")
    store.delete_if("_state/doc.json", etag=second)  # gone already: nothing to do
    assert keys(store) == []


def test_racing_conditional_creates_have_exactly_one_winner(store: ObjectStore) -> None:
    def claim(worker: int) -> bool:
        try:
            store.put_if("_state/claims/race.json", str(worker).encode(), etag=None)
        except ObjectConflictError:
            return False
        return True

    with ContextThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(claim, range(16)))
    assert outcomes.count(True) == 1
    winner = outcomes.index(True)
    assert store.read_bytes("_state/claims/race.json") == str(winner).encode()


def test_versioned_read_gives_content_and_the_etag_of_that_version(store: ObjectStore) -> None:
    store.write_bytes("_state/record.json", b'{"n": 1}')

    found = store.read_versioned("_state/record.json")

    assert found.key == "_state/record.json"
    assert found.data == b'{"n": 1}'
    assert found.etag == md5(b'{"n": 1}') == store.head("_state/record.json").etag


def test_put_if_against_a_versioned_read_fails_once_the_object_changed(
    store: ObjectStore,
) -> None:
    store.write_bytes("_state/record.json", b"v1")
    first = store.read_versioned("_state/record.json")
    store.write_bytes("_state/record.json", b"v2")

    with pytest.raises(ObjectConflictError):
        store.put_if("_state/record.json", b"v1 changed", etag=first.etag)
    latest = store.read_versioned("_state/record.json")
    store.put_if("_state/record.json", b"v2 changed", etag=latest.etag)
    assert store.read_bytes("_state/record.json") == b"v2 changed"


def test_versioned_read_of_a_missing_key_raises_object_not_found(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFoundError, match="absent"):
        store.read_versioned("_state/absent.json")


def test_download_copies_the_object_and_stays_a_snapshot(
    store: ObjectStore, tmp_path: Path
) -> None:
    data = patterned(3 * 1024 * 1024 + 17)
    store.write_bytes("in/a.bin", data)
    target = tmp_path / "a.bin"
    target.write_bytes(b"stale")
    assert store.download("in/a.bin", target) == len(data)
    store.write_bytes("in/a.bin", b"replaced")
    assert target.read_bytes() == data


def test_download_of_a_missing_object_raises_not_found(store: ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFoundError):
        store.download("in/missing.bin", tmp_path / "x")


def test_upload_writes_a_local_file_to_a_key(store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "b.bin"
    source.write_bytes(patterned(1024 * 1024 + 3))
    assert store.upload(source, "out/b.bin") == source.stat().st_size
    assert store.read_bytes("out/b.bin") == source.read_bytes()


def test_move_in_writes_a_local_file_to_a_key_and_consumes_it(
    store: ObjectStore, tmp_path: Path
) -> None:
    source = tmp_path / "c.bin"
    data = patterned(MIB + 5)
    source.write_bytes(data)
    assert store.move_in(source, "out/c.bin") == len(data)
    assert not source.exists()
    assert store.read_bytes("out/c.bin") == data
    assert store.head("out/c.bin").etag == md5(data)


def test_move_in_a_deferred_block_publishes_when_the_block_ends(
    store: ObjectStore, tmp_path: Path
) -> None:
    source = tmp_path / "d.csv"
    source.write_bytes(b"id\n1\n")
    with store.deferred_sync():
        store.move_in(source, "out/d.csv")
    assert store.read_bytes("out/d.csv") == b"id\n1\n"


# --------------------------------------------------------- abandoned writes


def test_a_write_abandoned_by_its_writer_is_removed_once_old_enough(store: ObjectStore) -> None:
    writer = store.open_write("zone/big.bin", part_size=MIN_PART_SIZE)
    writer.write(patterned(MIN_PART_SIZE + MIB))  # under way, as a killed process leaves it
    try:
        if not isinstance(store, S3ObjectStore):  # moto says every upload began in 2010
            assert store.remove_abandoned_writes(timedelta(hours=1)) == 0  # may still be running
        assert store.remove_abandoned_writes(timedelta(0), prefix="other/") == 0
        assert store.remove_abandoned_writes(timedelta(0), prefix="zone/") == 1
        assert store.remove_abandoned_writes(timedelta(0)) == 0
        assert keys(store) == []
    finally:
        writer.abort()
    store.write_bytes("zone/done.bin", b"finished")
    assert store.remove_abandoned_writes(timedelta(0)) == 0
    assert keys(store) == ["zone/done.bin"]


# ------------------------------------------------------------------ check


def test_a_store_that_is_there_passes_its_check(store: ObjectStore) -> None:
    store.write_bytes("a.txt", b"a")  # a local store's directory exists once written to
    store.check(timeout=5)


def test_a_store_that_is_not_there_fails_its_check_as_configuration(
    store: ObjectStore, tmp_path: Path
) -> None:
    if isinstance(store, S3ObjectStore):
        missing: ObjectStore = S3ObjectStore(
            "no-such-bucket-etl",
            client=store._client,  # the same endpoint, another bucket
        )
    else:
        missing = LocalObjectStore(tmp_path / "never-made")
    with pytest.raises(StorageConfigError, match="does not exist"):
        missing.check(timeout=5)


def test_a_store_that_is_there_passes_its_presence_check_emptied_or_not(
    store: ObjectStore,
) -> None:
    store.write_bytes("a.txt", b"a")  # a local store's directory exists once written to
    store.check_present()
    store.delete("a.txt")
    store.check_present()  # emptied, still there


def test_a_store_gone_since_start_up_never_reads_as_an_empty_store(
    store: ObjectStore, tmp_path: Path
) -> None:
    if isinstance(store, S3ObjectStore):
        gone: ObjectStore = S3ObjectStore("no-such-bucket-etl", client=store._client)
    else:
        root = tmp_path / "mounted"
        gone = LocalObjectStore(root)
        gone.write_bytes("a.txt", b"a")
        shutil.rmtree(root)

    def presence_then_listing() -> None:  # the presence check, else the next listing, says so
        gone.check_present()
        list(gone.list(""))

    with pytest.raises(StorageError):
        presence_then_listing()


# ------------------------------------------------------------ unaddressable keys

HOSTILE_KEYS = [
    "landing/acme/a\x01b.csv",
    "landing/acme/tab\there.csv",
    "landing/acme/back\\slash.csv",
    "landing/acme//empty-segment.csv",
    "landing//leading-slash.csv",
    "landing/acme/../escape.csv",
    "landing/acme/./dot.csv",
    "landing/acme/folder-with-content/",
]


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_an_unaddressable_object_is_left_out_of_list_but_listed_apart_and_copied_out(
    store: ObjectStore, key: str
) -> None:
    if isinstance(store, LocalObjectStore) and not local_store_can_hold(key):
        pytest.skip("a file system cannot hold this key")
    store.write_bytes("landing/acme/good.csv", b"good")
    plant_object(store, key, b"vendor bytes")

    (found,) = store.list_unaddressable("landing/")
    head = store.head_unaddressable(key)
    store.copy_unaddressable(key, "quarantine/rescued", etag=found.etag)

    assert keys(store, "landing/") == ["landing/acme/good.csv"]
    assert (found.key, found.size, found.etag) == (key, 12, md5(b"vendor bytes"))
    assert (head.key, head.etag) == (key, found.etag)
    assert store.read_bytes("quarantine/rescued") == b"vendor bytes"
    assert [i.key for i in store.list_unaddressable("landing/")] == [key]  # source untouched


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_one_listing_pass_gives_both_kinds_of_object_flagged(store: ObjectStore, key: str) -> None:
    if isinstance(store, LocalObjectStore) and not local_store_can_hold(key):
        pytest.skip("a file system cannot hold this key")
    store.write_bytes("landing/acme/good.csv", b"good")
    plant_object(store, key, b"vendor bytes")

    every = list(store.list_every("landing/"))

    assert [(info.key, ok) for info, ok in every] == sorted(
        [("landing/acme/good.csv", True), (key, False)]
    )
    assert [info for info, ok in every if ok] == list(store.list("landing/"))
    assert [info for info, ok in every if not ok] == list(store.list_unaddressable("landing/"))


def test_an_empty_folder_marker_is_not_an_unaddressable_object(store: ObjectStore) -> None:
    if isinstance(store, LocalObjectStore):
        pytest.skip("folder markers are an S3 thing")
    plant_object(store, "landing/acme/", b"")

    assert list(store.list_unaddressable("landing/")) == []
    assert list(store.list_every("landing/")) == []


def test_copying_an_unaddressable_object_that_changed_is_refused(store: ObjectStore) -> None:
    key = "landing/acme/a\x01b.csv"
    plant_object(store, key, b"first")
    etag = store.head_unaddressable(key).etag
    plant_object(store, key, b"second version")

    with pytest.raises(ObjectConflictError):
        store.copy_unaddressable(key, "quarantine/rescued", etag=etag)

    assert not store.exists("quarantine/rescued")


def test_a_local_store_never_reads_outside_its_root_through_an_unaddressable_key(
    tmp_path: Path,
) -> None:
    (tmp_path / "secret.txt").write_bytes(b"secret")
    (tmp_path / "store").mkdir()
    with open_store(tmp_path / "store") as local:
        for key in ("../secret.txt", "a/../../secret.txt", "/etc/passwd", "a//b"):
            with pytest.raises(InvalidKeyError):
                local.head_unaddressable(key)
            with pytest.raises(InvalidKeyError):
                local.copy_unaddressable(key, "rescued", etag="x")
