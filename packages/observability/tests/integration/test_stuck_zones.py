"""An empty zone the dataset's data should reach, while the zone before it holds objects.

Files landing every day while nothing is ever validated (a misconfigured lane, every file
quarantined) is not ``unknown``: the lag of validated is the age of landing's oldest file,
judged as an age is. Curated is expected only of a contract asking data_pipeline for it.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from etl_core.contracts import Contract, Load, Output, Transform
from etl_core.storage import open_store
from observability.alerts import AlertBook, ObjectStoreAlerts, fingerprint
from observability.evaluation import evaluate
from observability.monitors import Result


def day(n: int, hour: int = 6) -> datetime:
    return datetime(2026, 12, n, hour, tzinfo=UTC)


def ages(lake: Any, contract: Contract, clock: Any) -> dict[str, Result]:
    (status,) = evaluate([contract], lake.store, clock).datasets
    return {r.subject: r for r in status.results if r.monitor == "age"}


def seen(result: Result) -> tuple[str, str]:
    return result.level, result.state


@pytest.fixture
def daily(weekday_contract: Any) -> Contract:
    """A daily feed judged by its ages alone: warn after 26h, critical after 50h."""
    contract: Contract = weekday_contract(expected=None)
    return contract


def transformed(contract: Contract, **sections: Any) -> Contract:
    sections = sections or {"transform": Transform(sql="SELECT store_id FROM input")}
    return dataclasses.replace(contract, **sections)


def test_files_landing_every_day_with_nothing_validated_warn_then_critical_with_their_ages(
    lake: Any, clock: Any, daily: Contract
) -> None:
    first = lake.drop("pos", "pos_20261201.csv", day(1))
    clock.set(day(1, 12))
    assert seen(ages(lake, daily, clock)["validated"]) == ("ok", "awaiting")

    lake.drop("pos", "pos_20261202.csv", day(2))
    clock.set(day(2, 9))  # the newest file is 3h old, the first one 27h
    validated = ages(lake, daily, clock)["validated"]
    assert seen(validated) == ("warn", "never_reached")
    assert validated.value == 27 * 3600
    assert validated.why.startswith(f"nothing validated yet: landing's first file ({first})")
    assert "arrived 1d 3h ago" in validated.why
    assert "past warn after 1d 2h" in validated.why

    lake.drop("pos", "pos_20261203.csv", day(3))
    clock.set(day(3, 9))
    (status,) = evaluate([daily], lake.store, clock).datasets
    validated = {r.subject: r for r in status.results if r.monitor == "age"}["validated"]
    assert seen(validated) == ("critical", "never_reached")
    assert "arrived 2d 3h ago" in validated.why
    assert "newest (landing/pos/pos_20261203.csv) 3h ago" in validated.why
    assert status.level == "critical"  # not "ok": landing is fresh, nothing got further


def test_once_a_delivery_is_validated_the_zone_is_judged_by_its_age_again(
    lake: Any, clock: Any, daily: Contract
) -> None:
    landed = lake.drop("pos", "pos_20261201.csv", day(1))
    clock.set(day(3, 9))
    assert seen(ages(lake, daily, clock)["validated"]) == ("critical", "never_reached")

    lake.validate("pos", date(2026, 12, 1), 10, day(3, 8), landed)

    assert seen(ages(lake, daily, clock)["validated"]) == ("ok", "fresh")


def test_curated_is_expected_only_of_a_contract_asking_data_pipeline_for_it(
    lake: Any, clock: Any, daily: Contract
) -> None:
    landed = lake.drop("pos", "pos_20261201.csv", day(1))
    lake.validate("pos", date(2026, 12, 1), 10, day(1, 7), landed)
    clock.set(day(3, 9))

    assert not daily.builds_curated  # the default copy: nothing says data_pipeline runs
    assert seen(ages(lake, daily, clock)["curated"]) == ("unknown", "empty")
    for asked in (transformed(daily), transformed(daily, load=Load(table="pos"))):
        curated = ages(lake, asked, clock)["curated"]
        assert seen(curated) == ("critical", "never_reached")
        assert curated.why.startswith("nothing curated yet: validated's first delivery")
        assert "was published 2d 2h ago" in curated.why


def test_only_the_first_empty_zone_is_judged_and_a_new_dataset_stays_unknown(
    lake: Any, clock: Any, daily: Contract
) -> None:
    contract = transformed(daily)
    clock.set(day(3, 9))
    assert {z: seen(r) for z, r in ages(lake, contract, clock).items()} == {
        "landing": ("unknown", "empty"),
        "validated": ("unknown", "empty"),
        "curated": ("unknown", "empty"),
    }

    lake.drop("pos", "pos_20261201.csv", day(1))
    found = ages(lake, contract, clock)
    assert seen(found["validated"]) == ("critical", "never_reached")
    assert seen(found["curated"]) == ("unknown", "empty")  # one alarm, where the flow stops


def test_a_lag_no_threshold_or_schedule_judges_is_shown_not_judged(
    lake: Any, clock: Any, weekday_contract: Any
) -> None:
    contract = weekday_contract(warn_after=None, critical_after=None, expected=None)
    lake.drop("pos", "pos_20261201.csv", day(1))
    clock.set(day(9))

    validated = ages(lake, contract, clock)["validated"]

    assert seen(validated) == ("unknown", "unjudged")
    assert validated.value == 8 * 86400


def test_with_a_schedule_nothing_validated_is_overdue_once_the_next_due_time_and_grace_passed(
    lake: Any, clock: Any, berlin: Any, weekday_contract: Any
) -> None:
    contract = weekday_contract()  # 06:00 Berlin on weekdays, 2h grace
    lake.drop("pos", "pos_20261214.csv", berlin(14, 5, 50))  # Monday, before its due time
    clock.set(berlin(14, 7, 59))
    assert seen(ages(lake, contract, clock)["validated"]) == ("ok", "awaiting")

    clock.set(berlin(14, 8, 1))
    validated = ages(lake, contract, clock)["validated"]
    assert seen(validated) == ("warn", "never_reached")
    assert "it was due in validated by 2026-12-14 08:00 CET" in validated.why

    clock.set(berlin(16, 9))  # 51h on: past critical_after
    assert seen(ages(lake, contract, clock)["validated"]) == ("critical", "never_reached")


def test_a_stuck_zone_opens_one_alert_escalates_it_and_resolves_once_validated(
    lake: Any, clock: Any, daily: Contract, tmp_path: Path
) -> None:
    book = AlertBook(
        ObjectStoreAlerts(open_store(str(tmp_path / "alerts"))),
        clock,
        reminder_interval=timedelta(days=7),
    )
    key = fingerprint("pos", "age", "validated")

    def observe(at: datetime) -> list[tuple[str, str]]:
        clock.set(at)
        notes = book.observe(evaluate([daily], lake.store, clock))
        return [(n.event, n.alert.fingerprint) for n in notes]

    landed = lake.drop("pos", "pos_20261201.csv", day(1))
    assert observe(day(1, 12)) == []
    lake.drop("pos", "pos_20261202.csv", day(2))  # landing stays fresh throughout
    assert observe(day(2, 9)) == [("opened", key)]
    assert observe(day(2, 10)) == []  # the same condition: nothing new to tell
    lake.drop("pos", "pos_20261203.csv", day(3))
    assert observe(day(3, 9)) == [("escalated", key)]
    assert observe(day(3, 10)) == []
    lake.validate("pos", date(2026, 12, 1), 10, day(3, 11), landed)
    assert observe(day(3, 12)) == [("resolved", key)]


def test_validated_expired_by_a_lifecycle_rule_behind_curated_partitions_is_not_stuck(
    lake: Any, clock: Any, daily: Contract
) -> None:
    """A lifecycle rule expiring validated/ (curated is the product) empties the zone while
    landing keeps every file for ever: the data did get through, nothing is stuck."""
    lake.drop("pos", "pos_20261201.csv", day(1))
    lake.curate("pos", date(2026, 12, 1), 10, day(1, 8))  # its validated delivery expired since
    clock.set(day(9))

    validated = ages(lake, daily, clock)["validated"]

    assert seen(validated) == ("unknown", "empty")


def test_a_contract_setting_its_curated_output_builds_curated(daily: Contract) -> None:
    assert transformed(daily, output=Output(compression="snappy")).builds_curated


def test_a_file_on_time_for_its_due_time_is_due_in_validated_by_that_due_times_grace(
    lake: Any, clock: Any, berlin: Any, weekday_contract: Any
) -> None:
    """A Friday file landing at 06:30 is on time for Friday's 06:00 (2h grace): validated is
    overdue at 08:00 as it would be with older deliveries in it, not after the weekend."""
    contract = weekday_contract()  # 06:00 Berlin on weekdays, 2h grace
    lake.drop("pos", "pos_20261218.csv", berlin(18, 6, 30))  # Friday, within its grace
    clock.set(berlin(18, 7, 59))
    assert seen(ages(lake, contract, clock)["validated"]) == ("ok", "awaiting")

    clock.set(berlin(18, 8, 1))
    validated = ages(lake, contract, clock)["validated"]

    assert seen(validated) == ("warn", "never_reached")
    assert "it was due in validated by 2026-12-18 08:00 CET" in validated.why
