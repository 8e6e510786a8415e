"""The ``[freshness]`` section: age thresholds, the delivery schedule and the volume baseline.

Read by the observability lane's monitors::

    [freshness]
    warn_after = "26h"              # age of the newest object in each zone
    critical_after = "50h"
    expected = "0 6 * * 1-5"        # a delivery is due at each of these times (cron)...
    grace = "2h"                    # ...and late when not there this long after
    timezone = "Europe/Berlin"      # the cron's and the holidays' time zone
    holidays = ["2026-12-25"]       # days nothing is due, or a file of dates
    lag_days = 1                    # the file due on Tuesday carries Monday's date

    [freshness.volume]
    weeks = 4                       # baseline: the same weekday of the 4 previous weeks
    warn_deviation = "50%"
    critical_deviation = "80%"

The cron expression is checked for its shape here (five fields); the observability
lane parses it whole with its cron engine. Everything here is the standard library.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from etl_core.config_files import ConfigFileError, read_config_text

if TYPE_CHECKING:  # zoneinfo is imported on use: it loads sysconfig, slow and not needed at import
    from zoneinfo import ZoneInfo

__all__ = [
    "Freshness",
    "Holidays",
    "Percent",
    "VolumeBaseline",
    "cron_shape_problem",
    "is_cron_shaped",
]

_PERCENT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*%\s*")
_CRON_FIELD = re.compile(r"[0-9A-Za-z*/,#?-]+")


_CRON_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
)
"""Each field's name and range: a number outside it would make a schedule that never fires."""


def is_cron_shaped(expression: str) -> bool:
    """Whether ``expression`` has the shape of a five-field cron (a cron engine parses it)."""
    return cron_shape_problem(expression) is None


def cron_shape_problem(expression: str) -> str | None:
    """What is wrong with the shape of a five-field cron, or ``None``: the field count, and
    each plain number, range and step against its field's range (names, ``L``, ``#`` and
    ``?`` are left to the cron engine)."""
    fields = expression.split()
    if len(fields) != 5 or not all(_CRON_FIELD.fullmatch(f) for f in fields):
        return "not five fields"
    for text, (name, low, high) in zip(fields, _CRON_FIELDS, strict=True):
        for part in text.split(","):
            problem = _cron_part_problem(part, name, low, high)
            if problem is not None:
                return problem
    return None


def _cron_part_problem(part: str, name: str, low: int, high: int) -> str | None:
    base, _, step = part.partition("/")
    if step.isdigit() and int(step) == 0:
        return f"{name} step 0 in {part!r}"
    start, _, end = base.partition("-")
    for number in (start, end):
        if number.isdigit() and not low <= int(number) <= high:
            return f"{name} {int(number)} is not in {low}-{high}"
    if start.isdigit() and end.isdigit() and int(start) > int(end):
        return f"{name} range {base} runs backwards"
    return None


@dataclass(frozen=True)
class Percent:
    """A share written as a percent (``"30%"``); :attr:`fraction` is ``0.3``."""

    fraction: float

    @classmethod
    def from_config(cls, value: object) -> Percent:
        """From the contract value: text such as ``"30%"`` (0 to 1000).

        Raises:
            ValueError: anything else.
        """
        found = _PERCENT.fullmatch(value) if isinstance(value, str) else None
        if found is None or float(found.group(1)) > 1000:
            raise ValueError(f"expected a percent as text such as '30%', got {value!r}")
        return cls(float(found.group(1)) / 100)

    def __str__(self) -> str:
        return f"{self.fraction * 100:g}%"


@dataclass(frozen=True)
class Holidays:
    """Days on which no delivery is due: listed dates and/or a file of dates.

    ``holidays = ["2026-12-25", 2027-01-01]`` lists them; ``holidays = "de.txt"`` names
    a file (relative to the contract's folder) with one ``YYYY-MM-DD`` per line,
    optionally followed by a name; blank lines and ``#`` comments are ignored. The file
    is read when the contract is loaded (:meth:`read`), so a bad line stops start-up.
    """

    dates: frozenset[dt.date] = frozenset()
    file: str | None = None

    @classmethod
    def from_config(cls, value: object) -> Holidays:
        """From the contract value: an array of dates (TOML or ISO text) or a file name.

        Raises:
            ValueError: anything else, naming the bad item.
        """
        if isinstance(value, str):
            if not value.strip():
                raise ValueError("expected a file of dates or an array of dates, got ''")
            return cls(file=value.strip())
        if not isinstance(value, list | tuple):
            raise ValueError(
                "expected an array of dates (['2026-12-25']) or the name of a file of dates"
            )
        days: set[dt.date] = set()
        for index, item in enumerate(value):
            day = _date(item)
            if day is None:
                raise ValueError(f"item {index}: expected a date YYYY-MM-DD, got {item!r}")
            days.add(day)
        return cls(dates=frozenset(days))

    def read(self, folder: Path) -> Holidays:
        """These holidays with the file's dates added (``file`` relative to ``folder``).

        Raises:
            ValueError: the file cannot be read, or a line is not a date (its number named).
        """
        if self.file is None:
            return self
        path = folder / self.file
        try:
            text = read_config_text(path)
        except ConfigFileError as exc:
            raise ValueError(f"cannot read the holiday file {path}: {exc.problem}") from None
        days = set(self.dates)
        for number, line in enumerate(text.splitlines(), start=1):
            content = line.split("#", 1)[0].strip()
            if not content:
                continue
            day = _date(content.split()[0])
            if day is None:
                raise ValueError(
                    f"{path}:{number}: expected a date YYYY-MM-DD (then an optional name), "
                    f"got {content!r}"
                )
            days.add(day)
        return replace(self, dates=frozenset(days))

    def __contains__(self, day: object) -> bool:
        return day in self.dates


def _date(value: object) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return None
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


@dataclass(frozen=True)
class VolumeBaseline:
    """``[freshness.volume]``: rows of a partition against the same weekday of past weeks.

    Attributes:
        weeks: How many previous weeks' same weekday make the baseline (their median).
        min_history: Baseline partitions needed before a verdict (fewer: ``unknown``).
        warn_deviation: Distance from the baseline, as a share of it, that warns.
        critical_deviation: ... that is critical; larger than ``warn_deviation``.
    """

    weeks: int = 4
    min_history: int = 2
    warn_deviation: Percent = Percent(0.5)
    critical_deviation: Percent = Percent(0.8)


MIN_AGE_THRESHOLD = timedelta(minutes=1)
"""The shortest age threshold: below it, a number was almost surely meant in another unit
(``warn_after = 26`` reads as 26 seconds, not 26 hours)."""


def _too_short(value: timedelta) -> str:
    return (
        "expected a duration of a minute or more, with its unit, such as '26h' "
        f"(a bare number is seconds: got {value.total_seconds():g}s)"
    )


@dataclass(frozen=True)
class Freshness:
    """``[freshness]``: how old each zone may grow, when deliveries are due, how many rows.

    Attributes:
        warn_after: Age of the newest object (landing, validated, curated) that warns.
        critical_after: ... that is critical; longer than ``warn_after``.
        expected: When a delivery is due: a five-field cron expression in ``timezone``.
            Outside it nothing is late.
        grace: How long after a due time a delivery is still on time.
        timezone: The IANA time zone of ``expected`` and ``holidays``.
        holidays: Days on which nothing is due.
        lag_days: The file due at a scheduled time carries the date this many days
            earlier (1: the Tuesday 06:00 file is Monday's partition).
        lookback_days: How many days of deliveries the arrival monitor judges.
        volume: The row-count baseline.
    """

    warn_after: timedelta | None = None
    critical_after: timedelta | None = None
    expected: str | None = None
    grace: timedelta = timedelta(0)
    timezone: str = "UTC"
    holidays: Holidays = field(default_factory=Holidays)
    lag_days: int = 0
    lookback_days: int = 7
    volume: VolumeBaseline = field(default_factory=VolumeBaseline)

    @property
    def zone(self) -> ZoneInfo:
        """The time zone of the schedule.

        Raises:
            zoneinfo.ZoneInfoNotFoundError: ``timezone`` names no known zone.
        """
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.timezone)

    def problems(self, folder: Path | None = None) -> list[tuple[str, str]]:
        """Every ``(field, message)`` wrong with the section; ``folder`` resolves the holidays."""
        found: list[tuple[str, str]] = []
        warn, critical = self.warn_after, self.critical_after
        for name, value in (("warn_after", warn), ("critical_after", critical)):
            if value is not None and value <= timedelta(0):
                found.append((name, "expected a positive duration such as '26h'"))
            elif value is not None and value < MIN_AGE_THRESHOLD:
                found.append((name, _too_short(value)))
        if warn is not None and critical is not None and warn >= critical:
            found.append(("critical_after", "must be longer than warn_after"))
        found += self._schedule_problems()
        if folder is not None:
            try:
                self.holidays.read(folder)
            except ValueError as exc:
                found.append(("holidays", str(exc)))
        said = {name for name, _ in found}
        found += [problem for problem in self._unscheduled_problems() if problem[0] not in said]
        found += self._volume_problems()
        return found

    def _unscheduled_problems(self) -> list[tuple[str, str]]:
        """The schedule's keys set without ``expected``: nothing is due, so they would be
        ignored while the one who wrote them believes deliveries are watched."""
        if self.expected is not None:
            return []
        set_alone = [
            ("grace", self.grace != timedelta(0)),
            ("lag_days", self.lag_days != 0),
            ("holidays", bool(self.holidays.dates) or self.holidays.file is not None),
        ]
        return [
            (
                name,
                "is read only with freshness.expected (when deliveries are due, a cron such "
                "as '0 6 * * 1-5'): without it nothing is due and it would be ignored; "
                "set expected, or remove it",
            )
            for name, is_set in set_alone
            if is_set
        ]

    def _schedule_problems(self) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        problem = None if self.expected is None else cron_shape_problem(self.expected)
        if problem is not None:
            found.append(
                (
                    "expected",
                    "expected a cron expression of five fields (minute hour day-of-month "
                    f"month day-of-week), e.g. '0 6 * * 1-5', got {self.expected!r}: {problem}",
                )
            )
        from zoneinfo import ZoneInfoNotFoundError

        try:
            self.zone  # noqa: B018 - loading the zone is the validation
        except (ZoneInfoNotFoundError, ValueError):
            found.append(
                (
                    "timezone",
                    f"expected an IANA time zone such as 'Europe/Berlin', got {self.timezone!r}",
                )
            )
        if not 0 <= self.lag_days <= 366:
            found.append(("lag_days", f"expected 0 to 366 days, got {self.lag_days}"))
        if not 1 <= self.lookback_days <= 366:
            found.append(("lookback_days", f"expected 1 to 366 days, got {self.lookback_days}"))
        return found

    def _volume_problems(self) -> list[tuple[str, str]]:
        volume = self.volume
        found: list[tuple[str, str]] = []
        if not 1 <= volume.weeks <= 52:
            found.append(("volume.weeks", f"expected 1 to 52 weeks, got {volume.weeks}"))
        if not 1 <= volume.min_history <= volume.weeks:
            found.append(
                (
                    "volume.min_history",
                    f"expected 1 to weeks ({volume.weeks}) partitions, got {volume.min_history}",
                )
            )
        if volume.warn_deviation.fraction >= volume.critical_deviation.fraction:
            found.append(("volume.critical_deviation", "must be larger than warn_deviation"))
        return found
