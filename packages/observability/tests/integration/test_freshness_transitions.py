"""Freshness and arrival driven by a fake clock across a weekend and a holiday.

The weekday POS feed is due at 06:00 Berlin time Monday to Friday, with 2h of grace,
warn after 26h, critical after 50h, Christmas Day (Friday 2026-12-25) off.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from etl_core.contracts import ContractSet, Holidays
from etl_core.work import WorkUnit
from observability.evaluation import evaluate
from observability.work import MonitorContext, replayed_unit, run_unit


def levels(lake: Any, contract: Any, clock: Any) -> dict[tuple[str, str], tuple[str, str]]:
    """(monitor, subject) -> (level, state) at the clock's time."""
    (status,) = evaluate([contract], lake.store, clock).datasets
    return {(r.monitor, r.subject): (r.level, r.state) for r in status.results}


def deliver_week(lake: Any, berlin: Any, days: range) -> None:
    for day in days:
        lake.drop("pos", f"pos_202612{day:02d}.csv", berlin(day, 6, 10))


def test_a_weekend_is_not_late_although_the_newest_file_is_older_than_warn_after(
    lake: Any, clock: Any, berlin: Any, weekday_contract: Any
) -> None:
    deliver_week(lake, berlin, range(14, 19))  # Monday 14th to Friday 18th
    contract = weekday_contract()

    for moment in (berlin(19, 12), berlin(20, 23, 59), berlin(21, 7, 59)):
        clock.set(moment)
        seen = levels(lake, contract, clock)
        assert seen[("age", "landing")] == ("ok", "fresh"), moment
        assert {state for (kind, _), (_, state) in seen.items() if kind == "arrival"} <= {
            "on_time",
            "pending",
        }
    assert seen[("arrival", "2026-12-21")] == ("ok", "pending")


def test_monday_file_missing_after_grace_is_critical_then_late_once_it_comes(
    lake: Any, clock: Any, berlin: Any, weekday_contract: Any
) -> None:
    deliver_week(lake, berlin, range(14, 19))
    contract = weekday_contract()

    clock.set(berlin(21, 8, 1))
    seen = levels(lake, contract, clock)
    assert seen[("arrival", "2026-12-21")] == ("critical", "missing")
    assert seen[("age", "landing")] == ("critical", "overdue")  # Friday's file is 74h old

    lake.drop("pos", "pos_20261221.csv", berlin(21, 9))
    clock.set(berlin(21, 9, 30))
    seen = levels(lake, contract, clock)
    assert seen[("arrival", "2026-12-21")] == ("warn", "late")
    assert seen[("age", "landing")] == ("ok", "fresh")

    lake.drop("pos", "pos_20261222.csv", berlin(22, 5, 55))
    clock.set(berlin(22, 8, 30))
    seen = levels(lake, contract, clock)
    assert seen[("arrival", "2026-12-21")] == ("ok", "late")  # resolved by a newer due file
    assert seen[("arrival", "2026-12-22")] == ("ok", "on_time")


def test_an_overdue_zone_is_at_least_a_warning_before_critical_after(
    lake: Any, clock: Any, berlin: Any, weekday_contract: Any
) -> None:
    deliver_week(lake, berlin, range(14, 18))  # Monday to Thursday; Friday's never comes
    contract = weekday_contract()

    clock.set(berlin(18, 8, 1))  # Thursday's file is 25h51m old: under warn_after
    assert levels(lake, contract, clock)[("age", "landing")] == ("warn", "overdue")
    clock.set(berlin(19, 12))  # Saturday: still overdue from Friday, 53h50m: critical
    assert levels(lake, contract, clock)[("age", "landing")] == ("critical", "overdue")


def test_on_a_holiday_nothing_is_due_and_a_file_for_it_is_unexpected(
    lake: Any, clock: Any, berlin: Any, weekday_contract: Any
) -> None:
    deliver_week(lake, berlin, range(21, 25))  # Monday 21st to Thursday 24th
    contract = weekday_contract()

    clock.set(berlin(25, 12))  # Christmas Day, a Friday
    seen = levels(lake, contract, clock)
    assert ("arrival", "2026-12-25") not in seen
    assert seen[("age", "landing")] == ("ok", "fresh")
    clock.set(berlin(28, 7))  # Monday, before the deadline: Thursday's file is 97h old
    assert levels(lake, contract, clock)[("age", "landing")] == ("ok", "fresh")

    lake.drop("pos", "pos_20261225.csv", berlin(25, 13))
    lake.drop("pos", "pos_20261226.csv", berlin(26, 13))
    seen = levels(lake, contract, clock)
    assert seen[("arrival", "2026-12-25")] == ("warn", "unexpected")
    assert seen[("arrival", "2026-12-26")] == ("warn", "unexpected")


def test_without_the_holiday_christmas_day_would_be_missing(
    lake: Any, clock: Any, berlin: Any, weekday_contract: Any
) -> None:
    deliver_week(lake, berlin, range(21, 25))
    clock.set(berlin(25, 12))
    seen = levels(lake, weekday_contract(holidays=Holidays()), clock)
    assert seen[("arrival", "2026-12-25")] == ("critical", "missing")


def test_a_file_long_before_its_due_window_is_early(
    lake: Any, clock: Any, berlin: Any, weekday_contract: Any
) -> None:
    lake.drop("pos", "pos_20261222.csv", berlin(21, 20))
    clock.set(berlin(21, 21))
    seen = levels(lake, weekday_contract(), clock)
    assert seen[("arrival", "2026-12-22")] == ("ok", "early")


def test_lag_days_make_the_tuesday_file_carry_mondays_date(
    lake: Any, clock: Any, berlin: Any, weekday_contract: Any
) -> None:
    contract = weekday_contract(expected="0 6 * * 2-6", lag_days=1)
    lake.drop("pos", "pos_20261221.csv", berlin(22, 6, 5))
    clock.set(berlin(22, 9))
    seen = levels(lake, contract, clock)
    assert seen[("arrival", "2026-12-21")] == ("ok", "on_time")
    assert ("arrival", "2026-12-22") not in seen


def test_arrival_says_what_became_of_the_file(
    lake: Any, clock: Any, berlin: Any, weekday_contract: Any
) -> None:
    good = lake.drop("pos", "pos_20261221.csv", berlin(21, 6, 5))
    bad = lake.drop("pos", "pos_20261222.csv", berlin(22, 6, 5))
    lake.validate("pos", date(2026, 12, 21), 10, berlin(21, 6, 30), good)
    lake.quarantine("pos", date(2026, 12, 22), bad, "data.quality")
    clock.set(berlin(22, 9))

    (status,) = evaluate([weekday_contract()], lake.store, clock).datasets
    outcome = {r.subject: r.detail.get("outcome") for r in status.results if r.monitor == "arrival"}

    assert outcome["2026-12-21"] == "validated"
    assert outcome["2026-12-22"] == "quarantined (data.quality)"


def test_without_a_schedule_age_alone_is_judged(
    lake: Any, clock: Any, berlin: Any, weekday_contract: Any
) -> None:
    contract = weekday_contract(expected=None)
    lake.drop("pos", "pos_20261218.csv", berlin(18, 6))
    clock.set(berlin(19, 9))
    seen = levels(lake, contract, clock)
    assert seen[("age", "landing")] == ("warn", "stale")
    assert not any(kind == "arrival" for kind, _ in seen)
    assert seen[("age", "curated")] == ("unknown", "empty")


def test_missing_says_which_file_of_which_feed_did_not_arrive(
    lake: Any, clock: Any, berlin: Any, weekday_contract: Any
) -> None:
    clock.set(berlin(21, 9))
    (status,) = evaluate([weekday_contract()], lake.store, clock).datasets
    missing = [r for r in status.results if r.state == "missing"]
    assert [r.subject for r in missing][-1] == "2026-12-21"
    assert "'pos_{date:%Y%m%d}.csv' under landing/pos/" in missing[-1].why
    assert "did not arrive" in missing[-1].why
    assert status.level == "critical"


def test_a_future_dated_object_does_not_hide_an_overdue_zone_and_is_named_beside_it(
    lake: Any, clock: Any, berlin: Any, weekday_contract: Any
) -> None:
    deliver_week(lake, berlin, range(14, 18))
    key = lake.drop("pos", "pos_20261218.csv", datetime(2099, 1, 1, tzinfo=UTC))  # a kept mtime
    clock.set(berlin(22, 12))  # Tuesday: Monday's file is overdue, which 2099 used to hide

    (status,) = evaluate([weekday_contract()], lake.store, clock).datasets
    (landing,) = [r for r in status.results if (r.monitor, r.subject) == ("age", "landing")]

    assert (landing.level, landing.state) == ("critical", "overdue")  # the worse one wins
    assert landing.detail["key"].endswith("pos_20261217.csv")  # the newest not in the future
    assert landing.value is not None
    assert landing.value > 50 * 3600
    assert landing.detail["future_key"] == key
    assert f"the furthest {key} at 2099-01-01 00:00 UTC" in landing.why
    assert status.level == "critical"


def test_a_zone_in_time_beside_a_future_dated_object_warns_naming_it_with_its_age(
    lake: Any, clock: Any, berlin: Any, weekday_contract: Any
) -> None:
    deliver_week(lake, berlin, range(14, 19))
    key = lake.drop("pos", "pos_20261219.csv", datetime(2099, 1, 1, tzinfo=UTC))
    clock.set(berlin(19, 12))  # Saturday: nothing is overdue

    (status,) = evaluate([weekday_contract()], lake.store, clock).datasets
    (landing,) = [r for r in status.results if (r.monitor, r.subject) == ("age", "landing")]

    assert (landing.level, landing.state) == ("warn", "future")
    assert key in landing.why
    assert "1 landing object dated after listing" in landing.why
    assert landing.value == (berlin(19, 12) - berlin(18, 6, 10)).total_seconds()
    assert landing.detail["key"].endswith("pos_20261218.csv")


def test_a_zone_no_threshold_judges_still_warns_of_a_future_dated_object_and_shows_its_age(
    lake: Any, clock: Any, berlin: Any, weekday_contract: Any
) -> None:
    """A clock problem is worth a warning whatever the thresholds; the age stays shown."""
    lake.drop("pos", "pos_20261001.csv", datetime(2026, 10, 1, 6, tzinfo=UTC))
    key = lake.drop("pos", "pos_20261002.csv", datetime(2099, 1, 1, tzinfo=UTC))
    contract = weekday_contract(warn_after=None, critical_after=None, expected=None)
    clock.set(berlin(1, 12))

    (status,) = evaluate([contract], lake.store, clock).datasets
    (landing,) = [r for r in status.results if (r.monitor, r.subject) == ("age", "landing")]

    assert (landing.level, landing.state) == ("warn", "future")
    assert key in landing.why
    assert "shown only" in landing.why  # the age itself is still not judged
    assert landing.value is not None
    assert landing.value > 59 * 86400


def test_a_replay_leaves_out_objects_stored_after_its_instant(
    lake: Any, clock: Any, berlin: Any, weekday_contract: Any
) -> None:
    deliver_week(lake, berlin, range(14, 19))
    lake.drop("pos", "pos_20261221.csv", berlin(21, 9))  # Monday's file, late
    lake.validate("pos", date(2026, 12, 21), 10, berlin(21, 9, 5), "landing/pos/pos_20261221.csv")
    clock.set(berlin(21, 8, 30))  # after the grace, before the file came

    (replayed,) = evaluate([weekday_contract()], lake.store, clock, replay=True).datasets
    seen = {(r.monitor, r.subject): (r.level, r.state) for r in replayed.results}

    assert seen[("arrival", "2026-12-21")] == ("critical", "missing")  # it did not exist yet
    assert seen[("age", "landing")] == ("critical", "overdue")
    # the week's files were never validated: nothing reached validated for days
    assert seen[("age", "validated")] == ("critical", "never_reached")
    assert replayed.latest_partition == date(2026, 12, 18)
    clock.set(berlin(21, 9, 30))  # once it came, the same replay counts it
    (later,) = evaluate([weekday_contract()], lake.store, clock, replay=True).datasets
    seen = {(r.monitor, r.subject): (r.level, r.state) for r in later.results}
    assert seen[("arrival", "2026-12-21")] == ("warn", "late")
    assert seen[("age", "landing")] == ("ok", "fresh")
    assert seen[("age", "validated")][1] == "fresh"


def test_a_replayed_monitor_unit_leaves_out_what_was_stored_after_its_instant(
    lake: Any, berlin: Any, weekday_contract: Any
) -> None:
    """``check --at --executor celery``: the worker is told the instant is a replay."""
    deliver_week(lake, berlin, range(14, 19))
    lake.drop("pos", "pos_20261221.csv", berlin(21, 9))
    context = MonitorContext(lake.store, ContractSet((weekday_contract(),)))

    unit = replayed_unit("pos", berlin(21, 8, 30))
    status = run_unit(context, WorkUnit.from_json(unit.to_json()))  # as it crosses the broker

    seen = {(r.monitor, r.subject): (r.level, r.state) for r in status.results}
    assert seen[("arrival", "2026-12-21")] == ("critical", "missing")


def test_an_age_no_threshold_or_schedule_judges_is_unknown_not_fresh(
    lake: Any, clock: Any, berlin: Any, weekday_contract: Any
) -> None:
    lake.drop("pos", "pos_20261001.csv", datetime(2026, 10, 1, 6, tzinfo=UTC))  # 60 days old
    contract = weekday_contract(warn_after=None, critical_after=None, expected=None)
    clock.set(berlin(1, 12))

    (status,) = evaluate([contract], lake.store, clock).datasets
    (landing,) = [r for r in status.results if (r.monitor, r.subject) == ("age", "landing")]

    assert (landing.level, landing.state) == ("unknown", "unjudged")
    assert "shown only: the contract sets no warn_after/critical_after" in landing.why
    assert landing.value is not None  # the age is still shown
    assert landing.value > 59 * 86400
    assert status.level == "unknown"  # not "ok: every monitor is ok"


def test_an_object_dated_within_the_clock_skew_s3_accepts_is_fresh_not_future(
    lake: Any, clock: Any, weekday_contract: Any
) -> None:
    listed = datetime.now(UTC) + timedelta(days=1)  # the clock's time, not the real one
    lake.drop("pos", "pos_20261201.csv", listed + timedelta(minutes=10))  # a store 10m ahead
    clock.set(listed)

    (status,) = evaluate([weekday_contract(expected=None)], lake.store, clock).datasets
    (landing,) = [r for r in status.results if (r.monitor, r.subject) == ("age", "landing")]

    assert (landing.level, landing.state) == ("ok", "fresh")
    assert landing.value == 0
