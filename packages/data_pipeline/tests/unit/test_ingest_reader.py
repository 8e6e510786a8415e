"""The page reader process: what it answers equals what the walk reads itself, it answers
"not here" for every page the walk must read, and it never outlives or hangs its parent."""

from __future__ import annotations

import fcntl
import io
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from data_pipeline.ingest import reader as reader_module
from data_pipeline.ingest.chunks import encode_lines
from data_pipeline.ingest.documents import extract_records
from data_pipeline.ingest.profile import MAX_FIELDS, FieldProfile
from data_pipeline.ingest.reader import (
    _ANSWER,
    _REQUEST,
    PIPE_BYTES,
    PageReader,
    PageReaderError,
    _read_answer,
    _serve,
    read_page,
)

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
        (b"[]", "data"),
        (b'{"data": []}', "data.items"),
        (b'{"data": {"items": null}}', "data.items"),
    ],
)
def test_an_empty_array_or_null_on_the_records_path_is_an_empty_reading(
    body: bytes, records_path: str
) -> None:
    # an empty array holds nothing, as null does (PHP writes an empty map as [])
    reading = read_page(body, records_path, ["id"])

    assert reading is not None
    assert (reading.count, reading.lines) == (0, b"")
    document = json.loads(body)
    assert extract_records(document, records_path, source="s", endpoint="e", url="u") == []


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


class _Dribbling(io.RawIOBase):
    """An unbuffered pipe whose every write is cut short (a signal stopping it midway)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        part = bytes(data[:1000])
        self.data += part
        return len(part)


def test_answers_written_in_parts_reach_the_walk_whole() -> None:
    rng = random.Random(11)
    pages = [json.dumps({"data": random_records(rng, 40), "n": n}).encode() for n in range(3)]
    bodies = [*pages, b"broken"]
    settings = json.dumps({"records_path": "data", "primary_key": ["id"]}).encode()
    requests = b"".join(
        _REQUEST.pack(n, len(settings), len(body)) + settings + body
        for n, body in enumerate(bodies)
    )
    out = _Dribbling()

    _serve(io.BufferedReader(io.BytesIO(requests)), out)  # type: ignore[arg-type]

    stream = io.BytesIO(bytes(out.data))
    answers = [_read_answer(stream) for _ in bodies]
    assert answers == [(n, read_page(body, "data", ["id"])) for n, body in enumerate(bodies)]
    assert _read_answer(stream) is None


class _Sink:
    """A stream that keeps only how many bytes were written to it."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: Any) -> int:
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass


def test_a_large_answer_is_written_without_a_copy_of_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The child holds an answer once: a page of a gigabyte's lines does not take two."""
    lines = b"x" * (8 * PIPE_BYTES)
    monkeypatch.setattr(reader_module, "_answer", lambda body, path, key: (1, b"{}", lines))
    settings = json.dumps({"records_path": "data", "primary_key": ["id"]}).encode()
    request = _REQUEST.pack(0, len(settings), 2) + settings + b"{}"
    out = _Sink()

    tracemalloc.start()
    try:
        _serve(io.BufferedReader(io.BytesIO(request)), out)  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert out.size == _ANSWER.size + 2 + len(lines)
    assert peak < len(lines) // 2


@pytest.mark.skipif(
    not hasattr(fcntl, "F_GETPIPE_SZ")
    or int(open("/proc/sys/fs/pipe-max-size").read()) < PIPE_BYTES,  # noqa: SIM115
    reason="pipe capacity is Linux's, within its limit",
)
def test_the_pipes_to_the_child_hold_a_whole_page_and_its_answer() -> None:
    reader = PageReader()
    try:
        assert reader._process is not None
        for pipe in (reader._process.stdin, reader._process.stdout):
            assert pipe is not None
            assert fcntl.fcntl(pipe.fileno(), fcntl.F_GETPIPE_SZ) >= PIPE_BYTES
        assert reader.submit(b'{"data": [{"id": 1}]}', "data", ["id"]).result(WAIT) is not None
    finally:
        reader.close()


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


@pytest.mark.parametrize("unbuffered", [False, True])
def test_a_child_whose_parent_is_gone_ends_quietly(unbuffered: bool) -> None:
    """Its answers unread (the parent killed): no "Exception ignored" on the stderr it
    shares with the runtime's JSON log lines."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    child = subprocess.Popen(
        [sys.executable, "-m", "data_pipeline.ingest.reader"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    assert child.stderr is not None
    body = json.dumps({"data": [{"id": n, "text": "x" * 50} for n in range(20_000)]}).encode()
    settings = json.dumps({"records_path": "data", "primary_key": ["id"]}).encode()
    child.stdout.close()
    child.stdin.write(_REQUEST.pack(0, len(settings), len(body)) + settings + body)
    child.stdin.close()
    assert child.wait(WAIT) == 0
    assert child.stderr.read() == b""
    child.stderr.close()


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


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    "body",
    [
        # beyond what orjson encodes (254 levels), outside the records array: the meta
        '{"total": 1, "data": [{"id": 1}], "debug": ' + _nested(300) + "}",
        # deep enough that json's encoder (the lines' fallback) runs out of recursion
        '{"data": [{"id": 1, "deep": ' + _nested(1000) + "}]}",
    ],
    ids=["meta", "records"],
)
def test_a_page_nested_deeper_than_the_encoders_go_is_left_to_the_walk_and_the_child_lives_on(
    body: str,
) -> None:
    reader = PageReader()
    try:
        assert reader.submit(body.encode(), "data", ["id"]).result(WAIT) is None
        after = reader.submit(b'{"data": [{"id": 2}]}', "data", ["id"]).result(WAIT)
    finally:
        reader.close()

    assert after is not None
    assert after.count == 1
    assert reader._process is not None
    assert reader._process.returncode == 0


def test_an_answer_that_cannot_be_read_fails_the_pages_and_nothing_hangs(monkeypatch) -> None:
    from data_pipeline.ingest import reader as module

    read = module._read_answer
    answers = {"read": 0}

    def unreadable_second(stream: Any) -> Any:
        answers["read"] += 1
        if answers["read"] == 2:
            raise ValueError("a torn answer")
        return read(stream)

    monkeypatch.setattr(module, "_read_answer", unreadable_second)
    body = json.dumps({"data": [{"id": n, "s": "x" * 200} for n in range(2000)]}).encode()
    reader = PageReader()
    started = time.monotonic()
    futures: list[Any] = []

    def feed() -> None:  # enough pages to fill both pipes, were nobody reading
        futures.extend(reader.submit(body, "data", ["id"]) for _ in range(50))

    for step in (feed, reader.close):  # daemons: a hang fails the test, not the suite
        thread = threading.Thread(target=step, daemon=True)
        thread.start()
        thread.join(WAIT)
        assert not thread.is_alive(), f"{step.__name__} hangs"

    assert time.monotonic() - started < WAIT
    assert reader.failed
    failed = [future for future in futures if future.exception(WAIT) is not None]
    assert failed
    assert all(isinstance(f.exception(), PageReaderError) for f in failed)
    assert "cannot be read" in str(failed[-1].exception())


class _Interrupted(BaseException):
    """A time limit striking in the middle of a write (as Celery's SoftTimeLimitExceeded)."""


def test_a_request_stopped_mid_write_fails_the_reader_and_kills_the_child() -> None:
    reader = PageReader()
    try:
        assert reader._process is not None
        stdin = reader._process.stdin
        writes = {"done": 0}

        class Torn:
            def write(self, data: bytes) -> int:
                writes["done"] += 1
                if writes["done"] == 2:
                    raise _Interrupted
                return stdin.write(data)

            def flush(self) -> None:
                stdin.flush()

            def __getattr__(self, name: str) -> Any:
                return getattr(stdin, name)

        reader._process.stdin = Torn()  # type: ignore[assignment]
        with pytest.raises(_Interrupted):
            reader.submit(b'{"data": [{"id": 1}]}', "data", ["id"])
        reader._process.stdin = stdin

        assert reader.failed
        with pytest.raises(PageReaderError):
            reader.submit(b'{"data": []}', "data", ["id"]).result(WAIT)
        assert reader._process.wait(WAIT) == -signal.SIGKILL
    finally:
        reader.close()


def test_a_child_that_cannot_start_fails_its_pages_at_once(monkeypatch) -> None:
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    reader = PageReader()
    try:
        assert reader.failed
        with pytest.raises(PageReaderError, match="could not start"):
            reader.submit(b'{"data": []}', "data", ["id"]).result(WAIT)
    finally:
        reader.close()


def test_a_body_too_large_for_the_wire_is_left_to_the_walk(monkeypatch) -> None:
    from data_pipeline.ingest import reader as module

    monkeypatch.setattr(module, "MAX_BODY", 16)
    reader = PageReader()
    try:
        assert (
            reader.submit(b'{"data": [{"id": 1}, {"id": 2}]}', "data", ["id"]).result(WAIT) is None
        )
        assert reader.submit(b'{"data": []}', "data", ["id"]).result(WAIT) is not None
    finally:
        reader.close()


def test_the_child_has_its_own_session_so_ctrl_c_at_the_terminal_is_the_parents() -> None:
    reader = PageReader()
    try:
        assert reader._process is not None
        assert os.getsid(reader._process.pid) != os.getsid(0)
    finally:
        reader.close()


def test_copies_of_the_context_share_one_reader_closed_with_the_original() -> None:
    from dataclasses import replace

    from data_pipeline.ingest.flow import IngestContext

    context = IngestContext(None, None, None, "run")  # type: ignore[arg-type]
    readers = {id(replace(context, run_id=f"run-{n}").page_reader()) for n in range(5)}
    [reader] = [context.page_reader()]
    assert readers == {id(reader)}
    context.close()
    assert reader._process is not None
    assert reader._process.poll() is not None


def _reader_children() -> list[int]:
    """This process's page reader children still running."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z" and b"ingest.reader" in command:
            found.append(int(entry))
    return found


def test_api_window_units_through_the_worker_path_share_one_reader_child(monkeypatch) -> None:
    import data_pipeline.ingest
    from data_pipeline.ingest.flow import IngestContext
    from data_pipeline.tasks import LaneContext, run_lane_unit
    from etl_core.work import WorkUnit
    from etl_core.work.events import API_WINDOW, DATA_PIPELINE

    def a_unit_reading_aside(context: IngestContext, unit: WorkUnit) -> list[Any]:
        context.page_reader().submit(b'{"data": []}', "data", ["id"]).result(WAIT)
        return []

    monkeypatch.setattr(data_pipeline.ingest, "ingest_unit", a_unit_reading_aside)
    before = set(_reader_children())
    ingest = IngestContext(None, None, None, "run")  # type: ignore[arg-type]
    lane = LaneContext(None, ingest)  # type: ignore[arg-type]
    for number in range(4):
        unit = WorkUnit(DATA_PIPELINE, API_WINDOW, f"shop/items/{number}", {"run_id": "r"})
        run_lane_unit(lane, unit)
    running = set(_reader_children()) - before
    ingest.close()  # what the worker closes at its end

    assert len(running) == 1
    deadline = time.monotonic() + WAIT
    while set(_reader_children()) - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not set(_reader_children()) - before


@pytest.mark.parametrize("seed", range(5))
def test_lines_stamped_with_provenance_are_the_stamped_records_lines(seed: int) -> None:
    from data_pipeline.ingest.records import Provenance

    rng = random.Random(seed)
    records = random_records(rng, 60)
    records[rng.randrange(60)] = {}
    records[rng.randrange(60)]["text"] = 'a "}\n" inside, {"x": {}}'
    stamp = Provenance(
        url="http://h/p?a=1&b=é", fetched_at="2026-03-01T00:00:00+00:00", page=7, run="r"
    )
    lines = encode_lines(records)

    stamped = stamp.stamp_lines(lines)

    assert stamped == encode_lines([stamp.stamp(dict(record)) for record in records])
    assert stamp.stamp_lines(b"") == b""
