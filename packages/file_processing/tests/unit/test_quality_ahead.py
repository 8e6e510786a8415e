"""The checking query started ahead, while the pre-pass reads the file: the same report
whether it is kept, dropped (the pre-pass found what the guess did not assume) or
not started at all, and never left running.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from etl_core.contracts import Contract, load_contract
from file_processing import ahead, quality
from file_processing.quality import validate_file

CONTRACT = """\
dataset = "sales"
source = "vendor"
pattern = "s_{date:%Y%m%d}.csv"
max_rejected_fraction = "50%"

[[columns]]
name = "id"
required = true

[[columns]]
name = "code"
type = "int"

[[columns]]
name = "note"

[[checks]]
kind = "unique"
column = "id"
"""

# Over two of the pre-pass's chunks, so that it keeps a sample; codes 5, 4, 3, 2, 1 in
# falling shares (32:16:8:4:2 in 64), so that a sample finds the same top values.
ROWS = "".join(f"{i},{(i % 64 + 1).bit_length() - 1},n{i}\n" for i in range(200_000))
BODIES = {
    "clean": ROWS,
    "nul": ROWS + "9001,1,a\x00b\n",
    "duplicate": ROWS + "5,1,again\n",
    "not a number": ROWS + "9001,x,n\n",
    "malformed": ROWS + '9001,1,n,extra\n9002,"open\n',
    "crlf then lf": ROWS.replace("\n", "\r\n", 100),
    "quoted line break": ROWS + '9001,1,"a\nb"\n',
}


def contract(tmp_path: Path) -> Contract:
    path = tmp_path / "contract.toml"
    path.write_text(CONTRACT)
    return load_contract(path, environ={})


def report_of(tmp_path: Path, body: bytes, name: str) -> dict[str, Any]:
    source = tmp_path / name / "in" / "s_20260101.csv"
    source.parent.mkdir(parents=True)
    source.write_bytes(body)
    result = validate_file(source, contract(tmp_path), out_dir=tmp_path / name / "out")
    found = result.report.to_dict()
    found.pop("duration_seconds")
    return found


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[ahead.AheadQuery]:
    """The queries started ahead; every file is large enough to get one."""
    queries: list[ahead.AheadQuery] = []
    init = ahead.AheadQuery.__init__

    def recording(self: ahead.AheadQuery, connection: Any, statement: str) -> None:
        init(self, connection, statement)
        queries.append(self)

    monkeypatch.setattr(ahead.AheadQuery, "__init__", recording)
    monkeypatch.setattr(quality, "_AHEAD_BYTES", 0)
    return queries


@pytest.mark.parametrize("case", sorted(BODIES))
def test_the_report_is_the_same_with_the_query_started_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, started: list[ahead.AheadQuery], case: str
) -> None:
    body = ("id,code,note\n" + BODIES[case]).encode()
    with_ahead = report_of(tmp_path, body, "ahead")
    assert len(started) == 1
    monkeypatch.setattr(quality, "_AHEAD_BYTES", 1 << 62)
    assert report_of(tmp_path, body, "alone") == with_ahead
    assert len(started) == 1


def test_a_clean_file_keeps_the_query_started_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, started: list[ahead.AheadQuery]
) -> None:
    dropped: list[bool] = []
    drop = quality._Analysis._drop_ahead

    def recording(self: quality._Analysis) -> None:
        dropped.append(self._ahead is not None)
        drop(self)

    monkeypatch.setattr(quality._Analysis, "_drop_ahead", recording)
    report = report_of(tmp_path, ("id,code,note\n" + ROWS).encode(), "clean")
    assert report["outcome"] == "pass"
    assert len(started) == 1
    assert not any(dropped)
    nul = report_of(tmp_path, ("id,code,note\n" + BODIES["nul"]).encode(), "nul")
    (screen,) = [c for c in nul["checks"] if c["name"] == "nul_bytes"]
    assert screen["failed_count"] == 1
    assert len(started) == 2
    assert any(dropped)  # the guess assumed no NUL


def test_a_file_the_pre_pass_refuses_stops_the_query_started_ahead(
    tmp_path: Path, started: list[ahead.AheadQuery]
) -> None:
    body = b"id,code,note\n" + ROWS.encode() * 50 + b"9001,1,\xff\n"
    report = report_of(tmp_path, body, "bad")
    assert report["reason"]["code"] == "data.encoding"
    (query,) = started
    assert not query._thread.is_alive()


def test_the_query_started_ahead_gives_its_error_to_the_analysis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, started: list[ahead.AheadQuery]
) -> None:
    def failing(self: ahead.AheadQuery) -> None:
        import duckdb

        self._error = duckdb.OutOfMemoryException("Out of Memory Error: no room")

    monkeypatch.setattr(ahead.AheadQuery, "_run", failing)
    with pytest.raises(quality.QualityEngineError, match="no room"):
        report_of(tmp_path, ("id,code,note\n" + ROWS).encode(), "oom")


@pytest.mark.parametrize("tail", [b"", b"9001,1,\xff\n"])
def test_a_delivery_s_engine_runs_the_query_ahead_on_its_own_connection(
    tmp_path: Path, started: list[ahead.AheadQuery], tail: bytes
) -> None:
    from file_processing.engine import QualityEngine

    source = tmp_path / "in" / "s_20260101.csv"
    source.parent.mkdir()
    source.write_bytes(b"id,code,note\n" + ROWS.encode() + tail)
    with QualityEngine(tmp_path, memory_limit=256 << 20) as engine:
        (result,) = quality.validate_batch(
            [source], contract(tmp_path), out_dirs=[tmp_path / "out"], names=["s"], engine=engine
        )
    assert len(started) == 1
    assert result.report.outcome == ("pass" if not tail else "fail")


def test_a_connection_that_fails_ahead_leaves_the_engine_pass_to_connect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, started: list[ahead.AheadQuery]
) -> None:
    import duckdb

    connect = quality._Analysis._connect
    calls: list[int] = []

    def failing_once(self: Any, *args: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise duckdb.IOException("IO Error: cannot open the spill directory")
        connect(self, *args)

    monkeypatch.setattr(quality._Analysis, "_connect", failing_once)
    report = report_of(tmp_path, ("id,code,note\n" + ROWS).encode(), "retry")
    assert report["outcome"] == "pass"
    assert (started, len(calls)) == ([], 2)


def test_a_query_cancelled_before_it_starts_running_still_stops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    import duckdb

    run = ahead.AheadQuery._run

    def late(self: ahead.AheadQuery) -> None:
        time.sleep(0.2)  # the thread has not reached the engine when it is cancelled
        run(self)

    monkeypatch.setattr(ahead.AheadQuery, "_run", late)
    connection = duckdb.connect()
    query = ahead.AheadQuery(connection, "SELECT sum(i * i) FROM range(20000000000) t(i)")
    began = time.monotonic()
    query.cancel()
    assert time.monotonic() - began < 5
    assert not query._thread.is_alive()
    connection.close()


@pytest.fixture
def samples(monkeypatch: pytest.MonkeyPatch) -> list[quality._SampleTop]:
    """The sample top-value queries started, each on a connection of its own."""
    found: list[quality._SampleTop] = []
    init = quality._SampleTop.__init__

    def recording(self: quality._SampleTop, *args: Any) -> None:
        init(self, *args)
        found.append(self)

    monkeypatch.setattr(quality._SampleTop, "__init__", recording)
    return found


@pytest.mark.parametrize("case", ["clean", "crlf then lf", "duplicate"])
def test_the_sample_top_values_are_counted_beside_the_checking_pass_and_never_left_behind(
    tmp_path: Path,
    started: list[ahead.AheadQuery],
    samples: list[quality._SampleTop],
    case: str,
) -> None:
    report = report_of(tmp_path, ("id,code,note\n" + BODIES[case]).encode(), "top")
    (sample,) = samples
    assert not sample.query._thread.is_alive()
    assert not sample.path.exists()
    with pytest.raises(Exception, match="closed"):
        sample.connection.execute("SELECT 1")
    if report["outcome"] == "pass":
        (code,) = [p for p in report["profile"] if p["name"] == "code"]
        assert code["top_values"] == ["5", "4", "3", "2", "1"]


def test_an_engine_failure_in_the_sample_top_values_fails_the_analysis(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    started: list[ahead.AheadQuery],
    samples: list[quality._SampleTop],
) -> None:
    run = ahead.BackgroundQuery._run

    def failing(self: ahead.BackgroundQuery) -> None:
        import duckdb

        if isinstance(self, ahead.AheadQuery):  # only the sample's query fails
            run(self)
            return
        self._error = duckdb.OutOfMemoryException("Out of Memory Error: no room for the sample")

    monkeypatch.setattr(ahead.BackgroundQuery, "_run", failing)
    with pytest.raises(quality.QualityEngineError, match="no room for the sample"):
        report_of(tmp_path, ("id,code,note\n" + ROWS).encode(), "oom")
    (sample,) = samples
    assert not sample.path.exists()
