"""Bodies parsed and chunks encoded by orjson, with the standard library for what it refuses;
the raw archive's background writer; the collector settings of a run."""

from __future__ import annotations

import gc
import gzip
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from data_pipeline.errors import ApiResponseError
from data_pipeline.ingest.archive import RunArchive
from data_pipeline.ingest.chunks import encode_chunk
from data_pipeline.ingest.client import Response
from data_pipeline.ingest.collector import FULL_COLLECTION_THRESHOLD, few_full_collections
from data_pipeline.ingest.documents import parse_body
from etl_core.errors import StorageError
from etl_core.storage import LocalObjectStore

WHERE = {"source": "shop", "endpoint": "items", "url": "http://127.0.0.1/items"}


def lines(chunk: bytes) -> list[str]:
    return gzip.decompress(chunk).decode().splitlines()


def test_a_chunk_is_one_json_line_per_record_keys_in_order_text_unescaped() -> None:
    records = [{"b": 1, "a": "é ü", "n": None, "x": [1.5, {"y": True}]}, {"id": 2}]
    assert lines(encode_chunk(records)) == [
        '{"b":1,"a":"é ü","n":null,"x":[1.5,{"y":true}]}',
        '{"id":2}',
    ]


def test_a_chunk_is_the_same_lines_each_time_with_no_timestamp_in_its_header() -> None:
    records = [{"id": i, "name": f"item {i}"} for i in range(500)]
    first, second = encode_chunk(records), encode_chunk(records)
    assert gzip.decompress(first) == gzip.decompress(second)
    assert first[4:8] == b"\0\0\0\0"  # gzip's MTIME: none


def test_integers_beyond_64_bits_are_parsed_and_landed_exactly() -> None:
    body = b'{"data": [{"id": 123456789012345678901234567890}]}'
    document = parse_body(body, **WHERE)
    assert document["data"][0]["id"] == 123456789012345678901234567890
    assert lines(encode_chunk(document["data"])) == ['{"id":123456789012345678901234567890}']


@pytest.mark.parametrize(
    "body",
    [
        b'[{"id": 1, "name": "half an emoji \\ud83d", "note": "caf\xc3\xa9"}]',
        b'[{"id": 2, "\\udc00": "a lone surrogate as a key"}]',
    ],
)
def test_a_lone_surrogate_lands_escaped_as_sent_and_reads_back_the_same(body: bytes) -> None:
    records = parse_body(body, source="s", endpoint="e", url="u")

    [line] = gzip.decompress(encode_chunk(records)).splitlines()

    line.decode("utf-8")  # valid UTF-8: a lone surrogate has no UTF-8 form, only its escape
    assert json.loads(line) == records[0]
    assert b"\\ud83d" in line or b"\\udc00" in line


def test_a_body_that_is_not_json_names_the_url_and_quotes_its_start() -> None:
    with pytest.raises(ApiResponseError, match=r"items is not JSON .*'<html>oops"):
        parse_body(b"<html>oops</html>", **WHERE)
    with pytest.raises(ApiResponseError, match="is not JSON"):
        parse_body(b"\xff\xfe{", **WHERE)


def response(body: bytes) -> Response:
    return Response(
        url="http://127.0.0.1/items?page=1",
        status=200,
        headers={"content-type": "application/json"},
        body=body,
        fetched_at=datetime(2026, 3, 1, tzinfo=UTC),
        seconds=0.01,
    )


def archive_pages(archive: RunArchive, pages: int) -> None:
    """Add ``pages`` pages (``{"data": [<number>]}``), then write the manifest."""
    for number in range(pages):
        archive.add(number, response(b'{"data": [%d]}' % number))
    archive.write_manifest(status="running", records=pages, chunks=1)


def test_the_manifest_lists_every_page_written_before_it(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    archive = RunArchive(store, "shop", "items", date(2026, 3, 1), "run1", resume_at=0)
    try:
        archive_pages(archive, 12)  # more than the writer may have pending
    finally:
        archive.close()
    manifest = json.loads(store.read_bytes(archive.manifest_key))
    assert [entry["page"] for entry in manifest["pages"]] == list(range(12))
    for entry in manifest["pages"]:
        body = gzip.decompress(store.read_bytes(entry["key"]))
        assert body == b'{"data": [%d]}' % entry["page"]
        assert entry["bytes"] == len(body)


class FailingStore(LocalObjectStore):
    def write_bytes(self, key: str, data: object) -> None:
        if key.endswith("/00003.json.gz"):
            raise StorageError(f"disk full writing {key}", key=key, url=self.url)
        super().write_bytes(key, data)  # type: ignore[arg-type]


def test_a_failed_page_write_fails_the_manifest_write_instead_of_being_listed(
    tmp_path: Path,
) -> None:
    store = FailingStore(tmp_path)
    archive = RunArchive(store, "shop", "items", date(2026, 3, 1), "run1", resume_at=0)
    try:
        with pytest.raises(StorageError, match=r"00003\.json\.gz"):
            archive_pages(archive, 6)
    finally:
        archive.close()
    assert not store.exists(archive.manifest_key)


def test_a_run_makes_full_collections_rare_and_restores_the_collector_after() -> None:
    before = gc.get_threshold()
    with few_full_collections():
        assert gc.get_threshold()[2] == FULL_COLLECTION_THRESHOLD
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_nan_which_only_the_standard_library_reads_lands_as_null() -> None:
    document = parse_body(b'{"data": [{"id": 1, "score": NaN}]}', **WHERE)
    assert lines(encode_chunk(document["data"])) == ['{"id":1,"score":null}']


@pytest.mark.parametrize(
    "body",
    [
        b'{"data": [{"id": 123456789012345678901234567890, "score": NaN}]}',
        b'{"data": [{"id": 1, "score": [Infinity], "name": "half \\ud83d"}]}',
    ],
    ids=["beyond-64-bits", "lone-surrogate"],
)
def test_nan_lands_as_null_in_a_line_the_standard_library_writes(body: bytes) -> None:
    document = parse_body(body, **WHERE)

    [line] = lines(encode_chunk(document["data"]))

    assert "NaN" not in line  # JSON, as every other line
    assert "Infinity" not in line
    assert json.loads(line)["score"] in (None, [None])


def _nested(depth: int) -> dict[str, object]:
    """A record of ``depth`` levels of objects and arrays (itself the first)."""
    value: list[object] = []
    for _ in range(depth - 2):
        value = [value]
    return {"id": 1, "deep": value}


def _from_stack(frames: int, call):  # type: ignore[no-untyped-def]
    return call() if frames == 0 else _from_stack(frames - 1, call)


@pytest.mark.parametrize("frames", [0, 300])
def test_a_record_lands_or_not_by_its_depth_alone_not_the_caller_stack(frames: int) -> None:
    from data_pipeline.ingest.chunks import MAX_WRITE_DEPTH, encode_lines

    deepest = _nested(MAX_WRITE_DEPTH)
    lines = _from_stack(frames, lambda: encode_lines([deepest]))
    assert json.loads(lines) == deepest
    with pytest.raises(RecursionError):  # written by the standard library from a shallow stack
        _from_stack(frames, lambda: encode_lines([_nested(MAX_WRITE_DEPTH + 1)]))
