"""Volume: the rows of the newest partition against a rolling same-weekday baseline.

Row counts come from the curated manifests (the partition's published rows) or, before a
dataset has curated partitions, from its published validated deliveries (valid rows).
The baseline is the median of the same weekday in the ``weeks`` previous weeks: Mondays
are compared with Mondays, so a weekly rhythm is no anomaly. A partition that far from
it, as a share of it (``warn_deviation``, ``critical_deviation``), is flagged either way.

Without a partition (``no_data``) or without enough of a baseline for the newest one
(``no_baseline``) the volume is not measured (:data:`UNMEASURED`, level ``unknown``): an
open volume alert, about a partition no longer the newest or no longer there, resolves
saying why (:mod:`observability.alerts.lifecycle`); a dead feed is the age monitor's to tell.
"""

from __future__ import annotations

import statistics
from datetime import date, datetime, timedelta

from etl_core.contracts import Contract
from etl_core.errors import ArtifactError
from observability.monitors.base import Level, Monitor, Result
from observability.monitors.facts import DatasetFacts

__all__ = ["NO_BASELINE", "NO_DATA", "UNMEASURED", "VolumeMonitor"]

NO_DATA = "no_data"
"""The state of a dataset with no validated or curated partition (level ``unknown``)."""
NO_BASELINE = "no_baseline"
"""The state of a newest partition with too few earlier same weekdays to judge (``unknown``)."""
UNMEASURED = frozenset({NO_DATA, NO_BASELINE})
"""The states of a volume no longer measured: an open volume alert resolves, saying why."""


class VolumeMonitor(Monitor):
    """Rows of the newest partition against the median of the same weekday before."""

    kind = "volume"

    def __init__(self, contract: Contract) -> None:
        super().__init__(contract)
        self.baseline = contract.freshness.volume

    @classmethod
    def from_contract(cls, contract: Contract) -> VolumeMonitor:
        """Every dataset's volume is watched, with the defaults when the contract says nothing."""
        return cls(contract)

    def evaluate(self, facts: DatasetFacts, now: datetime) -> list[Result]:
        """One result: the newest partition of the volume zone."""
        zone = facts.volume_zone
        days = facts.zone(zone).days
        threshold = (
            f"median of the same weekday in {self.baseline.weeks} weeks; warn ±"
            f"{self.baseline.warn_deviation}, critical ±{self.baseline.critical_deviation}"
        )
        if not days:
            return [
                self.result(
                    "latest",
                    "unknown",
                    NO_DATA,
                    observed="no partition yet",
                    threshold=threshold,
                    why=(
                        f"{self.contract.dataset} has no validated or curated partition "
                        "(none came yet, or every one was expired since)"
                    ),
                )
            ]
        latest = max(days)
        try:
            return [self._judge(facts, latest, zone, threshold)]
        except ArtifactError as exc:
            why = f"the row counts cannot be read: {exc}"
            return [
                self.result(
                    latest.isoformat(),
                    "warn",
                    "unreadable",
                    observed="unreadable",
                    threshold=threshold,
                    why=why,
                )
            ]

    def _recent(self, facts: DatasetFacts, latest: date) -> str:
        """Rows of each partition from ``lookback_days`` before ``latest`` on (the status
        page's sparkline, the arrival monitor's window), oldest first:
        ``2026-11-01=1000, 2026-11-02=980``."""
        first = latest - timedelta(days=self.contract.freshness.lookback_days)
        days = sorted(day for day in facts.zone(facts.volume_zone).days if day >= first)
        return ", ".join(f"{day.isoformat()}={facts.rows(day) or 0}" for day in days)

    def _judge(self, facts: DatasetFacts, latest: date, zone: str, threshold: str) -> Result:
        rows = facts.rows(latest) or 0
        history = [
            count
            for week in range(1, self.baseline.weeks + 1)
            if (count := facts.rows(latest - timedelta(weeks=week))) is not None
        ]
        weekday = f"{latest:%A}s"
        observed = f"{rows:,} rows on {latest.isoformat()} ({zone})"
        detail = {
            "zone": zone,
            "history": ", ".join(str(count) for count in history),
            "recent": self._recent(facts, latest),
        }
        subject = latest.isoformat()
        if len(history) < self.baseline.min_history:
            why = (
                f"only {len(history)} earlier {weekday} of {self.baseline.weeks} weeks have "
                f"rows; {self.baseline.min_history} are needed for a baseline"
            )
            return self.result(
                subject,
                "unknown",
                NO_BASELINE,
                observed=observed,
                threshold=threshold,
                why=why,
                value=float(rows),
                detail=detail,
            )
        median = statistics.median(history)
        deviation = abs(rows - median) / median if median else (0.0 if rows == 0 else 1e9)
        level: Level = "ok"
        if deviation >= self.baseline.critical_deviation.fraction:
            level = "critical"
        elif deviation >= self.baseline.warn_deviation.fraction:
            level = "warn"
        direction = "above" if rows > median else "below"
        if level == "ok":
            why = f"within the usual volume of {weekday}"
            state = "normal"
        else:
            share = "far" if deviation >= 1e9 else f"{deviation:.0%}"
            why = f"{rows:,} rows is {share} {direction} the median of {median:,.0f} for {weekday}"
            state = "anomaly"
        detail["baseline"] = f"{median:g}"
        return self.result(
            subject,
            level,
            state,
            observed=observed,
            threshold=f"baseline {median:,.0f}; {threshold}",
            why=why,
            value=float(rows),
            detail=detail,
        )
