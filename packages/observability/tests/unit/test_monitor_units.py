"""A dataset's status, as a worker sends it back, is rebuilt as it was."""

from __future__ import annotations

import json
from datetime import date

import pytest

from etl_core.work import InvalidUnitError
from observability.evaluation import DatasetStatus
from observability.monitors import Result
from observability.work import status_from_dict


def test_a_dataset_status_round_trips_through_json() -> None:
    result = Result("pos", "age", "curated", "warn", "stale", "3h", "warn 1h", "old", 10800.0,
                    {"key": "curated/pos/dt=2026-11-01/_manifest.json"})  # fmt: skip
    status = DatasetStatus("pos", "warn", (result,), 10800.0, date(2026, 11, 1))
    assert status_from_dict(json.loads(json.dumps(status.to_dict()))) == status
    empty = DatasetStatus("new", "unknown", (), None, None)
    assert status_from_dict(json.loads(json.dumps(empty.to_dict()))) == empty


def test_something_else_is_refused_naming_the_result() -> None:
    with pytest.raises(InvalidUnitError) as raised:
        status_from_dict({"dataset": "pos"})
    assert raised.value.field == "result"


def test_a_monitor_unit_refuses_params_of_another_name_or_type() -> None:
    from etl_core.work import WorkUnit
    from observability.work import run_unit

    at = "2026-11-12T06:00:00+00:00"
    for field, params in (("params.record", {"at": at, "record": "false"}),
                          ("params.when", {"at": at, "when": at})):  # fmt: skip
        with pytest.raises(InvalidUnitError) as error:
            run_unit(None, WorkUnit("observability", "monitor", "pos", params))  # type: ignore[arg-type]
        assert error.value.field == field


def test_a_replayed_monitor_unit_that_asks_to_be_recorded_is_refused() -> None:
    """A replay (``check --at``) goes into no freshness history and changes no alert, so a
    unit asking for both (another producer's) is refused before anything is evaluated."""
    from etl_core.work import WorkUnit
    from observability.work import run_unit

    params = {"at": "2026-11-12T06:00:00+00:00", "record": True, "replay": True}
    with pytest.raises(InvalidUnitError) as error:
        run_unit(None, WorkUnit("observability", "monitor", "pos", params))  # type: ignore[arg-type]
    assert error.value.field == "params.record"
    assert "not both" in str(error.value)
