"""The contract every monitor kind keeps: one test, run for each of MONITOR_KINDS.

A kind is built from a contract (or declines), reads the store without changing it,
answers the same at the same instant, and gives results that say level, observed value,
threshold and why, as JSON and across processes (pickle).
"""

from __future__ import annotations

import json
import pickle
from datetime import date
from typing import Any

import pytest

from observability.monitors import LEVELS, MONITOR_KINDS, DatasetFacts, Monitor

KINDS = pytest.mark.parametrize("kind", MONITOR_KINDS, ids=lambda kind: kind.kind)


def seeded(lake: Any, berlin: Any) -> None:
    for day in (14, 15, 16, 18, 19):  # Thursday missing, Saturday unexpected
        landing = lake.drop("pos", f"pos_202612{day:02d}.csv", berlin(day, 6, 30))
        lake.validate("pos", landing_date(day), 100 + day, berlin(day, 7), landing)
        lake.curate("pos", landing_date(day), 100 + day, berlin(day, 8))


def landing_date(day: int) -> date:
    return date(2026, 12, day)


def evaluate(kind: type[Monitor], contract: Any, lake: Any, now: Any) -> list[Any]:
    monitor = kind.from_contract(contract)
    assert monitor is not None
    facts = DatasetFacts(lake.store, contract, since=landing_date(1))
    return monitor.evaluate(facts, now)


@KINDS
def test_a_kind_is_built_from_a_contract_with_a_schedule(
    kind: type[Monitor], weekday_contract: Any
) -> None:
    monitor = kind.from_contract(weekday_contract())
    assert isinstance(monitor, kind)
    assert monitor.kind
    assert monitor.kind.isidentifier()


@KINDS
def test_a_kind_declines_or_is_built_without_a_schedule(
    kind: type[Monitor], weekday_contract: Any
) -> None:
    monitor = kind.from_contract(weekday_contract(expected=None))
    assert monitor is None or isinstance(monitor, kind)


@KINDS
@pytest.mark.parametrize("filled", [False, True], ids=["empty store", "seeded store"])
def test_results_say_level_observed_threshold_and_why(
    kind: type[Monitor], filled: bool, lake: Any, berlin: Any, weekday_contract: Any
) -> None:
    if filled:
        seeded(lake, berlin)
    results = evaluate(kind, weekday_contract(), lake, berlin(21, 12))
    assert results
    for result in results:
        assert (result.dataset, result.monitor) == ("pos", kind.kind)
        assert result.level in LEVELS
        assert result.subject
        assert result.state
        assert result.observed
        assert result.threshold
        assert result.why
        assert json.loads(json.dumps(result.to_dict()))["level"] == result.level
        assert pickle.loads(pickle.dumps(result)) == result


@KINDS
def test_evaluation_reads_without_writing_and_is_repeatable(
    kind: type[Monitor], lake: Any, berlin: Any, weekday_contract: Any
) -> None:
    seeded(lake, berlin)
    before = lake.keys()
    first = evaluate(kind, weekday_contract(), lake, berlin(21, 12))
    second = evaluate(kind, weekday_contract(), lake, berlin(21, 12))
    assert first == second
    assert lake.keys() == before


@KINDS
def test_a_never_measured_subject_is_unknown_never_ok(
    kind: type[Monitor], lake: Any, berlin: Any, weekday_contract: Any
) -> None:
    results = evaluate(kind, weekday_contract(), lake, berlin(21, 12))
    for result in results:
        if result.state not in ("missing", "pending"):  # a missing file is a measurement
            assert result.level == "unknown"
