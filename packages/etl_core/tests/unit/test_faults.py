"""The test-only fault hook: parsed strictly, inert when unset, fired once at its step."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from etl_core.errors import ConfigError
from etl_core.faults import (
    FAULT_ENV,
    PAUSE_ENV,
    FaultAction,
    FaultSpec,
    Step,
    fault_point,
    fault_spec,
)
from etl_core.runtime import RuntimeSettings, open_session


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("load", FaultSpec(Step.LOAD)),
        ("decrypt:interrupt", FaultSpec(Step.DECRYPT, FaultAction.INTERRUPT)),
        ("member_publish:terminate:2", FaultSpec(Step.MEMBER_PUBLISH, FaultAction.TERMINATE, 2)),
        (" publish:pause ", FaultSpec(Step.PUBLISH, FaultAction.PAUSE)),
    ],
)
def test_a_fault_names_a_step_an_action_and_which_time(value: str, expected: FaultSpec) -> None:
    assert fault_spec({FAULT_ENV: value}) == expected


@pytest.mark.parametrize(
    "value", ["lod", "load:explode", "load:kill:0", "load:kill:x", "load:kill:1:2"]
)
def test_a_malformed_fault_is_a_configuration_error_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        fault_spec({FAULT_ENV: value})
    assert caught.value.fields == (FAULT_ENV,)
    assert repr(value) in str(caught.value)


def test_no_fault_is_asked_for_when_the_variable_is_unset_or_empty() -> None:
    assert fault_spec({}) is None
    assert fault_spec({FAULT_ENV: ""}) is None


def test_a_runtime_refuses_a_malformed_fault_at_start_up(tmp_path: Path) -> None:
    env = {FAULT_ENV: "nowhere:kill", "ETL_STORAGE_URL": str(tmp_path)}
    with pytest.raises(ConfigError, match=FAULT_ENV):
        open_session("test", RuntimeSettings, env=env)


def test_an_unset_fault_point_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FAULT_ENV, raising=False)
    fault_point(Step.DOWNLOAD)  # returns: nothing to fire


def test_a_pause_is_logged_and_fires_only_at_the_nth_time(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(FAULT_ENV, "checks:pause:2")
    monkeypatch.setenv(PAUSE_ENV, "0")
    with caplog.at_level(logging.WARNING, logger="etl_core.faults"):
        fault_point(Step.UNPACK)  # another step
        fault_point(Step.CHECKS)  # the first time
        assert caplog.messages == []
        fault_point(Step.CHECKS)  # the second: fires
        fault_point(Step.CHECKS)  # and never again
    assert caplog.messages == [f"{FAULT_ENV}: pause at checks"]
