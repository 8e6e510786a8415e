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

A zone with nothing in it is ``unknown`` (``empty``: nothing yet), unless the dataset's
data is expected to reach it (:func:`expected_zones`) and the zone before it holds objects:
then nothing has moved on, and every object upstream has waited since it arrived. Its lag
is the age of the upstream zone's *oldest* object (a daily feed's newest file is never a
day old, so the newest would hide a lane that never worked), judged by the same rules as an
age (state :data:`NEVER_REACHED`, ``awaiting`` while within them): ``warn_after`` /
``critical_after``; with a schedule, it is overdue (at least ``warn``) once the grace of the
due time that object arrived on time for (the first due time after its arrival less grace)
has passed. A brand-new dataset with
nothing anywhere stays ``unknown``; so does a zone after an empty one (the first stuck zone
is the one that alarms), and one a later zone holds objects behind (the data got through:
a lifecycle rule expiring ``validated/``, curated being the product, emptied it).

A zone emptied while late (a dead feed whose files a lifecycle rule expired) is no better
than before, only older: given when its newest object was last seen (:func:`last_seen`, from
the summary of its open age alert), :meth:`AgeMonitor.emptied` judges it by that object's
age, growing with the clock (state :data:`EMPTIED`), until an object arrives again.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta

from etl_core.contracts import Contract
from etl_core.layout import CURATED, LANDING, VALIDATED
from observability.monitors.base import Level, Monitor, Result, human_duration, severity
from observability.monitors.facts import CLOCK_SKEW, WATCHED_ZONES, DatasetFacts, ZoneFacts
from observability.monitors.schedule import Schedule

__all__ = [
    "AWAITING",
    "CLOCK_SKEW",
    "EMPTIED",
    "EMPTY",
    "FUTURE",
    "NEVER_REACHED",
    "UNJUDGED",
    "UNMEASURED",
    "AgeMonitor",
    "expected_zones",
    "last_seen",
]

FUTURE = "future"
"""The state of a zone holding future-dated objects when nothing worse is seen (``warn``)."""

UNJUDGED = "unjudged"
"""The state of an age no threshold or schedule judges (level ``unknown``): shown, and
judged by nothing, so an alert it had is over."""

EMPTY = "empty"
"""The state of a zone holding nothing, with nothing upstream waiting for it (level
``unknown``): it has no age to judge (a lifecycle rule expired it, or nothing came yet), so
an alert it had is over."""

UNMEASURED = frozenset({UNJUDGED, EMPTY})
"""The states of a zone whose age is no longer measured or judged: an alert on the zone
resolves (:mod:`observability.alerts.lifecycle`), where another ``unknown`` (nothing learnt)
leaves it as it is."""

STALE = "stale"
"""The state of a zone whose newest object is past ``warn_after`` (no schedule)."""
OVERDUE = "overdue"
"""The state of a zone with nothing newer than a due time's deadline (a schedule)."""

EMPTIED = "emptied"
"""The state of a zone emptied while its age was judged late (``warn`` or ``critical``):
judged by the age of the newest object it was last seen holding (:meth:`AgeMonitor.emptied`)."""

_NEWER = "nothing newer than {:%Y-%m-%d %H:%M} UTC"
"""How a late age's why names its zone's newest object (what :func:`last_seen` reads)."""
_LAST_SEEN = re.compile(
    r"(?:the newest \w+ object is [^;:]*: |a delivery was due by [^;]* and \w+ has )"
    r"nothing newer than (\d{4}-\d{2}-\d{2} \d{2}:\d{2}) UTC(?:;|$)"
)
"""A late age's why, from its start (:meth:`AgeMonitor._age_why`, the overdue why): never
text later in a summary, such as an object's key a future-dated or stuck zone's why names."""

NEVER_REACHED = "never_reached"
"""The state of an empty zone the dataset's data should have reached by now (``warn`` or
``critical``): the zone before it holds objects that have waited too long."""

AWAITING = "awaiting"
"""The state of an empty zone the upstream zone's objects may still reach in time (``ok``)."""

UPSTREAM = {VALIDATED: LANDING, CURATED: VALIDATED}
"""Where each zone's data comes from."""

_OBJECT = {LANDING: "file", VALIDATED: "delivery"}
_CAME = {LANDING: "arrived", VALIDATED: "was published"}


def expected_zones(contract: Contract) -> tuple[str, ...]:
    """The zones after landing that ``contract``'s data is expected to reach: ``validated``
    (the file lane validates every dataset's landing files, API chunks included), and
    ``curated`` when the contract asks data_pipeline for it (:attr:`Contract.builds_curated`)."""
    return (VALIDATED, CURATED) if contract.builds_curated else (VALIDATED,)


def last_seen(summary: str) -> datetime | None:
    """When the newest object of a zone judged late was stored, as its age alert's
    ``summary`` says it (the why of a ``stale``, ``overdue`` or ``emptied`` age: "nothing
    newer than 2026-12-01 06:00 UTC"); ``None`` for any other summary (a stuck zone's, a
    future-dated object's, an age within its thresholds; a key in it that quotes those
    words: only the monitor's own sentence, from the summary's start, is read)."""
    found = _LAST_SEEN.match(summary)
    if found is None:
        return None
    return datetime.strptime(found.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


class AgeMonitor(Monitor):
    """The age of the newest landing file, validated delivery and curated partition."""

    kind = "age"

    def __init__(self, contract: Contract, schedule: Schedule | None) -> None:
        super().__init__(contract)
        self.schedule = schedule
        self.warn_after = contract.freshness.warn_after
        self.critical_after = contract.freshness.critical_after
        self.expected = expected_zones(contract)

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
        if _empty(found) and zone in self.expected and not self._passed_through(zone, facts):
            upstream = facts.zone(UPSTREAM[zone])
            if upstream.oldest is not None:
                return self._stuck(zone, upstream, now)
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
                EMPTY,
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
            why = self._age_why(zone, age, by_age, newest)
            return self.result(zone, by_age, _state(by_age), why=why, detail=detail, **fields)
        overdue_since = self._overdue_since(newest, now)
        if overdue_since is None:
            upcoming = self.schedule.next_due(now)
            when = f"next due {upcoming:%Y-%m-%d %H:%M %Z}" if upcoming else "nothing due ahead"
            why = f"nothing is overdue in {zone}: the newest object is in time ({when})"
            return self.result(zone, "ok", "fresh", why=why, detail=detail, **fields)
        level: Level = "critical" if by_age == "critical" else "warn"
        newer = _NEWER.format(newest.astimezone(UTC))
        why = f"a delivery was due by {overdue_since:%Y-%m-%d %H:%M %Z} and {zone} has {newer}"
        detail["overdue_since"] = overdue_since.isoformat()
        return self.result(zone, level, OVERDUE, why=why, detail=detail, **fields)

    def emptied(self, zone: str, seen: datetime, now: datetime) -> Result | None:
        """The verdict on ``zone``, found empty, whose newest object was last seen stored at
        ``seen`` while its age was judged late (its open alert says so, :func:`last_seen`):
        at least as late as then, by that object's age (state :data:`EMPTIED`). A lifecycle
        rule expiring a dead feed's files makes it no fresher.

        ``None`` when the zone is no longer judged so (its age would read ``unknown``, the
        empty zone's state, and its alert resolve as no longer measured): the contract
        judges no age any more, no longer expects its data in ``zone`` (a curated zone it
        stopped building), or judges that age within its thresholds now.
        """
        if zone != LANDING and zone not in self.expected:
            return None
        found = ZoneFacts()
        found.newest = seen
        aged = self._aged(zone, found, now)
        if aged.level not in ("warn", "critical"):
            return None
        why = (
            f"{aged.why}; {zone} was emptied since (a lifecycle rule expired its objects, say) "
            "and nothing arrived"
        )
        return dataclasses.replace(aged, state=EMPTIED, why=why)

    def carried(self, held: Result, seen: datetime, now: datetime) -> Result | None:
        """The verdict on a zone whose monitor said ``held`` and whose newest object was
        last seen stored at ``seen`` while it was judged late (its open age alert says so,
        :func:`last_seen`), when that object judges it (:meth:`emptied`, :meth:`thinned`,
        an emptied zone holding only future-dated objects); ``None``: ``held`` stands."""
        if held.state == EMPTY:
            return self.emptied(held.subject, seen, now)
        if held.state == FUTURE and "newest" not in held.detail:  # nothing dated held
            emptied = self.emptied(held.subject, seen, now)
            try:
                found = ZoneFacts()
                found.future = datetime.fromisoformat(held.detail["future"])
                found.future_key = held.detail.get("future_key", "")
                found.future_count = int(held.detail.get("future_objects", "1"))
            except (KeyError, ValueError):
                return None
            if emptied is None:
                return None
            return self._with_future(held.subject, emptied, found, now)
        return self.thinned(held, seen, now)

    def thinned(self, held: Result, seen: datetime, now: datetime) -> Result | None:
        """The verdict on a late zone (``held``: ``stale`` or ``overdue`` by the newest
        object it holds) whose newest object was last seen stored at ``seen``, later than
        any it holds now: its newer objects were removed since (expired, then an old file
        backfilled with its modification time kept). It is judged by ``seen``, as an
        emptied zone is (:meth:`emptied`): the feed is no staler than its alert last saw.

        ``None`` when ``held`` is no such result, or ``seen`` is not late (the thresholds
        were raised since): ``held`` stands.
        """
        if held.state not in (STALE, OVERDUE) or "future" in held.detail:
            return None
        try:
            newest = datetime.fromisoformat(held.detail["newest"])
        except (KeyError, ValueError):
            return None
        if newest >= seen:
            return None
        found = ZoneFacts()
        found.newest = seen
        aged = self._aged(held.subject, found, now)
        if aged.level not in ("warn", "critical"):
            return None
        key = held.detail.get("key", "")
        why = (
            f"{aged.why}; {held.subject}'s newer objects were removed since: the newest it "
            f"holds ({key}) is from {newest.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        )
        detail = {
            **aged.detail,
            "held_newest": newest.isoformat(),
            "held_key": key,
        }
        return dataclasses.replace(aged, why=why, detail=detail)

    @staticmethod
    def _passed_through(zone: str, facts: DatasetFacts) -> bool:
        """Whether a zone after ``zone`` holds objects: the data got through ``zone``, which
        was emptied since (a lifecycle rule expiring ``validated/``, curated being the
        product), so its emptiness says nothing is stuck in it."""
        later = WATCHED_ZONES[WATCHED_ZONES.index(zone) + 1 :]
        return any(not _empty(facts.zone(after)) for after in later)

    def _stuck(self, zone: str, upstream: ZoneFacts, now: datetime) -> Result:
        """The verdict on an empty ``zone`` the ``upstream`` zone's objects should reach: its
        lag is the age of the oldest of them, judged as an age is."""
        assert upstream.oldest is not None
        assert upstream.newest is not None
        source = UPSTREAM[zone]
        lag = max(now - upstream.oldest, timedelta(0))
        threshold = self._threshold()
        observed = f"nothing yet; {source}'s oldest {human_duration(lag)} old"
        fields = {"observed": observed, "threshold": threshold, "value": lag.total_seconds()}
        detail = {
            "upstream": source,
            "upstream_oldest": upstream.oldest.isoformat(),
            "upstream_oldest_key": upstream.oldest_key or "",
            "upstream_newest": upstream.newest.isoformat(),
            "upstream_newest_key": upstream.newest_key or "",
        }
        told = (
            f"nothing {zone} yet: {source}'s first {_OBJECT[source]} ({upstream.oldest_key}) "
            f"{_CAME[source]} {human_duration(lag)} ago"
        )
        if upstream.newest != upstream.oldest:
            newest_age = human_duration(max(now - upstream.newest, timedelta(0)))
            told += f", its newest ({upstream.newest_key}) {newest_age} ago"
        if self.schedule is None and self.warn_after is None and self.critical_after is None:
            why = f"{told}; shown only: the contract sets no warn_after/critical_after"
            return self.result(zone, "unknown", UNJUDGED, why=why, detail=detail, **fields)
        by_age = self._level_of(lag)
        level: Level = by_age
        if self.schedule is None:
            why = f"{told}; {self._lag_why(lag, level)}"
        else:
            deadline = self._deadline_after(upstream.oldest)
            if deadline is not None:
                detail["overdue_since"] = deadline.isoformat()
            if deadline is None or now < deadline:
                when = f"due by {deadline:%Y-%m-%d %H:%M %Z}" if deadline else "nothing due"
                return self.result(
                    zone, "ok", AWAITING, why=f"{told}; {when}", detail=detail, **fields
                )
            level = "critical" if by_age == "critical" else "warn"
            why = f"{told}; it was due in {zone} by {deadline:%Y-%m-%d %H:%M %Z}"
        state = AWAITING if level == "ok" else NEVER_REACHED
        return self.result(zone, level, state, why=why, detail=detail, **fields)

    def _deadline_after(self, arrived: datetime) -> datetime | None:
        """The end of the grace of the first due time ``arrived`` is on time for (the first
        due time after ``arrived`` minus grace): by then an object that arrived upstream at
        ``arrived`` has moved on, as a zone holding older objects is judged (a file landing
        at 06:30 for 06:00 with 2h grace is due by 08:00, not after the next due time: a
        weekend or holidays later). ``None``: nothing due in 400 days."""
        assert self.schedule is not None
        grace = self.schedule.grace
        due = self.schedule.next_due(arrived - grace)
        return None if due is None else due + grace

    def _lag_why(self, lag: timedelta, level: Level) -> str:
        if level == "ok":
            return "within its thresholds"
        limit = self.critical_after if level == "critical" else self.warn_after
        assert limit is not None
        return f"past {level} after {human_duration(limit)}"

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

    def _age_why(self, zone: str, age: timedelta, level: Level, newest: datetime) -> str:
        if level == "ok":
            return f"the newest {zone} object is within its thresholds"
        limit = self.critical_after if level == "critical" else self.warn_after
        assert limit is not None
        return (
            f"the newest {zone} object is {human_duration(age)} old, "
            f"past {level} after {human_duration(limit)}: " + _NEWER.format(newest.astimezone(UTC))
        )


def _state(level: Level) -> str:
    return "fresh" if level == "ok" else STALE


def _empty(found: ZoneFacts) -> bool:
    """Whether the zone holds no object at all (future-dated ones count as held)."""
    return found.newest is None and found.future is None
