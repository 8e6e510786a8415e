"""A contract's delivery schedule: cron times in a time zone, minus holidays, plus grace.

``expected = "0 6 * * 1-5"`` with ``timezone = "Europe/Berlin"`` says a delivery is due at
06:00 Berlin time on weekdays (daylight saving followed, Debian cron's rules, through
``cronsim``); a due time whose local day is a holiday is no due time. Every search is
bounded, so a cron that fires rarely (or a calendar full of holidays) costs at most
:data:`MAX_STEPS` cron steps.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError

from etl_core.contracts import Contract, Freshness

__all__ = ["MAX_STEPS", "Schedule", "cron_problem", "shortest_period"]

MAX_STEPS = 20_000
"""Cron times looked at by one search, at most (a minutely cron covers two weeks)."""
_SEARCH = timedelta(days=400)


def cron_problem(expression: str) -> str | None:
    """Why ``expression`` is not a usable cron expression, or ``None``."""
    try:
        moments = CronSim(expression, datetime(2000, 1, 1))
        next(moments)
    except CronSimError as exc:
        return f"not a valid cron expression ({exc}), e.g. '0 6 * * 1-5'"
    except StopIteration:
        return "the cron expression never fires"
    return None


def shortest_period(expression: str) -> timedelta | None:
    """The shortest time between two consecutive times ``expression`` fires, on the wall
    clock (daylight saving and holidays aside), over the years 2000 to 2004 (leap days
    included); ``None`` when it fires once or never there (or is not a valid expression).

    Read from the expression's fields, not by walking its times: a cron fires at the same
    times of day on each day it fires, so the shortest gap is either between two times of
    one day or from the last time of a day to the first of the next day it fires. Each
    contract's ``grace`` is checked against it whenever contracts are loaded (every command's
    start), so it costs a day's test per day of those years, whatever the cron's frequency.
    """
    try:
        cron = CronSim(expression, datetime(_PERIOD_YEARS[0], 1, 1))
    except CronSimError:
        return None
    times = sorted(
        timedelta(hours=h, minutes=m, seconds=s)
        for h in cron.hours
        for m in cron.minutes
        for s in cron.seconds
    )
    first, last = date(_PERIOD_YEARS[0], 1, 1), date(_PERIOD_YEARS[1], 12, 31)
    days = [
        day
        for day in (first + timedelta(days=n) for n in range((last - first).days + 1))
        if day.month in cron.months and cron.match_day(day)
    ]
    if not times or not days or len(times) * len(days) < 2:
        return None
    gaps = [later - earlier for earlier, later in pairwise(times)]
    if len(days) > 1:
        fewest_days = min(b - a for a, b in pairwise(days))
        gaps.append(fewest_days - (times[-1] - times[0]))
    return min(gaps)


_PERIOD_YEARS = (2000, 2004)
"""The years :func:`shortest_period` looks at: four of them and a leap day."""


@dataclass(frozen=True)
class Schedule:
    """When a dataset's deliveries are due.

    Attributes:
        cron: The five-field cron expression, in ``zone``.
        grace: How long after a due time a delivery is still on time.
        zone: The time zone of the cron and the holidays.
        holidays: Local days with nothing due.
        lag_days: A due time's partition date is its local day minus this.
    """

    cron: str
    grace: timedelta
    zone: ZoneInfo
    holidays: frozenset[date]
    lag_days: int = 0

    @classmethod
    def of(cls, contract: Contract) -> Schedule | None:
        """The contract's schedule, or ``None`` when it declares no ``expected`` times."""
        freshness: Freshness = contract.freshness
        if freshness.expected is None:
            return None
        return cls(
            freshness.expected,
            freshness.grace,
            freshness.zone,
            freshness.holidays.dates,
            freshness.lag_days,
        )

    def describe(self) -> str:
        """The schedule in a few words (``0 6 * * 1-5 Europe/Berlin, grace 2h``)."""
        from observability.monitors.base import human_duration

        grace = f", grace {human_duration(self.grace)}" if self.grace else ""
        return f"'{self.cron}' {self.zone.key}{grace}"

    def due_times(self, after: datetime, until: datetime) -> Iterator[datetime]:
        """Due times ``t`` with ``after < t <= until``, in order, local to :attr:`zone`."""
        moments = CronSim(self.cron, _whole_second(after).astimezone(self.zone))
        for _ in range(MAX_STEPS):
            moment = next(moments, None)
            if moment is None or moment > until:
                return
            if moment > after and moment.date() not in self.holidays:
                yield moment

    def last_due(self, at: datetime) -> datetime | None:
        """The latest due time at or before ``at`` (``None`` if none in 400 days)."""
        start = _whole_second(at) + timedelta(seconds=1)
        moments = CronSim(self.cron, start.astimezone(self.zone), reverse=True)
        for _ in range(MAX_STEPS):
            moment = next(moments, None)
            if moment is None or moment < at - _SEARCH:
                return None
            if moment.date() not in self.holidays:
                return moment
        return None

    def next_due(self, after: datetime) -> datetime | None:
        """The first due time after ``after`` (``None`` if none in 400 days)."""
        return next(self.due_times(after, after + _SEARCH), None)

    def partition_of(self, due: datetime) -> date:
        """The partition date of the file due at ``due``."""
        return due.astimezone(self.zone).date() - timedelta(days=self.lag_days)

    def due_for(self, day: date) -> datetime | None:
        """When the file of partition ``day`` is due: its local day's first due time.

        ``None`` when nothing is due that day (the cron does not fire, or a holiday).
        """
        local_day = day + timedelta(days=self.lag_days)
        midnight = datetime.combine(local_day, time(0), tzinfo=self.zone)
        end = datetime.combine(local_day + timedelta(days=1), time(0), tzinfo=self.zone)
        return next(
            self.due_times(midnight - timedelta(seconds=1), end - timedelta(seconds=1)), None
        )


def _whole_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)
