"""Freshness metrics that alert rules and dashboards need beyond the monitors' own gauges.

:func:`~observability.evaluation.record_monitor_metrics` exports each result's level, the
age per zone and the state of each judged date. This adds what a rule wants without
parsing subjects: the age monitor's level per dataset and zone, and per dataset how many
judged dates are in each arrival state (every state present, so ``> 0`` rules work and
the series do not churn with the calendar as the per-date gauge's do).
"""

from __future__ import annotations

from etl_core.metrics import Registry
from observability.evaluation import Evaluation
from observability.monitors import ARRIVAL_STATES, severity

__all__ = ["record_freshness_metrics"]


def record_freshness_metrics(evaluation: Evaluation, registry: Registry) -> None:
    """Set the freshness level per zone and the arrival counts per state of every dataset."""
    level = registry.gauge(
        "etl_observability_freshness_level",
        "Age monitor level per dataset and zone: -1 unknown, 0 ok, 1 warn, 2 critical.",
        ("dataset", "zone"),
    )
    arrivals = registry.gauge(
        "etl_observability_arrivals",
        "Judged partition dates of the lookback window per dataset and arrival state.",
        ("dataset", "state"),
    )
    for status in evaluation.datasets:
        counts = dict.fromkeys(ARRIVAL_STATES, 0)
        judged = False
        for result in status.results:
            if result.monitor == "age":
                level.labels(dataset=status.dataset, zone=result.subject).set(
                    severity(result.level)
                )
            elif result.monitor == "arrival" and result.state in counts:
                counts[result.state] += 1
                judged = True
        if judged:
            for state, count in counts.items():
                arrivals.labels(dataset=status.dataset, state=state).set(count)
