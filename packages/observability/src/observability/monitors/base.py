"""What every monitor is and gives: the interface, its verdict (:class:`Result`), the clock.

A monitor kind is one class per module (``age``, ``arrival``, ``volume``), built from a
dataset contract by :meth:`Monitor.from_contract` (``None`` when the contract does not ask
for that kind) and evaluated against the dataset's facts
(:class:`~observability.monitors.facts.DatasetFacts`) at one instant. It reads, never
writes, and returns plain :class:`Result` values, so results can be cached, shown,
recorded and turned into metrics alike.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from etl_core.contracts import Contract

if TYPE_CHECKING:
    from observability.monitors.facts import DatasetFacts

__all__ = [
    "LEVELS",
    "Clock",
    "FixedClock",
    "Level",
    "Monitor",
    "Result",
    "SystemClock",
    "human_duration",
    "severity",
    "worst",
]

Level = Literal["ok", "warn", "critical", "unknown"]
LEVELS: tuple[Level, ...] = ("unknown", "ok", "warn", "critical")
"""The levels from the least to the most severe; ``unknown`` means never measured, so
anything measured outweighs it."""


def severity(level: Level) -> int:
    """The metric value of a level: -1 unknown, 0 ok, 1 warn, 2 critical."""
    return {"unknown": -1, "ok": 0, "warn": 1, "critical": 2}[level]


def worst(levels: Iterable[Level]) -> Level:
    """The most severe of ``levels``; ``unknown`` only when nothing was measured; none: ``ok``."""
    return max(levels, key=LEVELS.index, default="ok")


class Clock(Protocol):
    """Where monitors get the time: injected, so tests drive it."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...


class SystemClock:
    """The real clock (UTC)."""

    def now(self) -> datetime:
        """The current time in UTC."""
        return datetime.now(UTC)


class FixedClock:
    """A clock stopped at one instant: ``check --at`` replays a past moment."""

    def __init__(self, at: datetime) -> None:
        self.at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)

    def now(self) -> datetime:
        """The instant, timezone-aware (UTC when it was given without an offset)."""
        return self.at


@dataclass(frozen=True)
class Result:
    """One monitor's verdict on one subject of a dataset.

    Attributes:
        dataset: The dataset.
        monitor: The monitor kind (``age``, ``arrival``, ``volume``).
        subject: What was judged: a zone (``landing``), a partition date (``2026-11-30``).
        level: ``ok``, ``warn``, ``critical`` or ``unknown`` (never measured).
        state: The monitor's own word for it (``fresh``, ``overdue``, ``on_time``, ``missing``…).
        observed: What was seen, in words (``3h 12m old``).
        threshold: What it was judged against, in words (``warn 26h, critical 50h``).
        why: One sentence an operator can act on.
        value: The observed number behind ``observed`` (seconds, rows), for metrics.
        detail: Further plain facts (keys, due times, quarantine reasons).
    """

    dataset: str
    monitor: str
    subject: str
    level: Level
    state: str
    observed: str
    threshold: str
    why: str
    value: float | None = None
    detail: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON data."""
        return {
            "dataset": self.dataset,
            "monitor": self.monitor,
            "subject": self.subject,
            "level": self.level,
            "state": self.state,
            "observed": self.observed,
            "threshold": self.threshold,
            "why": self.why,
            "value": self.value,
            "detail": dict(self.detail),
        }


class Monitor(abc.ABC):
    """One kind of check on a dataset, configured by its contract."""

    kind: ClassVar[str]
    """The monitor's name in results, metrics and the ledger."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract

    @classmethod
    @abc.abstractmethod
    def from_contract(cls, contract: Contract) -> Monitor | None:
        """The monitor the contract asks for, or ``None`` when it asks for none of this kind."""

    @abc.abstractmethod
    def evaluate(self, facts: DatasetFacts, now: datetime) -> list[Result]:
        """Judge the dataset at ``now`` from ``facts`` (read-only).

        Raises:
            StorageError: the store could not be read (the evaluation failed, not the data).
        """

    def result(self, subject: str, level: Level, state: str, **fields: Any) -> Result:
        """A result of this monitor about ``subject`` of its dataset."""
        return Result(self.contract.dataset, self.kind, subject, level, state, **fields)


def human_duration(delta: timedelta) -> str:
    """``delta`` for people, to the minute: ``2d 3h``, ``3h 12m``, ``45m``, ``0m``."""
    minutes = int(abs(delta).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    if hours:
        parts.append(f"{hours}h")
    if minutes and not days:
        parts.append(f"{minutes}m")
    text = " ".join(parts) or "0m"
    return f"-{text}" if delta < timedelta(0) else text
