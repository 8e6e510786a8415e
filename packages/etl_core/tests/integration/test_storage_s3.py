"""What only the S3 backend does: pagination, multipart copy, aborts, resumed reads."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from etl_core.errors import ObjectNotFoundError, StorageError
from etl_core.storage import MIN_PART_SIZE, S3ObjectStore, open_store
from etl_core.testing.s3 import create_bucket

pytestmark = pytest.mark.s3

MIB = 1024 * 1024


@pytest.fixture
def s3_store(s3_bucket: str, s3_store_options: dict[str, Any]) -> Iterator[S3ObjectStore]:
    with S3ObjectStore(s3_bucket, uuid.uuid4().hex, **s3_store_options) as store:
        yield store


def put_many(store: S3ObjectStore, names: list[str]) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda name: store.write_bytes(name, b"."), names))


def test_listing_more_than_one_page_of_1000_returns_all(s3_store: S3ObjectStore) -> None:
    names = [f"k/{n:05d}" for n in range(1005)]
    put_many(s3_store, names)

    assert [info.key for info in s3_store.list("k/")] == names


def test_listing_with_small_pages_follows_continuation_tokens(
    s3_store: S3ObjectStore, s3_store_options: dict[str, Any]
) -> None:
    names = [f"p/{n:03d}" for n in range(25)]
    put_many(s3_store, names)
    paged = open_store(s3_store.url, page_size=10, **s3_store_options)

    assert [info.key for info in paged.list()] == names


def test_store_prefix_is_a_folder_boundary(s3_endpoint: str, s3_bucket: str) -> None:
    base = uuid.uuid4().hex
    with open_store(f"s3://{s3_bucket}/{base}", endpoint_url=s3_endpoint) as outer:
        outer.write_bytes("data/x", b"1")
        outer.write_bytes("data-other/y", b"2")
        inner = open_store(f"s3://{s3_bucket}/{base}/data", endpoint_url=s3_endpoint)

        assert [i.key for i in inner.list()] == ["x"]


def test_folder_marker_keys_are_skipped_in_listings(s3_store: S3ObjectStore) -> None:
    s3_store.client.put_object(Bucket=s3_store.bucket, Key=f"{s3_store.prefix}/folder/", Body=b"")
    s3_store.write_bytes("folder/file", b"x")

    assert [i.key for i in s3_store.list()] == ["folder/file"]


def test_multipart_copy_above_threshold_copies_every_part(
    s3_bucket: str, s3_store_options: dict[str, Any]
) -> None:
    content = bytes(range(256)) * (11 * MIB // 256) + b"tail"
    with S3ObjectStore(
        s3_bucket, uuid.uuid4().hex, multipart_copy_threshold=MIN_PART_SIZE, **s3_store_options
    ) as store:
        store.write_bytes("src", content)

        store.copy("src", "dst")

        copied = store.head("dst")
        assert copied.size == len(content)
        assert copied.etag.endswith("-3")  # three copied parts: 5 + 5 + 1 MiB
        assert hashlib.md5(store.read_bytes("dst"), usedforsecurity=False).digest() == (
            hashlib.md5(content, usedforsecurity=False).digest()
        )


def test_failed_multipart_write_leaves_no_pending_upload(s3_store: S3ObjectStore) -> None:
    def write_then_fail() -> None:
        with s3_store.open_write("big", part_size=MIN_PART_SIZE) as writer:
            writer.write(b"x" * (6 * MIB))  # one part is uploaded
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail()

    uploads = s3_store.client.list_multipart_uploads(
        Bucket=s3_store.bucket, Prefix=s3_store.prefix
    ).get("Uploads", [])
    assert uploads == []


def test_read_resumes_after_the_connection_drops(s3_store: S3ObjectStore) -> None:
    content = bytes(range(256)) * (2 * MIB // 256)
    s3_store.write_bytes("obj", content)

    with s3_store.open_read("obj") as stream:
        head = stream.read(MIB)
        stream.raw._body.close()  # type: ignore[attr-defined]  # sever the HTTP response
        rest = stream.read()

    assert head + rest == content


def test_read_refuses_to_splice_a_replaced_object(s3_store: S3ObjectStore) -> None:
    s3_store.write_bytes("obj", b"a" * (2 * MIB))

    with s3_store.open_read("obj") as stream:
        stream.read(MIB)
        s3_store.write_bytes("obj", b"b" * (2 * MIB))
        stream.raw._body.close()  # type: ignore[attr-defined]
        with pytest.raises(StorageError, match="changed while it was being read"):
            stream.read()


def test_missing_bucket_is_reported_by_name(s3_store_options: dict[str, Any]) -> None:
    store = open_store("s3://no-such-bucket-etl/x", **s3_store_options)

    with pytest.raises(StorageError, match="no-such-bucket-etl") as caught:
        list(store.list())
    assert not isinstance(caught.value, ObjectNotFoundError)


def test_create_bucket_gives_unique_names(s3_endpoint: str) -> None:
    first, second = create_bucket(s3_endpoint), create_bucket(s3_endpoint)

    assert first != second
    assert list(open_store(f"s3://{first}", endpoint_url=s3_endpoint).list()) == []


def test_the_test_server_lets_one_of_many_racing_conditional_writes_win(
    s3_endpoint: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 checks ``If-Match`` and writes atomically; the test server must too, or every race
    test of the stores would measure the server's race (moto checks, then writes)."""
    import boto3
    from moto.s3.models import S3Backend

    slow_write = S3Backend.put_object

    def write_after_a_while(self: Any, *args: Any, **kwargs: Any) -> Any:
        time.sleep(0.02)  # widen moto's gap between its check and its write
        return slow_write(self, *args, **kwargs)

    monkeypatch.setattr(S3Backend, "put_object", write_after_a_while)

    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    key = f"race/{uuid.uuid4().hex}"
    etag = client.put_object(Bucket=s3_bucket, Key=key, Body=b"0")["ETag"]
    for round_ in range(5):
        start = threading.Barrier(8, timeout=30)

        def write(
            writer: int,
            expected: str = etag,
            round_: int = round_,
            start: threading.Barrier = start,
        ) -> bool:
            start.wait()
            try:
                client.put_object(
                    Bucket=s3_bucket, Key=key, Body=f"{round_}-{writer}".encode(), IfMatch=expected
                )
            except client.exceptions.ClientError:
                return False
            return True

        with ThreadPoolExecutor(max_workers=8) as pool:
            winners = sum(pool.map(write, range(8)))
        assert winners == 1, f"round {round_}: {winners} writers won against one version"
        etag = client.head_object(Bucket=s3_bucket, Key=key)["ETag"]
