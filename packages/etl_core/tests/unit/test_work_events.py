"""The event contract's units, and a fanning-out command's choice of executor."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from etl_core.errors import ConfigError
from etl_core.runtime import RuntimeSettings
from etl_core.work import InlineExecutor, InvalidUnitError, WorkUnit, require_broker, unit_executor
from etl_core.work.events import landing_object_unit, monitor_unit, partition_unit


def test_the_units_of_docs_events_md_round_trip_as_json() -> None:
    units = [
        landing_object_unit("landing/pos/pos_20261101.csv"),
        landing_object_unit("landing/pos/pos_20261101.csv", force=True),
        partition_unit("pos", date(2026, 11, 1)),
        partition_unit("pos", date(2026, 11, 1), load=False, purpose="backfill j1", job="j1"),
        monitor_unit("pos", datetime(2026, 11, 1, 7, tzinfo=UTC)),
    ]
    for unit in units:
        assert WorkUnit.from_json(unit.to_json()) == unit
    assert units[2].to_dict() == {
        "lane": "data_pipeline",
        "kind": "partition",
        "key": "pos/2026-11-01",
        "params": {"transform": True, "load": True, "purpose": "run"},
    }
    assert units[4].params["at"] == "2026-11-01T07:00:00+00:00"


def test_a_monitor_unit_needs_an_instant_with_a_time_zone() -> None:
    with pytest.raises(InvalidUnitError, match="time zone"):
        monitor_unit("pos", datetime(2026, 11, 1, 7))


def test_the_local_executor_is_the_one_given() -> None:
    chosen = unit_executor(RuntimeSettings(), "data_pipeline", local=InlineExecutor)
    assert isinstance(chosen, InlineExecutor)


def test_an_executor_that_cannot_be_honoured_is_a_configuration_error() -> None:
    unknown = replace(RuntimeSettings(), executor="threads")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown executor 'threads'") as raised:
        unit_executor(unknown, "data_pipeline", local=InlineExecutor)
    assert raised.value.fields == ("executor",)
    with pytest.raises(ConfigError, match="broker_url"):  # celery without a broker
        unit_executor(replace(RuntimeSettings(), executor="celery"), "data_pipeline",
                      local=InlineExecutor)  # fmt: skip
    with pytest.raises(ConfigError, match="--no-wait needs --executor celery"):
        require_broker(RuntimeSettings(), "--no-wait")


def test_a_command_without_the_executor_flag_is_told_the_setting_not_the_flag() -> None:
    """``schedule`` takes no ``--executor``: a refusal naming it sent users to a second one."""
    with pytest.raises(ConfigError) as refused:
        require_broker(RuntimeSettings(), "schedule", flag=False)
    assert str(refused.value).startswith("schedule needs ETL_EXECUTOR=celery")
    assert "--executor" not in str(refused.value)
    assert refused.value.fields == ("executor",)


def test_a_unit_s_params_are_checked_by_name_and_json_type() -> None:
    unit = WorkUnit("file_processing", "landing_object", "landing/a.csv", {"force": True})
    assert unit.checked_params({"force": bool}) == {"force": True}
    assert WorkUnit("l", "k", "x").checked_params({"force": bool}) == {}
    refused = {
        "params.forse": {"forse": True},  # misspelt: never silently ignored
        "params.force": {"force": "false"},  # text: never read as its opposite
    }
    for field, params in refused.items():
        with pytest.raises(InvalidUnitError) as error:
            replace(unit, params=params).checked_params({"force": bool})
        assert error.value.field == field
    with pytest.raises(InvalidUnitError, match="expected a JSON string, got True"):
        WorkUnit("l", "k", "x", {"purpose": True}).checked_params({"purpose": str})
