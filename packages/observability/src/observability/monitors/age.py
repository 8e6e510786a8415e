"""Age freshness: how old the newest object of each zone is, against the contract's thresholds.

Without a schedule the age alone is judged: ``warn_after``, ``critical_after``. With one
(``expected``), outside the schedule nothing is late: a zone is judged only once a delivery
is *overdue*, that is when the latest due time's deadline (due + grace) has passed and the
zone has nothing newer than the deadline before it. An overdue zone is at least a warning,
and critical once its age passes ``critical_after``. So a weekday feed is fine all
weekend, and on a holiday.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from etl_core.contracts import Contract
from observability.monitors.base import Level, Monitor, Result, human_duration
from observability.monitors.facts import WATCHED_ZONES, DatasetFacts
from observability.monitors.schedule import Schedule

__all__ = ["CLOCK_SKEW", "UNJUDGED", "AgeMonitor"]

CLOCK_SKEW = timedelta(minutes=15)
"""How far after the listing an object may be dated before its age is not believed: an
object's time is the store's clock, and S3 (MinIO too) serves a client whose clock is up to
15 minutes off its own, so a smaller tolerance would call each new object future."""

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
        threshold = self._threshold()
        newest = facts.zone(zone).newest
        if newest is None:
            return self.result(
                zone,
                "unknown",
                "empty",
                observed="nothing yet",
                threshold=threshold,
                why=f"no {zone} object of {self.contract.dataset} has been seen",
            )
        if newest > max(now, datetime.now(UTC)) + CLOCK_SKEW:
            key = facts.zone(zone).newest_key or ""
            return self._from_the_future(zone, newest, key, now, threshold)
        age = max(now - newest, timedelta(0))
        observed = f"{human_duration(age)} old (newest {newest:%Y-%m-%d %H:%M} UTC)"
        fields = {"observed": observed, "threshold": threshold, "value": age.total_seconds()}
        detail = {"newest": newest.isoformat(), "key": facts.zone(zone).newest_key or ""}
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

    def _from_the_future(
        self, zone: str, newest: datetime, key: str, now: datetime, threshold: str
    ) -> Result:
        """A zone whose newest object is dated after it was listed: its age is not known, and
        that object would hide any staleness until its date, so it warns."""
        ahead = newest - now
        return self.result(
            zone,
            "warn",
            "future",
            observed=f"dated {human_duration(ahead)} ahead (newest {newest:%Y-%m-%d %H:%M} UTC)",
            threshold=threshold,
            why=(
                f"the newest {zone} object ({key}) is dated {newest:%Y-%m-%d %H:%M} UTC, "
                "after it was listed: its age cannot be judged (a clock ahead, or a "
                "modification time kept from elsewhere)"
            ),
            detail={"newest": newest.isoformat(), "key": key},
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
