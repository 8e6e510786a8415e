"""Capture metrics in a test without touching the process-wide registry.

``capture_metrics()`` installs a fresh :class:`~etl_core.metrics.Registry` as the
default for the duration of the block (process-wide, so work in thread pools is
captured too) and restores the previous one afterwards::

    with capture_metrics() as captured:
        process_file(...)
    assert captured.value("etl_fp_files_total", dataset="pos", outcome="ok") == 1
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from etl_core.metrics.prometheus import render_prometheus
from etl_core.metrics.registry import (
    LabelValue,
    MetricError,
    MetricKind,
    Registry,
    SeriesSnapshot,
    use_registry,
)

__all__ = ["CapturedMetrics", "capture_metrics"]


class CapturedMetrics:
    """Read access to the metrics recorded inside a :func:`capture_metrics` block."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def names(self) -> tuple[str, ...]:
        """The metric names recorded (or declared on this registry), sorted."""
        return self.registry.names()

    def value(self, name: str, **labels: LabelValue) -> float:
        """A counter or gauge series' value; zero for a known metric's untouched series.

        Raises:
            MetricError: the metric was never used, the labels are wrong, or it is a histogram.
        """
        return self.registry.value(name, **labels)

    def count(self, name: str, **labels: LabelValue) -> int:
        """How many observations a histogram series received.

        Raises:
            MetricError: unknown metric, wrong labels, or not a histogram.
        """
        return self._histogram(name, labels).count

    def sum(self, name: str, **labels: LabelValue) -> float:
        """The sum of a histogram series' observations."""
        return self._histogram(name, labels).sum

    def series(self, name: str, **labels: LabelValue) -> SeriesSnapshot:
        """The full snapshot of one series (value, count, cumulative buckets)."""
        return self.registry.series(name, **labels)

    def render(self) -> str:
        """Everything captured, in Prometheus text format (handy in assertion messages)."""
        return render_prometheus(self.registry)

    def _histogram(self, name: str, labels: dict[str, LabelValue]) -> SeriesSnapshot:
        kind = self.registry.kind(name)
        if kind is not MetricKind.HISTOGRAM:
            raise MetricError(f"metric {name!r} is a {kind}, not a histogram; use .value()")
        return self.registry.series(name, **labels)


@contextmanager
def capture_metrics() -> Iterator[CapturedMetrics]:
    """Run the block against an isolated registry installed as the default."""
    registry = Registry()
    with use_registry(registry):
        yield CapturedMetrics(registry)
