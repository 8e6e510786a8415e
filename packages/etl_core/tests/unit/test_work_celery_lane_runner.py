"""A worker process builds its lane's context as it starts, not on its first unit."""

from __future__ import annotations

import contextlib

import pytest

from etl_core.errors import ConfigError
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
