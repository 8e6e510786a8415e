"""A worker process builds its lane's context as it starts, not on its first unit."""

from __future__ import annotations

import contextlib

import pytest

from etl_core.errors import ConfigError, DatabaseNotReadyError
from etl_core.runtime import RuntimeSettings, load_runtime_settings
from etl_core.work import WorkUnit
from etl_core.work.celery import LaneRunner

UNIT = WorkUnit("test_lane", "item", "a")


def test_a_warmed_runner_runs_its_units_on_the_context_built_at_start() -> None:
    builds: list[int] = []

    def build(opened: contextlib.ExitStack) -> object:
        builds.append(1)
        return lambda unit: {"key": unit.key, "built": len(builds)}

    runner = LaneRunner(build)  # type: ignore[arg-type]
    assert runner.warm() is True
    assert runner.warm() is True  # built once
    assert runner(UNIT) == {"key": "a", "built": 1}
    assert len(builds) == 1


def test_a_context_that_fails_at_start_is_closed_and_built_again_by_the_first_unit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed: list[str] = []
    attempts: list[int] = []

    def build(opened: contextlib.ExitStack) -> object:
        opened.callback(closed.append, f"store {len(attempts)}")
        attempts.append(1)
        if len(attempts) == 1:
            raise ConfigError("the store is not reachable yet", [])
        return lambda unit: unit.key

    runner = LaneRunner(build)  # type: ignore[arg-type]
    assert runner.warm() is False
    assert closed == ["store 0"]  # what the failed build opened is not left open
    assert "its first unit tries again" in caplog.text
    assert runner(UNIT) == "a"
    runner.close()
    assert closed == ["store 0", "store 1"]


def test_a_context_that_never_builds_fails_each_unit_with_its_error() -> None:
    def build(opened: contextlib.ExitStack) -> object:
        raise ConfigError("no contracts in /nowhere", [])

    runner = LaneRunner(build)  # type: ignore[arg-type]
    assert runner.warm() is False
    with pytest.raises(ConfigError, match="no contracts in /nowhere"):
        runner(UNIT)


def test_a_unit_cut_short_by_a_warm_shutdown_is_one_whose_wait_was_stopped() -> None:
    # an api_window says its stopped lease wait as its own error, raised from the lease's
    import threading

    from etl_core.errors import FatalError, LeaseWaitStoppedError, RetryableError
    from etl_core.retry import RetryPolicy
    from etl_core.work import UnitResult, WorkUnit
    from etl_core.work.celery.task import _cut_short

    class LaneStoppedError(FatalError):
        pass

    unit, policy, stopping = (
        WorkUnit("data_pipeline", "api_window", "s/e/full"),
        RetryPolicy(3),
        threading.Event(),
    )
    try:
        try:
            raise LeaseWaitStoppedError("stopped waiting for lease")
        except LeaseWaitStoppedError as stopped:
            raise LaneStoppedError("window stopped waiting: the run was interrupted") from stopped
    except LaneStoppedError as error:
        wrapped = error

    def failed(error: BaseException, attempts: int = 1) -> UnitResult[object]:
        return UnitResult(unit, "failed", error=error, attempts=attempts)

    assert not _cut_short(failed(wrapped), policy, stopping)  # not shutting down: its result
    stopping.set()
    assert _cut_short(failed(wrapped), policy, stopping)
    assert _cut_short(failed(RetryableError("busy")), policy, stopping)  # a back-off cut
    assert not _cut_short(failed(RetryableError("busy"), attempts=3), policy, stopping)
    assert not _cut_short(failed(FatalError("refused")), policy, stopping)


def test_a_unit_is_handed_back_even_when_its_delivery_count_cannot_be_updated() -> None:
    # the store failing as the worker shut down raised from the hand-back: the task failed,
    # its message acknowledged (acks on failure) and the unit lost instead of requeued
    from types import SimpleNamespace

    from celery.exceptions import Reject

    from etl_core.errors import LeaseWaitStoppedError, StorageError
    from etl_core.work import UnitResult
    from etl_core.work.celery.task import _hand_back

    class FailingCounter:
        def handed_back(self, task_id: str) -> None:
            raise StorageError(f"store unavailable writing the count of {task_id}")

    counter = SimpleNamespace(get=FailingCounter)
    task = SimpleNamespace(request=SimpleNamespace(id="t-1"))
    result = UnitResult(UNIT, "failed", error=LeaseWaitStoppedError("stopped"), attempts=1)
    with pytest.raises(Reject) as handed:
        _hand_back(task, result, counter)  # type: ignore[arg-type]
    assert handed.value.requeue is True


NOT_MIGRATED = (
    "database postgresql://etl@db/etl holds none of the platform's schema (no migration "
    "applied): check that the URL names the platform's database; if it is a new one, run "
    "`etl-schema migrate`"
)


def _not_migrated(opened: contextlib.ExitStack) -> object:
    raise DatabaseNotReadyError("etl-test worker", NOT_MIGRATED)


@pytest.mark.parametrize(
    ("env", "flags", "named", "command"),
    [
        ({"ETL_DATABASE_URL": "postgresql://etl@db/etl"}, {}, "ETL_DATABASE_URL",
         "run `etl-schema migrate`"),
        ({"DATABASE_URL": "postgresql://etl@db/etl"}, {}, "DATABASE_URL",
         "run `etl-schema migrate`"),
        ({}, {"database_url": "postgresql://etl@db/etl"}, "--database-url",
         "run `etl-schema migrate --database-url <that URL>`"),
    ],
)  # fmt: skip
def test_a_worker_on_a_database_not_migrated_names_the_setting_the_operator_used(
    env: dict[str, str],
    flags: dict[str, object],
    named: str,
    command: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    load_runtime_settings(RuntimeSettings, flags, env=env)  # as the worker's start-up did
    runner = LaneRunner(_not_migrated)  # type: ignore[arg-type]

    assert runner.warm() is False
    with pytest.raises(DatabaseNotReadyError) as refused:
        runner(UNIT)

    for said in (caplog.text, str(refused.value)):
        assert f"- {named}: database postgresql://etl@db/etl holds none" in said
        assert command in said
        assert "(from the database_url setting)" not in said
