"""Delivery schedules: cron in a time zone, holidays skipped, every search bounded."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim

from observability.contract_rules import schedule_problems
from observability.monitors import Schedule, cron_problem, shortest_period

BERLIN = ZoneInfo("Europe/Berlin")


def weekdays(**changes: object) -> Schedule:
    fields: dict[str, object] = {
        "cron": "0 6 * * 1-5",
        "grace": timedelta(hours=2),
        "zone": BERLIN,
        "holidays": frozenset({date(2026, 12, 25)}),
    }
    fields.update(changes)
    return Schedule(**fields)  # type: ignore[arg-type]


def test_due_times_skip_weekends_and_holidays() -> None:
    start = datetime(2026, 12, 23, tzinfo=UTC)
    due = list(weekdays().due_times(start, start + timedelta(days=7)))
    assert [moment.date() for moment in due] == [date(2026, 12, d) for d in (23, 24, 28, 29)]
    assert all(moment.hour == 6 and moment.tzinfo == BERLIN for moment in due)


def test_the_due_hour_follows_daylight_saving_time() -> None:
    schedule = weekdays()
    winter = schedule.due_for(date(2026, 3, 27))  # Friday before the change
    summer = schedule.due_for(date(2026, 3, 30))  # Monday after it
    assert winter is not None
    assert summer is not None
    assert winter.astimezone(UTC).hour == 5
    assert summer.astimezone(UTC).hour == 4


def test_last_due_is_inclusive_and_skips_a_holiday() -> None:
    schedule = weekdays()
    friday = datetime(2026, 12, 18, 6, tzinfo=BERLIN)
    assert schedule.last_due(friday) == friday
    assert schedule.last_due(datetime(2026, 12, 27, 12, tzinfo=BERLIN)) == datetime(
        2026, 12, 24, 6, tzinfo=BERLIN
    )


def test_lag_days_shift_the_partition_date() -> None:
    schedule = weekdays(cron="0 6 * * 2-6", lag_days=1)
    tuesday = datetime(2026, 12, 22, 6, tzinfo=BERLIN)
    assert schedule.partition_of(tuesday) == date(2026, 12, 21)
    assert schedule.due_for(date(2026, 12, 21)) == tuesday
    assert schedule.due_for(date(2026, 12, 20)) is None  # Monday: nothing due on Sunday's date


def test_a_rare_cron_is_searched_within_bounds() -> None:
    schedule = weekdays(cron="0 0 29 2 *", holidays=frozenset())
    moment = datetime(2026, 12, 1, tzinfo=UTC)
    assert schedule.last_due(moment) is None  # 2024-02-29 is beyond the 400-day search
    assert schedule.next_due(moment) is None  # 2028-02-29 is too
    assert list(schedule.due_times(moment, moment + timedelta(days=30))) == []


def test_a_schedule_that_is_all_holidays_ends_its_search() -> None:
    days = frozenset(date(2026, 1, 1) + timedelta(days=n) for n in range(800))
    schedule = weekdays(cron="* * * * *", holidays=days)
    assert schedule.last_due(datetime(2027, 6, 1, tzinfo=UTC)) is None


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("0 25 * * *", "Bad hour"),
        ("0 6 * * MON-FRY", "Bad day-of-week"),
        ("0 0 31 2 *", "Bad day-of-month"),
        ("61 * * * *", "Bad minute"),
    ],
)
def test_the_cron_engine_refuses_what_cron_would(expression: str, problem: str) -> None:
    said = cron_problem(expression)
    assert said is not None
    assert problem in said
    assert cron_problem("0 6 * * MON-FRI") is None


def test_the_lane_rule_names_the_field(weekday_contract: object) -> None:
    contract = weekday_contract(expected="0 6 * * 8")  # type: ignore[operator]
    ((field, message),) = list(schedule_problems(contract))
    assert field == "freshness.expected"
    assert "Bad day-of-week" in message


@pytest.mark.parametrize(
    ("cron", "grace", "period"),
    [
        ("0 6 * * 1-5", timedelta(hours=25), "1d"),  # Monday to Tuesday, not the weekend
        ("0 6,18 * * *", timedelta(hours=13), "12h"),
        ("15 0 1 * *", timedelta(days=29), "28d"),  # February
        ("*/5 * * * *", timedelta(minutes=6), "5m"),
    ],
)
def test_a_grace_longer_than_the_schedules_period_is_refused_naming_both(
    weekday_contract: object, cron: str, grace: timedelta, period: str
) -> None:
    contract = weekday_contract(expected=cron, grace=grace)  # type: ignore[operator]
    ((field, message),) = list(schedule_problems(contract))
    assert field == "freshness.grace"
    assert f"two due times of expected '{cron}' ({period})" in message


@pytest.mark.parametrize(
    ("cron", "grace"),
    [
        ("0 6 * * 1-5", timedelta(hours=24)),  # as long as the period: still one window
        ("0 6,18 * * *", timedelta(hours=2)),
        ("0 0 29 2 *", timedelta(days=300)),  # a leap day: four years apart
    ],
)
def test_a_grace_within_the_schedules_period_is_accepted(
    weekday_contract: object, cron: str, grace: timedelta
) -> None:
    contract = weekday_contract(expected=cron, grace=grace)  # type: ignore[operator]
    assert list(schedule_problems(contract)) == []


def _walked_shortest_period(expression: str) -> timedelta | None:
    """The shortest gap between consecutive firings over 2000-2004, by walking every one."""
    moments = CronSim(expression, datetime(2000, 1, 1))
    shortest: timedelta | None = None
    before = next(moments)
    for moment in moments:
        if moment.year > 2004:
            break
        if shortest is None or moment - before < shortest:
            shortest = moment - before
        before = moment
    return shortest


@pytest.mark.parametrize(
    "cron",
    [
        "0 6 * * 1-5",
        "0 6,18 * * *",
        "0 0,23 * * *",  # across midnight: 1h
        "45 23 * * 5",
        "15 0 1 * *",
        "0 6 13 * 5",  # the 13th or a Friday (Debian cron's OR)
        "0 6 L * *",
        "0 6 * * 5L",
        "0 6 * * 1#2",
        "0 0 29 2 *",
        "30 8-17/3 * 1,7 *",
        "*/20 6-8 * * 0,6",
        "0 12 1-7 * 1",  # days 1 to 7 or any Monday (both fields restricted: ORed)
    ],
)
def test_the_shortest_period_is_the_shortest_gap_between_firings(cron: str) -> None:
    assert shortest_period(cron) == _walked_shortest_period(cron)


def test_the_shortest_period_of_a_frequent_cron_is_found_without_walking_its_times() -> None:
    """Checked at every command's start for each contract: cheap whatever the frequency
    (walking an hourly cron's four years took about 0.2 s a contract)."""
    crons = [f"{minute} * * * *" for minute in range(0, 60, 6)] + ["*/2 * * * *"]
    started = time.perf_counter()
    periods = [shortest_period(cron) for cron in crons]
    assert time.perf_counter() - started < 0.5
    assert periods == [timedelta(hours=1)] * 10 + [timedelta(minutes=2)]


def test_a_cron_firing_once_or_never_has_no_period() -> None:
    assert shortest_period("0 6 31 2 *") is None  # never: refused by the cron engine
    assert shortest_period("not a cron") is None


@pytest.mark.parametrize("cron", ["0 6 * * 1-5", "30 2 * * *", "0 6,18 * * *", "15 0 1 * *"])
@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"])
@pytest.mark.parametrize("lag", [0, 1, 3])
def test_due_times_and_partition_dates_agree_over_a_year(cron: str, zone: str, lag: int) -> None:
    """Invariants over a year with DST changes, holidays and lags, for every due time.

    Due times increase, are never on a holiday; the partition of a due time has that due
    time's day as its first due time; a day nothing is due has no due time.
    """
    holidays = frozenset(date(2026, 1, 1) + timedelta(days=n) for n in range(0, 365, 11))
    schedule = Schedule(cron, timedelta(hours=1), ZoneInfo(zone), holidays, lag)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    due = list(schedule.due_times(start, start + timedelta(days=365)))

    assert due == sorted(set(due))
    days = {moment.date() for moment in due}
    assert not days & holidays
    for moment in due:
        first = schedule.due_for(schedule.partition_of(moment))
        assert first is not None
        assert first <= moment
        assert first.date() == moment.date()
        assert schedule.last_due(moment) == moment
    for offset in range(0, 365, 7):
        local_day = date(2026, 1, 1) + timedelta(days=offset)
        if local_day not in days:
            assert schedule.due_for(local_day - timedelta(days=lag)) is None
