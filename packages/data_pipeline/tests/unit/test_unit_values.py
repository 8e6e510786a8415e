"""What a pipeline worker sends back travels as JSON and is rebuilt as it was."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from data_pipeline.ingest import WindowOutcome
from data_pipeline.load import LoadResult
from data_pipeline.pipeline import PartitionOutcome
from data_pipeline.tasks import encode_value, partition_outcome, window_outcomes, with_run_id
from data_pipeline.transform import TransformResult
from data_pipeline.worker_cli import source_schedule
from etl_core.contracts import Endpoint, Source
from etl_core.errors import ConfigError
from etl_core.work import InvalidUnitError, WorkUnit

DAY = date(2026, 11, 1)


def test_a_partition_outcome_round_trips_through_json() -> None:
    built = TransformResult("pos", DAY, "g1", 200, 1, 4096, 1, 9000, 3, 0.5, {"stores": 2}, 1)
    loaded = LoadResult("pos", DAY, "retail_sales_transaction", 200, "g1", 0.25)
    for outcome in (
        PartitionOutcome("pos", DAY, built, loaded),
        PartitionOutcome("pos", DAY, None, None, skipped="done elsewhere"),
    ):
        assert partition_outcome(json.loads(json.dumps(encode_value(outcome)))) == outcome


def test_window_outcomes_round_trip_through_json() -> None:
    windows = [WindowOutcome("shop", "items", "shop/items/incremental", "r1", 3, 47, 5, "c", False)]
    assert window_outcomes(json.loads(json.dumps(encode_value(windows)))) == windows


def test_a_value_of_another_kind_is_refused_naming_the_result() -> None:
    with pytest.raises(InvalidUnitError, match="partition") as raised:
        partition_outcome({"windows": []})
    assert raised.value.field == "result"
    with pytest.raises(InvalidUnitError):
        window_outcomes({"windows": [{"source": "shop"}]})


def test_an_api_window_unit_carries_its_run() -> None:
    unit = WorkUnit("data_pipeline", "api_window", "shop/items/incremental", {"index": 0})
    assert with_run_id(unit, "r9").params == {"index": 0, "run_id": "r9"}


def test_a_source_schedule_is_a_utc_cron() -> None:
    endpoint = Endpoint(name="items", path="/items", dataset="shop_items")
    source = Source("https://api.example", (endpoint,), source="shop", schedule="*/15 * * * *")
    after = datetime(2026, 11, 1, 12, 7, 30, tzinfo=UTC)
    assert source_schedule(source)(after) == datetime(2026, 11, 1, 12, 15, tzinfo=UTC)
    broken = Source("https://api.example", (endpoint,), source="shop", schedule="61 * * * *")
    with pytest.raises(ConfigError, match="schedule") as raised:
        source_schedule(broken)
    assert raised.value.fields == ("schedule",)


def test_a_partition_unit_refuses_params_of_another_name_or_type() -> None:
    from data_pipeline.work import run_unit

    refused = {  # a producer in any language (docs/events.md): nothing read as its opposite
        "params.load": {"load": "false"},
        "params.transfrom": {"transfrom": False},
        "params.job": {"job": 7},
    }
    for field, params in refused.items():
        unit = WorkUnit("data_pipeline", "partition", "pos/2026-11-01", params)
        with pytest.raises(InvalidUnitError) as error:
            run_unit(None, unit)  # type: ignore[arg-type]  # refused before any context is used
        assert error.value.field == field
