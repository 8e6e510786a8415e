"""Run recording: a session records its runs through the lane's recorder, when it has one.

The recorder here is an in-memory test double of the :class:`RunRecorder` interface: etl_core
has no database of its own; the real recorders (the lanes' ``db`` adapters on the schema's
run ledger) are tested by their packages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from etl_core import runtime
from etl_core.errors import ConfigError, FatalError, MissingDependencyError, RetryableError
from etl_core.runs import RecordedRun, RunOutcome, RunStart, exit_code_of, status_of
from etl_core.runtime import RuntimeSettings, Session, run_entry_point
from etl_core.testing import capture_logs

DATABASE = "sqlite:///ledger.sqlite3"


@dataclass
class MemoryLedger:
    """Keeps what it is told; ``fail_start`` / ``fail_finish`` make that step raise."""

    url: str
    started: list[RunStart] = field(default_factory=list)
    finished: list[tuple[str, RunOutcome]] = field(default_factory=list)
    fail_start: Exception | None = None
    fail_finish: Exception | None = None

    def start(self, run: RunStart) -> None:
        if self.fail_start is not None:
            raise self.fail_start
        self.started.append(run)

    def finish(self, run: RunStart, outcome: RunOutcome) -> None:
        if self.fail_finish is not None:
            raise self.fail_finish
        self.finished.append((run.run_id, outcome))


@pytest.fixture(autouse=True)
def _fresh_log_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "_said", set())


def session_with(
    ledger: MemoryLedger | None, *, database_url: str | None = DATABASE
) -> Session[RuntimeSettings]:
    settings = RuntimeSettings(
        database_url=None if database_url is None else runtime.URL(database_url)
    )
    factory: Callable[[str], MemoryLedger] | None = None
    if ledger is not None:

        def factory(url: str) -> MemoryLedger:
            ledger.url = url
            return ledger

    return Session("file_processing", settings, {}, "20261101T000000Z-abcdef", recorder=factory)


def test_a_recorded_run_starts_with_the_session_run_id_lane_job_and_parameters() -> None:
    ledger = MemoryLedger("")
    session = session_with(ledger)

    with session.record_run("scan", dataset="pos", parameters={"concurrency": 2}) as run:
        run.count(inputs=3, outputs=2, quarantined=1, rows_written=40)

    (started,) = ledger.started
    assert ledger.url == DATABASE
    assert (started.run_id, started.lane, started.job, started.dataset) == (
        "20261101T000000Z-abcdef",
        "file_processing",
        "scan",
        "pos",
    )
    assert started.parameters == {"concurrency": 2}
    assert started.started_at.tzinfo is not None
    assert ledger.finished == [
        ("20261101T000000Z-abcdef", RunOutcome("partial", 3, 2, 1, 0, 40, ""))
    ]


def test_without_a_database_nothing_is_recorded_and_that_is_said_once_at_debug() -> None:
    ledger = MemoryLedger("")
    session = session_with(ledger, database_url=None)

    with capture_logs() as logs:
        first = session.record_run("scan")
        second = session.record_run("process")
    first.count(failed=1)

    assert not first.recorded
    assert ledger.started == []
    said = [r for r in logs if "not recorded" in r["event"]]
    assert [(r["level"], r["event"]) for r in said] == [
        ("debug", "runs are not recorded: no database_url is configured")
    ]
    assert first.finish(first.exit_code()).status == "failed"
    assert second.finish(0).status == "succeeded"


def test_without_the_lane_extra_nothing_is_recorded_and_that_is_said_at_info() -> None:
    def missing(url: str) -> MemoryLedger:
        raise MissingDependencyError("run recording", package="etl-lane", extra="schema")

    session = Session(
        "data_pipeline",
        RuntimeSettings(database_url=runtime.URL(DATABASE)),
        {},
        "run-1",
        recorder=missing,
    )

    with capture_logs() as logs:
        run = session.record_run("transform")

    assert not run.recorded
    (said,) = [r for r in logs if "not recorded" in r["event"]]
    assert said["level"] == "info"
    assert "pip install 'etl-lane[schema]'" in said["event"]


def test_a_run_that_cannot_be_recorded_does_not_start() -> None:
    ledger = MemoryLedger("", fail_start=RetryableError("database unavailable"))
    session = session_with(ledger)

    with pytest.raises(RetryableError, match="database unavailable"):
        session.record_run("scan")

    ledger.fail_start = None
    run_entry_point(lambda: None, name="etl-test")
    assert ledger.finished == []


def test_a_failure_to_record_the_finish_is_logged_not_raised() -> None:
    ledger = MemoryLedger("", fail_finish=RetryableError("connection lost"))
    run = session_with(ledger).record_run("scan")

    with capture_logs() as logs:
        outcome = run.finish(0)

    assert outcome.status == "succeeded"
    (said,) = [r for r in logs if r["level"] == "error"]
    assert "ended succeeded but was not recorded as such: connection lost" in said["event"]


def test_an_exception_leaving_the_block_fails_the_run_with_its_message() -> None:
    ledger = MemoryLedger("")

    def load() -> None:
        with session_with(ledger).record_run("load") as run:
            run.count(inputs=1)
            raise FatalError("dataset 'pos', partition dt=2026-11-01: no curated partition")

    with pytest.raises(FatalError):
        load()

    ((_, outcome),) = ledger.finished
    assert outcome == RunOutcome(
        "failed", 1, 0, 0, 0, 0, "dataset 'pos', partition dt=2026-11-01: no curated partition"
    )


def test_a_run_finishes_once() -> None:
    ledger = MemoryLedger("")
    run = session_with(ledger).record_run("scan")

    first = run.finish(3)
    again = run.finish(1, "later")

    assert first is again
    assert len(ledger.finished) == 1


@pytest.mark.parametrize(
    ("ending", "status", "error"),
    [
        (SystemExit(0), "succeeded", ""),
        (SystemExit(3), "partial", ""),
        (SystemExit(1), "failed", "2 partition(s) failed"),
        (FatalError("boom"), "failed", "boom"),
        (ConfigError("--only-failed needs --resume JOB"), "failed", "--only-failed needs"),
        (RuntimeError("a bug"), "failed", "RuntimeError('a bug')"),
    ],
    ids=["exit-0", "exit-3", "exit-1", "platform-error", "config-error", "bug"],
)
def test_the_entry_point_finishes_the_run_with_the_status_of_its_exit(
    ending: BaseException, status: str, error: str
) -> None:
    ledger = MemoryLedger("")
    session = session_with(ledger)

    def app() -> None:
        run = session.record_run("run")
        run.note_error("2 partition(s) failed")
        raise ending

    with capture_logs(logging.CRITICAL), pytest.raises((SystemExit, RuntimeError)):
        run_entry_point(app, name="etl-test")

    ((_, outcome),) = ledger.finished
    assert outcome.status == status
    assert outcome.error.startswith(error)


def test_exit_codes_map_to_statuses_as_the_design_says() -> None:
    class ClickExitError(Exception):  # how Typer's Exit carries its code
        exit_code = 3

    assert [status_of(code) for code in (0, 1, 2, 3)] == [
        "succeeded",
        "failed",
        "failed",
        "partial",
    ]
    assert exit_code_of(ClickExitError()) == 3
    assert exit_code_of(SystemExit(None)) == 0
    assert exit_code_of(SystemExit("usage")) == 1
    assert exit_code_of(ConfigError("bad")) == 2
    assert exit_code_of(FatalError("bad")) == 1


def test_counts_alone_give_an_exit_code() -> None:
    run = RecordedRun(RunStart("r", "lane", "job", "", {}, runtime.datetime.now(runtime.UTC)), None)
    assert run.exit_code() == 0
    run.count(quarantined=1)
    assert run.exit_code() == 3
    run.count(failed=1)
    assert run.exit_code() == 1
