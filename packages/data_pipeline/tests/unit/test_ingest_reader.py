"""The page reader process: what it answers equals what the walk reads itself, it answers
"not here" for every page the walk must read, and it never outlives or hangs its parent."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from data_pipeline.ingest.chunks import encode_lines
from data_pipeline.ingest.profile import MAX_FIELDS, FieldProfile
from data_pipeline.ingest.reader import PageReader, PageReaderError, read_page

WAIT = 20.0
"""Seconds a test waits for the child at most (a hang fails, it does not block the suite)."""


def random_records(rng: random.Random, count: int) -> list[dict[str, Any]]:
    values: list[Any] = [
        None,
        True,
        7,
        -2.5,
        "2026-03-01",
        "2026-03-01T10:00:00Z",
        "2026-13-01T10:00:00Z",
        "text",
        "é ✓ \u2028",
        {"a": [1, {"b": None}]},
        [1, "x"],
    ]
    shapes = [("id", "name", "at"), ("id", "at", "name"), ("id", "name", "at", "extra")]
    records = []
    for number in range(count):
        names = shapes[0] if rng.random() < 0.8 else rng.choice(shapes)
        record = {name: rng.choice(values) for name in names}
        record["id"] = number
        records.append(record)
    return records


def read_here(body: bytes, records_path: str) -> tuple[list[Any], FieldProfile]:
    document = json.loads(body)
    for part in records_path.split("."):
        document = document[int(part)] if isinstance(document, list) else document[part]
    profile = FieldProfile()
    profile.add_many(document)
    return document, profile


@pytest.mark.parametrize("seed", range(5))
def test_a_reading_equals_the_page_read_in_the_walk(seed: int) -> None:
    rng = random.Random(seed)
    records = random_records(rng, rng.choice([1, 5, 40, 300]))
    body = json.dumps({"meta": {"total": 9}, "data": records}, ensure_ascii=rng.random() < 0.5)

    reading = read_page(body.encode(), "data", ["id"])

    assert reading is not None
    expected, profile = read_here(body.encode(), "data")
    assert reading.count == len(expected)
    assert reading.lines == encode_lines(expected)
    assert reading.profile == profile.to_dict()
    assert list(reading.profile["fields"]) == list(profile.fields)  # the same order
    assert reading.document == {"meta": {"total": 9}, "data": []}


def test_a_nested_records_path_is_emptied_and_the_rest_kept() -> None:
    body = json.dumps({"a": [{"items": [{"id": 1}, {"id": 2}]}], "next": "x"}).encode()

    reading = read_page(body, "a.0.items", ["id"])

    assert reading is not None
    assert reading.count == 2
    assert reading.document == {"a": [{"items": []}], "next": "x"}


def test_a_body_without_records_is_an_empty_reading() -> None:
    reading = read_page(b'{"total": 0}', "data", ["id"])

    assert reading is not None
    assert (reading.count, reading.lines, reading.document) == (0, b"", {"total": 0})


@pytest.mark.parametrize(
    ("body", "records_path"),
    [
        (b"not json", "data"),
        (b'{"data": {"id": 1}}', "data"),  # not an array: a dead letter
        (b'{"data": [{"id": 1}, 3]}', "data"),  # an item that is not an object
        (b'{"data": [{"id": 1}, {"name": "x"}]}', "data"),  # no primary key
        (b'{"data": [{"id": null}]}', "data"),
        (b'{"data": [{"id": 123456789012345678901234567890}]}', "data"),  # beyond 64 bits
        (b'{"data": [{"id": 1, "x": NaN}]}', "data"),  # orjson refuses it
        (b'[{"id": 1}]', ""),  # the body is the array: the paginator reads it whole
    ],
)
def test_the_reader_leaves_to_the_walk_every_page_it_cannot_take_whole(
    body: bytes, records_path: str
) -> None:
    assert read_page(body, records_path, ["id"]) is None


def test_a_page_of_more_fields_than_profiled_is_left_to_the_walk() -> None:
    record = {f"f{number}": number for number in range(MAX_FIELDS + 1)} | {"id": 1}

    assert read_page(json.dumps({"data": [record]}).encode(), "data", ["id"]) is None


def test_a_nested_primary_key_is_checked_item_by_item() -> None:
    good = b'{"data": [{"k": {"id": 1}}, {"k": {"id": 2}}]}'
    bad = b'{"data": [{"k": {"id": 1}}, {"k": {}}]}'

    assert read_page(good, "data", ["k.id"]) is not None
    assert read_page(bad, "data", ["k.id"]) is None


@pytest.mark.parametrize("seed", range(4))
def test_merged_page_profiles_count_what_adding_the_records_counts(seed: int) -> None:
    rng = random.Random(seed)
    records = random_records(rng, 200)
    whole, merged = FieldProfile(), FieldProfile()
    start = 0
    while start < len(records):
        end = start + rng.randint(1, 30)
        page = records[start:end]
        whole.add_many(page)
        part = FieldProfile()
        part.add_many(page)
        assert merged.can_merge(part.to_dict())
        merged.merge(part.to_dict())
        start = end

    assert merged.to_dict() == whole.to_dict()
    assert list(merged.fields) == list(whole.fields)
    assert [list(k) for k in merged.fields.values()] == [list(k) for k in whole.fields.values()]


def test_a_profile_is_not_merged_past_the_field_limit() -> None:
    full = FieldProfile()
    full.add({f"f{number}": 1 for number in range(MAX_FIELDS)})
    other = FieldProfile()
    other.add({"new": 1})

    assert not full.can_merge(other.to_dict())
    assert full.can_merge({"records": 1, "fields": {"f1": {"int": 1}}, "truncated": False})


def test_the_child_answers_every_request_from_many_threads_in_kind() -> None:
    rng = random.Random(7)
    bodies = [
        json.dumps({"data": random_records(rng, rng.randint(0, 50)), "n": n}).encode()
        for n in range(40)
    ]
    bodies[5] = b"broken"
    reader = PageReader()
    try:
        with ThreadPoolExecutor(4) as pool:
            futures = list(pool.map(lambda body: reader.submit(body, "data", ["id"]), bodies))
        readings = [future.result(WAIT) for future in futures]
    finally:
        reader.close()

    assert readings == [read_page(body, "data", ["id"]) for body in bodies]
    assert readings[5] is None


def test_a_child_that_dies_fails_the_pages_waiting_and_the_next_ones_without_hanging() -> None:
    reader = PageReader()
    try:
        assert reader.submit(b'{"data": []}', "data", ["id"]).result(WAIT) is not None
        reader._process.kill()  # an out-of-memory kill, say

        started = time.monotonic()
        with pytest.raises(PageReaderError, match="page reader process ended"):
            reader.submit(b'{"data": [{"id": 1}]}', "data", ["id"]).result(WAIT)
        with pytest.raises(PageReaderError):
            reader.submit(b'{"data": [{"id": 2}]}', "data", ["id"]).result(WAIT)
        assert time.monotonic() - started < WAIT
    finally:
        reader.close()


def test_the_child_ends_when_its_parent_is_killed() -> None:
    script = textwrap.dedent(
        """
        import os, signal, sys
        from data_pipeline.ingest.reader import PageReader
        reader = PageReader()
        assert reader.submit(b'{"data": []}', "data", ["id"]).result(20) is not None
        print(reader._process.pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    parent = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=WAIT, check=False
    )
    assert parent.returncode == -signal.SIGKILL, parent.stderr
    child = int(parent.stdout.strip())

    deadline = time.monotonic() + WAIT
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_the_child_ignores_ctrl_c_its_parent_stops_the_walk() -> None:
    reader = PageReader()
    try:
        assert reader.submit(b'{"data": []}', "data", ["id"]).result(WAIT) is not None
        reader._process.send_signal(signal.SIGINT)
        reader._process.send_signal(signal.SIGTERM)
        time.sleep(0.2)

        assert reader.submit(b'{"data": [{"id": 1}]}', "data", ["id"]).result(WAIT) is not None
    finally:
        reader.close()
    assert reader._process.returncode == 0


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, reaped by init only later, counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        os.kill(pid, 0)
        return True


def test_a_process_forked_after_the_reader_started_starts_its_own() -> None:
    script = textwrap.dedent(
        """
        import os, sys
        from data_pipeline.ingest.flow import IngestContext
        from data_pipeline.ingest.reader import PageReader
        context = IngestContext(None, None, None, "run", reader=PageReader())
        first = context.page_reader()
        pid = os.fork()
        if pid == 0:
            mine = context.page_reader()
            ok = mine is not first and mine.submit(b'{"data": []}', "data", ["id"]).result(20)
            context.close()
            os._exit(0 if ok is not None else 3)
        _, status = os.waitpid(pid, 0)
        assert first.submit(b'{"data": [{"id": 1}]}', "data", ["id"]).result(20).count == 1
        context.close()
        sys.exit(os.waitstatus_to_exitcode(status))
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=WAIT, check=False
    )
    assert run.returncode == 0, run.stderr


def test_a_data_pipeline_module_in_the_working_directory_does_not_shadow_the_child(
    tmp_path, monkeypatch
) -> None:
    (tmp_path / "data_pipeline.py").write_text("raise SystemExit('the wrong data_pipeline')\n")
    monkeypatch.chdir(tmp_path)
    reader = PageReader()
    try:
        assert reader.submit(b'{"data": [{"id": 1}]}', "data", ["id"]).result(WAIT) is not None
    finally:
        reader.close()
