"""Metrics: a thread-safe registry and its exporters.

Instruments (:class:`Counter`, :class:`Gauge`, :class:`Histogram`) live in a
:class:`Registry`; the module-level :func:`counter`, :func:`gauge` and
:func:`histogram` write to the current default registry. Exporters: Prometheus
text and Pushgateway (:mod:`.prometheus`), CloudWatch EMF (:mod:`.emf`) and StatsD
(:mod:`.statsd`). Names follow ``etl_<lane>_<what>_<unit>``.
"""

from etl_core.metrics.deltas import DeltaTracker
from etl_core.metrics.emf import (
    EMF_MAX_DIMENSIONS,
    EMF_MAX_METRICS_PER_DIRECTIVE,
    EmfExporter,
    render_emf,
)
from etl_core.metrics.prometheus import (
    PROMETHEUS_CONTENT_TYPE,
    delete_from_gateway,
    push_to_gateway,
    pushgateway_url,
    render_prometheus,
)
from etl_core.metrics.registry import (
    DEFAULT_BUCKETS,
    Counter,
    Gauge,
    Histogram,
    LabelValue,
    MetricError,
    MetricKind,
    MetricSnapshot,
    Registry,
    SeriesSnapshot,
    counter,
    default_registry,
    gauge,
    histogram,
    use_registry,
)
from etl_core.metrics.statsd import StatsdBatch, StatsdClient, StatsdExporter
from etl_core.metrics.timing import Timer, timed

__all__ = [
    "DEFAULT_BUCKETS",
    "EMF_MAX_DIMENSIONS",
    "EMF_MAX_METRICS_PER_DIRECTIVE",
    "PROMETHEUS_CONTENT_TYPE",
    "Counter",
    "DeltaTracker",
    "EmfExporter",
    "Gauge",
    "Histogram",
    "LabelValue",
    "MetricError",
    "MetricKind",
    "MetricSnapshot",
    "Registry",
    "SeriesSnapshot",
    "StatsdBatch",
    "StatsdClient",
    "StatsdExporter",
    "Timer",
    "counter",
    "default_registry",
    "delete_from_gateway",
    "gauge",
    "histogram",
    "push_to_gateway",
    "pushgateway_url",
    "render_emf",
    "render_prometheus",
    "timed",
    "use_registry",
]
