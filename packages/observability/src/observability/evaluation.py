"""One evaluation: every monitor of every dataset at one instant, and what it adds up to.

:func:`evaluate` builds each contract's monitors (:data:`~observability.monitors.MONITOR_KINDS`),
reads the store once per dataset (:class:`~observability.monitors.DatasetFacts`) and returns
an :class:`Evaluation`: per dataset its results and worst level, overall the exit code of
``check`` (0 ok, 1 warn or critical, 3 nothing could be judged), the metrics, the JSON of
``--json`` and ``/api/status``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from etl_core.contracts import Contract
from etl_core.layout import CURATED, LANDING, VALIDATED
from etl_core.metrics import Registry
from etl_core.runtime import ExitCode
from etl_core.storage import ObjectStore
from etl_core.threads import ContextThreadPoolExecutor
from observability.monitors import (
    LEVELS,
    MONITOR_KINDS,
    UNJUDGED,
    ArrivalMonitor,
    Clock,
    DatasetFacts,
    Level,
    Manifests,
    Monitor,
    Result,
    horizon,
    severity,
    worst,
)

__all__ = [
    "NOTHING_JUDGED",
    "WORKERS",
    "DatasetStatus",
    "Evaluation",
    "evaluate",
    "evaluate_dataset",
    "first_judged_day",
    "monitors_of",
    "record_monitor_metrics",
]

WORKERS = 8
"""Datasets evaluated at once by default."""
NOTHING_JUDGED = ExitCode.PARTIAL
"""``check``'s exit code when every result is ``unknown`` (3, Nagios's UNKNOWN): nothing is
monitored (a ``source`` matching no file, no thresholds), which must not read as green."""


@dataclass(frozen=True)
class DatasetStatus:
    """One dataset's results and what they add up to.

    Attributes:
        dataset: The dataset.
        level: The worst level of its results.
        results: Every result, monitor by monitor.
        age_seconds: The age of its newest data (curated, else validated, else landing).
        latest_partition: Its newest partition date (curated, else validated, else landing).
    """

    dataset: str
    level: Level
    results: tuple[Result, ...]
    age_seconds: float | None
    latest_partition: date | None

    @property
    def message(self) -> str:
        """Why the dataset is at its level: the ``why`` of its worst results."""
        worst_ones = [r for r in self.results if r.level == self.level]
        if self.level == "ok" or not worst_ones:
            unjudged = [r.subject for r in self.results if r.state == UNJUDGED]
            if unjudged:  # not "every monitor": these ages are shown, never judged
                zones = ", ".join(unjudged)
                return f"every monitor is ok but the age of {zones}, which nothing judges"
            return "every monitor is ok"
        said = "; ".join(f"{r.monitor} {r.subject}: {r.why}" for r in worst_ones[:3])
        more = len(worst_ones) - 3
        return said + (f" (and {more} more)" if more > 0 else "")

    def with_results(self, results: Iterable[Result]) -> DatasetStatus:
        """The status with ``results`` instead (a zone judged again): its level and age
        follow them."""
        found = tuple(results)
        return replace(
            self, level=worst(r.level for r in found), results=found, age_seconds=_age_of(found)
        )

    def to_dict(self) -> dict[str, Any]:
        """The status as plain JSON data."""
        return {
            "dataset": self.dataset,
            "level": self.level,
            "message": self.message,
            "age_seconds": self.age_seconds,
            "latest_partition": self.latest_partition.isoformat()
            if self.latest_partition
            else None,
            "results": [result.to_dict() for result in self.results],
        }


@dataclass(frozen=True)
class Evaluation:
    """Every dataset's status at :attr:`evaluated_at`."""

    evaluated_at: datetime
    datasets: tuple[DatasetStatus, ...]

    @property
    def level(self) -> Level:
        """The worst level over every dataset."""
        return worst(status.level for status in self.datasets)

    @property
    def results(self) -> list[Result]:
        """Every result, dataset by dataset."""
        return [result for status in self.datasets for result in status.results]

    @property
    def exit_code(self) -> int:
        """``check``'s verdict: 1 when something is warn or critical; 3
        (:data:`NOTHING_JUDGED`) when nothing could be judged (every result ``unknown``);
        else 0, some results ``unknown`` included."""
        if self.level in ("warn", "critical"):
            return ExitCode.FAILED
        if self.level == "unknown" or not self.results:
            return NOTHING_JUDGED
        return ExitCode.OK

    def counts(self) -> dict[str, int]:
        """Datasets per level."""
        counts = dict.fromkeys(("ok", "warn", "critical", "unknown"), 0)
        for status in self.datasets:
            counts[status.level] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        """The evaluation as plain JSON data."""
        return {
            "evaluated_at": self.evaluated_at.isoformat(),
            "level": self.level,
            "counts": self.counts(),
            "datasets": [status.to_dict() for status in self.datasets],
        }


def evaluate(
    contracts: Iterable[Contract],
    store: ObjectStore,
    clock: Clock,
    *,
    workers: int = WORKERS,
    manifests: Manifests | None = None,
    replay: bool = False,
) -> Evaluation:
    """Evaluate every monitor of every contract at ``clock.now()``.

    Datasets are evaluated by up to ``workers`` threads (their listings wait on the store,
    not the CPU); the results keep the contracts' order. With ``manifests`` (the storage
    index of ``serve``), validated and curated partitions come from it, not from listings.
    A ``replay`` (``check --at``) leaves out the objects stored after the instant.

    Raises:
        StorageError: the store could not be read.
    """
    now = clock.now()
    chosen = list(contracts)
    with ContextThreadPoolExecutor(max(1, min(workers, len(chosen)))) as pool:
        statuses = pool.map(
            lambda contract: evaluate_dataset(
                contract, store, now, manifests=manifests, replay=replay
            ),
            chosen,
        )
        return Evaluation(now, tuple(statuses))


def evaluate_dataset(
    contract: Contract,
    store: ObjectStore,
    now: datetime,
    *,
    manifests: Manifests | None = None,
    replay: bool = False,
) -> DatasetStatus:
    """Evaluate one dataset's monitors at ``now`` (published partitions from ``manifests``
    when given). Objects dated after :func:`~observability.monitors.horizon` are
    future-dated; a ``replay`` leaves out those stored after ``now``: they did not exist
    then."""
    monitors = monitors_of(contract)
    since = _first_day(monitors, contract, now)
    facts = DatasetFacts(
        store,
        contract,
        since=since,
        manifests=manifests,
        horizon=horizon(now),
        as_of=now if replay else None,
    )
    results = tuple(result for monitor in monitors for result in monitor.evaluate(facts, now))
    latest = next(
        (
            max(facts.zone(zone).days)
            for zone in (CURATED, VALIDATED, LANDING)
            if facts.zone(zone).days
        ),
        None,
    )
    return DatasetStatus(
        contract.dataset, worst(r.level for r in results), results, _age_of(results), latest
    )


def _age_of(results: Iterable[Result]) -> float | None:
    """The age of a dataset's newest data: its curated age, else validated, else landing."""
    found = {r.subject: r.value for r in results if r.monitor == "age" and r.value is not None}
    return next((found[zone] for zone in (CURATED, VALIDATED, LANDING) if zone in found), None)


def monitors_of(contract: Contract) -> list[Monitor]:
    """The monitors ``contract`` asks for, in :data:`MONITOR_KINDS`' order."""
    return [
        monitor for kind in MONITOR_KINDS if (monitor := kind.from_contract(contract)) is not None
    ]


def first_judged_day(contract: Contract, now: datetime) -> date:
    """The earliest partition date ``contract``'s monitors judge at ``now`` (its landing
    files from then on are kept as arrivals)."""
    return _first_day(monitors_of(contract), contract, now)


def _first_day(monitors: list[Monitor], contract: Contract, now: datetime) -> date:
    for monitor in monitors:
        if isinstance(monitor, ArrivalMonitor):
            return monitor.first_day(now)
    return (now - timedelta(days=contract.freshness.lookback_days)).date()


_LEVEL_VALUES = ", ".join(f"{severity(level)} {level}" for level in LEVELS)
"""The level gauges' legend, from :func:`severity`: ``-1 unknown, 0 ok, 1 warn, 2 critical``."""


def record_monitor_metrics(evaluation: Evaluation, registry: Registry) -> None:
    """Set the monitors' gauges in ``registry`` (see the README's metrics table)."""
    level = registry.gauge(
        "etl_observability_monitor_level",
        f"Monitor level per dataset, monitor and subject: {_LEVEL_VALUES}.",
        ("dataset", "monitor", "subject"),
    )
    dataset_level = registry.gauge(
        "etl_observability_dataset_level",
        f"Worst monitor level per dataset: {_LEVEL_VALUES}.",
        ("dataset",),
    )
    age = registry.gauge(
        "etl_observability_freshness_age_seconds",
        "Age of the newest object per dataset and zone (landing files, validated "
        "deliveries, curated partitions).",
        ("dataset", "zone"),
    )
    arrival = registry.gauge(
        "etl_observability_arrival_state",
        "1 for the arrival state of each judged partition date of a dataset.",
        ("dataset", "dt", "state"),
    )
    rows = registry.gauge(
        "etl_observability_partition_rows",
        "Rows of the newest partition of each dataset (the volume monitor's observation).",
        ("dataset",),
    )
    registry.gauge(
        "etl_observability_evaluation_timestamp_seconds",
        "When the monitors were last evaluated (Unix time).",
    ).set(evaluation.evaluated_at.timestamp())
    for status in evaluation.datasets:
        dataset_level.labels(dataset=status.dataset).set(severity(status.level))
        for result in status.results:
            level.labels(
                dataset=result.dataset, monitor=result.monitor, subject=result.subject
            ).set(severity(result.level))
            if result.monitor == "age" and result.value is not None:
                age.labels(dataset=result.dataset, zone=result.subject).set(result.value)
            elif result.monitor == "arrival":
                arrival.labels(dataset=result.dataset, dt=result.subject, state=result.state).set(1)
            elif result.monitor == "volume" and result.value is not None:
                rows.labels(dataset=result.dataset).set(result.value)
