"""Metrics: a thread-safe registry and its exporters.

Instruments (:class:`Counter`, :class:`Gauge`, :class:`Histogram`) live in a
:class:`Registry`; the module-level :func:`counter`, :func:`gauge` and
:func:`histogram` write to the current default registry. Exporters, one interface
(:class:`MetricExporter`, :mod:`.exporter`) and a module each: Prometheus text and
Pushgateway (:mod:`.prometheus`), CloudWatch EMF (:mod:`.emf`) and StatsD
(:mod:`.statsd`); :data:`EXPORTERS` (:mod:`.choice`) maps the names the setting
``metrics_exporters`` takes to them. Names follow ``etl_<lane>_<what>_<unit>``.
"""

from typing import TYPE_CHECKING

from etl_core.exports import lazy_exports

if TYPE_CHECKING:
    from etl_core.metrics.choice import EXPORTERS, configured_exporters, export_through
    from etl_core.metrics.deltas import DeltaTracker
    from etl_core.metrics.emf import (
        EMF_MAX_DIMENSIONS,
        EMF_MAX_METRICS_PER_DIRECTIVE,
        EmfExporter,
        render_emf,
    )
    from etl_core.metrics.exporter import (
        EXPORTER_KINDS,
        MetricExporter,
        MetricExporterKind,
        MetricExportError,
    )
    from etl_core.metrics.prometheus import (
        PROMETHEUS_CONTENT_TYPE,
        PushgatewayExporter,
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
        Summary,
        counter,
        default_registry,
        gauge,
        histogram,
        use_registry,
    )
    from etl_core.metrics.statsd import StatsdBatch, StatsdClient, StatsdExporter
    from etl_core.metrics.timing import Timer, timed

_EXPORTS = {
    "configured_exporters": "etl_core.metrics.choice",
    "export_through": "etl_core.metrics.choice",
    "EXPORTER_KINDS": "etl_core.metrics.exporter",
    "EXPORTERS": "etl_core.metrics.choice",
    "MetricExporter": "etl_core.metrics.exporter",
    "MetricExporterKind": "etl_core.metrics.exporter",
    "MetricExportError": "etl_core.metrics.exporter",
    "PushgatewayExporter": "etl_core.metrics.prometheus",
    "Counter": "etl_core.metrics.registry",
    "counter": "etl_core.metrics.registry",
    "DEFAULT_BUCKETS": "etl_core.metrics.registry",
    "default_registry": "etl_core.metrics.registry",
    "delete_from_gateway": "etl_core.metrics.prometheus",
    "DeltaTracker": "etl_core.metrics.deltas",
    "EMF_MAX_DIMENSIONS": "etl_core.metrics.emf",
    "EMF_MAX_METRICS_PER_DIRECTIVE": "etl_core.metrics.emf",
    "EmfExporter": "etl_core.metrics.emf",
    "Gauge": "etl_core.metrics.registry",
    "gauge": "etl_core.metrics.registry",
    "Histogram": "etl_core.metrics.registry",
    "histogram": "etl_core.metrics.registry",
    "LabelValue": "etl_core.metrics.registry",
    "MetricError": "etl_core.metrics.registry",
    "MetricKind": "etl_core.metrics.registry",
    "MetricSnapshot": "etl_core.metrics.registry",
    "PROMETHEUS_CONTENT_TYPE": "etl_core.metrics.prometheus",
    "push_to_gateway": "etl_core.metrics.prometheus",
    "pushgateway_url": "etl_core.metrics.prometheus",
    "Registry": "etl_core.metrics.registry",
    "render_emf": "etl_core.metrics.emf",
    "render_prometheus": "etl_core.metrics.prometheus",
    "SeriesSnapshot": "etl_core.metrics.registry",
    "StatsdBatch": "etl_core.metrics.statsd",
    "Summary": "etl_core.metrics.registry",
    "StatsdClient": "etl_core.metrics.statsd",
    "StatsdExporter": "etl_core.metrics.statsd",
    "timed": "etl_core.metrics.timing",
    "Timer": "etl_core.metrics.timing",
    "use_registry": "etl_core.metrics.registry",
}
"""Each re-exported name and its module, imported on first use: a lane that counts
loads the registry, not the exporters it does not push to (issue 16, start-up)."""

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, {})

__all__ = [
    "DEFAULT_BUCKETS",
    "EMF_MAX_DIMENSIONS",
    "EMF_MAX_METRICS_PER_DIRECTIVE",
    "EXPORTERS",
    "EXPORTER_KINDS",
    "PROMETHEUS_CONTENT_TYPE",
    "Counter",
    "DeltaTracker",
    "EmfExporter",
    "Gauge",
    "Histogram",
    "LabelValue",
    "MetricError",
    "MetricExportError",
    "MetricExporter",
    "MetricExporterKind",
    "MetricKind",
    "MetricSnapshot",
    "PushgatewayExporter",
    "Registry",
    "SeriesSnapshot",
    "StatsdBatch",
    "StatsdClient",
    "StatsdExporter",
    "Summary",
    "Timer",
    "configured_exporters",
    "counter",
    "default_registry",
    "delete_from_gateway",
    "export_through",
    "gauge",
    "histogram",
    "push_to_gateway",
    "pushgateway_url",
    "render_emf",
    "render_prometheus",
    "timed",
    "use_registry",
]
