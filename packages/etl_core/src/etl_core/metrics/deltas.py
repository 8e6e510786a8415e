"""Turn cumulative registry snapshots into increments since the last export.

Push-style backends (StatsD, CloudWatch EMF) expect what happened *in this
interval*, while the registry keeps totals. :class:`DeltaTracker` remembers what
was exported last and hands back the difference; it only advances once the caller
says the export went out, so a failed write is retried with the counts intact.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence, Set
from dataclasses import replace

from etl_core.metrics.registry import MetricKind, MetricSnapshot, SeriesSnapshot

__all__ = ["DeltaTracker"]

_SeriesKey = tuple[str, tuple[tuple[str, str], ...]]
_Totals = tuple[float, int, tuple[int, ...]]


def _totals(series: SeriesSnapshot) -> _Totals:
    return series.value, series.count, tuple(n for _, n in series.buckets)


class DeltaTracker:
    """Remembers exported totals per series and computes increments against them.

    Gauges pass through unchanged (they are levels, not increments). A counter or
    histogram that went *down* (a registry swapped or recreated) is treated as a
    reset: its whole current value is the increment.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._exported: dict[_SeriesKey, _Totals] = {}

    def diff(
        self, snapshots: Sequence[MetricSnapshot], *, changed_only: bool = False
    ) -> tuple[MetricSnapshot, ...]:
        """The increments of ``snapshots`` since the last :meth:`advance`.

        ``changed_only``: leave out the counter and histogram series already exported that
        did not move since (a long-running process exporting after each unit would
        otherwise repeat a zero for every series it ever counted), and the metrics left
        with no series; gauges stay (a level is a data point each time).
        """
        with self._lock:
            diffs = tuple(self._diff_metric(metric) for metric in snapshots)
            if not changed_only:
                return diffs
            pairs = zip(snapshots, diffs, strict=True)
            kept = (self._moved(metric, diff) for metric, diff in pairs)
            return tuple(metric for metric in kept if metric.series)

    def _moved(self, metric: MetricSnapshot, diff: MetricSnapshot) -> MetricSnapshot:
        if metric.kind.is_set:
            return diff
        series = tuple(
            increment
            for increment in diff.series
            if (metric.name, increment.labels) not in self._exported
            or increment.value != 0
            or increment.count != 0
        )
        return replace(diff, series=series)

    def advance(
        self, snapshots: Sequence[MetricSnapshot], *, skip: Set[_SeriesKey] = frozenset()
    ) -> None:
        """Record ``snapshots`` as exported (call after a successful export), but the
        series of ``skip`` (``(name, labels)``: their export failed, the next one carries
        their increments again)."""
        with self._lock:
            for metric in snapshots:
                if metric.kind.is_set:
                    continue
                for series in metric.series:
                    key = (metric.name, series.labels)
                    if key not in skip:
                        self._exported[key] = _totals(series)

    def _diff_metric(self, metric: MetricSnapshot) -> MetricSnapshot:
        if metric.kind.is_set:
            return metric
        is_counter = metric.kind is MetricKind.COUNTER
        series = tuple(self._diff_series(metric.name, s, is_counter) for s in metric.series)
        return replace(metric, series=series)

    def _diff_series(self, name: str, series: SeriesSnapshot, is_counter: bool) -> SeriesSnapshot:
        previous = self._exported.get((name, series.labels))
        if previous is None:
            return series
        value, count, counts = previous
        went_down = series.value < value if is_counter else series.count < count
        if went_down:
            return series
        return SeriesSnapshot(
            labels=series.labels,
            value=series.value - value,
            count=series.count - count,
            buckets=tuple(
                (bound, n - before)
                for (bound, n), before in zip(series.buckets, counts, strict=True)
            ),
        )
