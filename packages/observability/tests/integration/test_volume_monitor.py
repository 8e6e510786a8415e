"""Volume: the newest partition's rows against the median of the same weekday before."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from etl_core.contracts import Percent, VolumeBaseline
from observability.evaluation import evaluate

MONDAY = date(2026, 12, 28)


def volume(lake: Any, clock: Any, contract: Any) -> Any:
    (status,) = evaluate([contract], lake.store, clock).datasets
    (result,) = [r for r in status.results if r.monitor == "volume"]
    return result


def curate_mondays(lake: Any, berlin: Any, rows: list[int]) -> None:
    """``rows`` for the Mondays before MONDAY (oldest first), then a Tuesday of 5 rows."""
    for weeks_ago, count in zip(range(len(rows), 0, -1), rows, strict=True):
        day = MONDAY - timedelta(weeks=weeks_ago)
        lake.curate("pos", day, count, berlin(1, 9))
        lake.curate("pos", day + timedelta(days=1), 5, berlin(1, 9))


@pytest.mark.parametrize(
    ("latest", "level", "state"),
    [
        (1_050, "ok", "normal"),
        (450, "warn", "anomaly"),
        (1_600, "warn", "anomaly"),
        (100, "critical", "anomaly"),
        (0, "critical", "anomaly"),
    ],
)
def test_the_newest_partition_is_judged_against_the_weekday_median(
    lake: Any, clock: Any, berlin: Any, weekday_contract: Any, latest: int, level: str, state: str
) -> None:
    curate_mondays(lake, berlin, [1_000, 1_100, 900, 1_000])
    lake.curate("pos", MONDAY, latest, berlin(28, 9))
    clock.set(berlin(28, 10))

    result = volume(lake, clock, weekday_contract())

    assert (result.subject, result.level, result.state) == ("2026-12-28", level, state)
    assert result.value == latest
    assert result.detail["baseline"] == "1000"
    assert "baseline 1,000" in result.threshold


def test_too_little_history_is_unknown_not_a_verdict(
    lake: Any, clock: Any, berlin: Any, weekday_contract: Any
) -> None:
    curate_mondays(lake, berlin, [1_000])
    lake.curate("pos", MONDAY, 1, berlin(28, 9))
    clock.set(berlin(28, 10))
    result = volume(lake, clock, weekday_contract())
    assert (result.level, result.state) == ("unknown", "no_baseline")
    assert "2 are needed" in result.why


def test_thresholds_come_from_the_contract(
    lake: Any, clock: Any, berlin: Any, weekday_contract: Any
) -> None:
    curate_mondays(lake, berlin, [1_000, 1_000])
    lake.curate("pos", MONDAY, 850, berlin(28, 9))
    clock.set(berlin(28, 10))
    strict = VolumeBaseline(weeks=2, warn_deviation=Percent(0.1), critical_deviation=Percent(0.2))
    assert volume(lake, clock, weekday_contract(volume=strict)).level == "warn"
    assert volume(lake, clock, weekday_contract()).level == "ok"


def test_validated_deliveries_count_before_there_is_a_curated_partition(
    lake: Any, clock: Any, berlin: Any, weekday_contract: Any
) -> None:
    for weeks_ago, rows in ((2, 40), (1, 60), (0, 50)):
        day = MONDAY - timedelta(weeks=weeks_ago)
        landing = lake.drop("pos", f"pos_{day:%Y%m%d}.csv", berlin(1, 6))
        lake.validate("pos", day, rows, berlin(1, 7), landing)
    clock.set(berlin(28, 10))
    result = volume(lake, clock, weekday_contract())
    assert (result.level, result.value, result.detail["zone"]) == ("ok", 50, "validated")


def test_a_malformed_manifest_is_a_warning_naming_its_key(
    lake: Any, clock: Any, berlin: Any, weekday_contract: Any
) -> None:
    lake.curate("pos", MONDAY, 1, berlin(28, 9))
    lake.store.write_bytes("curated/pos/dt=2026-12-28/_manifest.json", b'{"rows": "many"}')
    clock.set(berlin(28, 10))
    result = volume(lake, clock, weekday_contract())
    assert (result.level, result.state) == ("warn", "unreadable")
    assert "curated/pos/dt=2026-12-28/_manifest.json" in result.why


def test_an_empty_dataset_has_unknown_volume(lake: Any, clock: Any, weekday_contract: Any) -> None:
    result = volume(lake, clock, weekday_contract())
    assert (result.level, result.state) == ("unknown", "no_data")


def test_the_result_lists_the_rows_of_the_lookback_days_for_the_sparkline(
    lake: Any, clock: Any, berlin: Any, weekday_contract: Any
) -> None:
    for day, rows in ((1, 10), (2, 20), (3, 0), (8, 80), (9, 90)):
        lake.curate("pos", date(2026, 12, day), rows, berlin(day, 9))
    clock.set(berlin(9, 10))

    result = volume(lake, clock, weekday_contract(lookback_days=7))

    assert result.detail["recent"] == "2026-12-02=20, 2026-12-03=0, 2026-12-08=80, 2026-12-09=90"
