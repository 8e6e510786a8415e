"""Freshness monitors: one interface (:class:`Monitor`), one module per kind.

- :mod:`~observability.monitors.age`: the newest object's age per zone, schedule-aware;
- :mod:`~observability.monitors.arrival`: each due date's landing file, on time or not;
- :mod:`~observability.monitors.volume`: rows per partition against a weekday baseline.

A new kind subclasses :class:`Monitor` in its own module and joins :data:`MONITOR_KINDS`;
the shared contract test (``tests/integration/test_monitor_contract.py``) then holds it to the
interface.
"""

from observability.monitors.age import (
    AWAITING,
    EMPTIED,
    EMPTY,
    FUTURE,
    NEVER_REACHED,
    UNJUDGED,
    UNMEASURED,
    AgeMonitor,
    expected_zones,
    last_seen,
)
from observability.monitors.arrival import ARRIVAL_STATES, ArrivalMonitor
from observability.monitors.base import (
    LEVELS,
    Clock,
    FixedClock,
    Level,
    Monitor,
    Result,
    SystemClock,
    human_duration,
    severity,
    worst,
)
from observability.monitors.facts import (
    CLOCK_SKEW,
    WATCHED_ZONES,
    DatasetFacts,
    LandingFiles,
    Manifests,
    horizon,
)
from observability.monitors.schedule import Schedule, cron_problem, shortest_period
from observability.monitors.volume import UNMEASURED as VOLUME_UNMEASURED
from observability.monitors.volume import VolumeMonitor

MONITOR_KINDS: tuple[type[Monitor], ...] = (AgeMonitor, ArrivalMonitor, VolumeMonitor)
"""Every monitor kind, in the order results are shown."""

UNMEASURED_STATES: dict[str, frozenset[str]] = {"age": UNMEASURED, "volume": VOLUME_UNMEASURED}
"""Per monitor kind, the ``unknown`` states of a condition no longer measured: an open alert
on it resolves, saying why (another ``unknown``, nothing learnt, leaves it as it is)."""

__all__ = [
    "ARRIVAL_STATES",
    "AWAITING",
    "CLOCK_SKEW",
    "EMPTIED",
    "EMPTY",
    "FUTURE",
    "LEVELS",
    "MONITOR_KINDS",
    "NEVER_REACHED",
    "UNJUDGED",
    "UNMEASURED",
    "UNMEASURED_STATES",
    "WATCHED_ZONES",
    "AgeMonitor",
    "ArrivalMonitor",
    "Clock",
    "DatasetFacts",
    "FixedClock",
    "LandingFiles",
    "Level",
    "Manifests",
    "Monitor",
    "Result",
    "Schedule",
    "SystemClock",
    "VolumeMonitor",
    "cron_problem",
    "expected_zones",
    "horizon",
    "human_duration",
    "last_seen",
    "severity",
    "shortest_period",
    "worst",
]
