"""Freshness level per zone and arrival counts per state, from a real evaluation."""

from __future__ import annotations

from typing import Any

from etl_core.metrics import Registry, render_prometheus
from observability.evaluation import evaluate
from observability.freshness_metrics import record_freshness_metrics
from observability.monitors import ARRIVAL_STATES, severity


def test_a_missing_weekday_file_is_counted_and_the_zone_levels_are_exported(
    lake: Any, clock: Any, berlin: Any, weekday_contract: Any
) -> None:
    for day in range(7, 19):  # every weekday file of the lookback window, on time
        lake.drop("pos", f"pos_202612{day:02d}.csv", berlin(day, 5, 50))
    clock.set(berlin(21, 12))  # Monday noon: Monday's 06:00 file is past its 2h grace
    evaluation = evaluate([weekday_contract()], lake.store, clock)
    registry = Registry()

    record_freshness_metrics(evaluation, registry)

    arrivals = {
        state: registry.value("etl_observability_arrivals", dataset="pos", state=state)
        for state in ARRIVAL_STATES
    }
    assert arrivals["missing"] == 1
    assert arrivals["late"] == arrivals["pending"] == 0
    assert arrivals["on_time"] >= 5
    (landing,) = [r for r in evaluation.results if r.monitor == "age" and r.subject == "landing"]
    level = registry.value("etl_observability_freshness_level", dataset="pos", zone="landing")
    assert level == severity(landing.level) == 2


def test_a_dataset_without_a_schedule_has_no_arrival_series(
    lake: Any, clock: Any, berlin: Any, weekday_contract: Any
) -> None:
    clock.set(berlin(21, 12))
    evaluation = evaluate([weekday_contract(expected=None)], lake.store, clock)
    registry = Registry()

    record_freshness_metrics(evaluation, registry)

    text = render_prometheus(registry)
    assert "etl_observability_arrivals{" not in text
    assert 'etl_observability_freshness_level{dataset="pos",zone="landing"} -1' in text
