"""Age freshness: how old the newest object of each zone is, against the contract's thresholds.

Without a schedule the age alone is judged: ``warn_after``, ``critical_after``. With one
(``expected``), outside the schedule nothing is late: a zone is judged only once a delivery
is *overdue*, that is when the latest due time's deadline (due + grace) has passed and the
zone has nothing newer than the deadline before it. An overdue zone is at least a warning,
and critical once its age passes ``critical_after``. So a weekday feed is fine all
weekend, and on a holiday.

An object dated after its listing (plus :data:`CLOCK_SKEW`) is future-dated: the age is
that of the newest object at or before then, and the future-dated ones are a warning of
their own (state ``future``, naming the furthest ahead), whatever the thresholds: a clock
problem is worth a warning even where no age is judged. The worse of the two verdicts is
the zone's.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from etl_core.contracts import Contract
from observability.monitors.base import Level, Monitor, Result, human_duration, severity
from observability.monitors.facts import CLOCK_SKEW, WATCHED_ZONES, DatasetFacts, ZoneFacts
from observability.monitors.schedule import Schedule

__all__ = ["CLOCK_SKEW", "FUTURE", "UNJUDGED", "AgeMonitor"]

FUTURE = "future"
"""The state of a zone holding future-dated objects when nothing worse is seen (``warn``)."""

UNJUDGED = "unjudged"
"""The state of an age no threshold or schedule judges (level ``unknown``): shown, and
judged by nothing, so an alert it had is over."""


class AgeMonitor(Monitor):
    """The age of the newest landing file, validated delivery and curated partition."""

    kind = "age"

    def __init__(self, contract: Contract, schedule: Schedule | None) -> None:
        super().__init__(contract)
        self.schedule = schedule
        self.warn_after = contract.freshness.warn_after
        self.critical_after = contract.freshness.critical_after

    @classmethod
    def from_contract(cls, contract: Contract) -> AgeMonitor:
        """Every dataset's zones are aged; without thresholds (or a schedule) the age is shown,
        never judged: ``unknown``, not ``ok``."""
        return cls(contract, Schedule.of(contract))

    def evaluate(self, facts: DatasetFacts, now: datetime) -> list[Result]:
        """One result per watched zone."""
        return [self._zone(zone, facts, now) for zone in WATCHED_ZONES]

    def _zone(self, zone: str, facts: DatasetFacts, now: datetime) -> Result:
        found = facts.zone(zone)
        aged = self._aged(zone, found, now)
        return aged if found.future is None else self._with_future(zone, aged, found, now)

    def _aged(self, zone: str, found: ZoneFacts, now: datetime) -> Result:
        """The verdict on the age of the zone's newest object (future-dated ones aside)."""
        threshold = self._threshold()
        newest = found.newest
        if newest is None:
            return self.result(
                zone,
                "unknown",
                "empty",
                observed="nothing yet",
                threshold=threshold,
                why=f"no {zone} object of {self.contract.dataset} has been seen",
            )
        age = max(now - newest, timedelta(0))
        observed = f"{human_duration(age)} old (newest {newest:%Y-%m-%d %H:%M} UTC)"
        fields = {"observed": observed, "threshold": threshold, "value": age.total_seconds()}
        detail = {"newest": newest.isoformat(), "key": found.newest_key or ""}
        by_age = self._level_of(age)
        if self.schedule is None and self.warn_after is None and self.critical_after is None:
            why = f"{zone} age is shown only: the contract sets no warn_after/critical_after"
            return self.result(zone, "unknown", UNJUDGED, why=why, detail=detail, **fields)
        if self.schedule is None:
            why = self._age_why(zone, age, by_age)
            return self.result(zone, by_age, _state(by_age), why=why, detail=detail, **fields)
        overdue_since = self._overdue_since(newest, now)
        if overdue_since is None:
            upcoming = self.schedule.next_due(now)
            when = f"next due {upcoming:%Y-%m-%d %H:%M %Z}" if upcoming else "nothing due ahead"
            why = f"nothing is overdue in {zone}: the newest object is in time ({when})"
            return self.result(zone, "ok", "fresh", why=why, detail=detail, **fields)
        level: Level = "critical" if by_age == "critical" else "warn"
        why = (
            f"a delivery was due by {overdue_since:%Y-%m-%d %H:%M %Z} and {zone} has nothing "
            f"newer than {newest:%Y-%m-%d %H:%M} UTC"
        )
        detail["overdue_since"] = overdue_since.isoformat()
        return self.result(zone, level, "overdue", why=why, detail=detail, **fields)

    def _with_future(self, zone: str, aged: Result, found: ZoneFacts, now: datetime) -> Result:
        """``aged`` with the zone's future-dated objects told: a warning naming the furthest
        ahead, unless the age is worse (or as bad: then its state stays, and why says both)."""
        assert found.future is not None
        ahead = found.future - now
        count = found.future_count
        told = (
            f"{count} {zone} object{'s' if count > 1 else ''} dated after listing, the "
            f"furthest {found.future_key} at {found.future:%Y-%m-%d %H:%M} UTC "
            f"({human_duration(ahead)} ahead): a clock ahead, or a modification time kept "
            "from elsewhere; left out of the age"
        )
        detail = {
            **aged.detail,
            "future": found.future.isoformat(),
            "future_key": found.future_key or "",
            "future_objects": str(count),
        }
        if severity(aged.level) >= severity("warn"):
            return dataclasses.replace(aged, why=f"{aged.why}; also {told}", detail=detail)
        observed = (
            f"dated {human_duration(ahead)} ahead (furthest {found.future:%Y-%m-%d %H:%M} UTC)"
        )
        if found.newest is not None:
            observed += f"; {aged.observed}"
        return dataclasses.replace(
            aged,
            level="warn",
            state=FUTURE,
            observed=observed,
            why=f"{told}; the age: {aged.why}",
            detail=detail,
        )

    def _overdue_since(self, newest: datetime, now: datetime) -> datetime | None:
        """The deadline that passed with nothing new in the zone, or ``None``."""
        assert self.schedule is not None
        grace = self.schedule.grace
        due = self.schedule.last_due(now - grace)
        if due is None:
            return None
        before = self.schedule.last_due(due - timedelta(seconds=1))
        if before is None or newest > before + grace:
            return None  # something arrived in the window of the latest due time
        return due + grace

    def _level_of(self, age: timedelta) -> Level:
        if self.critical_after is not None and age >= self.critical_after:
            return "critical"
        if self.warn_after is not None and age >= self.warn_after:
            return "warn"
        return "ok"

    def _threshold(self) -> str:
        limits = [
            f"{name} {human_duration(value)}"
            for name, value in (("warn", self.warn_after), ("critical", self.critical_after))
            if value is not None
        ]
        text = ", ".join(limits) or "no age thresholds"
        if self.schedule is not None:
            text += f"; due {self.schedule.describe()}"
        return text

    def _age_why(self, zone: str, age: timedelta, level: Level) -> str:
        if level == "ok":
            return f"the newest {zone} object is within its thresholds"
        limit = self.critical_after if level == "critical" else self.warn_after
        assert limit is not None
        return (
            f"the newest {zone} object is {human_duration(age)} old, "
            f"past {level} after {human_duration(limit)}"
        )


def _state(level: Level) -> str:
    return "fresh" if level == "ok" else "stale"
