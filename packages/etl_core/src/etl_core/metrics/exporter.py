"""The metric exporter extension point: one interface, the kinds a setting may name.

An exporter sends what a :class:`~etl_core.metrics.registry.Registry` holds somewhere a
monitoring system reads it: a Prometheus Pushgateway, CloudWatch (EMF lines on stderr,
stdout or a file), a StatsD or Datadog agent. Each kind is one module of
:mod:`etl_core.metrics`; the setting ``metrics_exporters`` names the kinds a run exports
through, and :data:`etl_core.metrics.choice.EXPORTERS` maps each name to its class.

This module imports no implementation, so the settings can name the kinds
(:data:`MetricExporterKind`) without loading an exporter a run does not use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal, Protocol, get_args, runtime_checkable

from etl_core.errors import RetryableError

if TYPE_CHECKING:
    from etl_core.metrics.registry import Registry

__all__ = [
    "EXPORTER_KINDS",
    "ExporterFactory",
    "ExporterSettings",
    "MetricExportError",
    "MetricExporter",
    "MetricExporterKind",
]

MetricExporterKind = Literal["pushgateway", "emf", "statsd"]
"""The exporters the setting ``metrics_exporters`` may name."""

EXPORTER_KINDS: tuple[str, ...] = get_args(MetricExporterKind)
""":data:`MetricExporterKind` as a tuple of names, in the order the docs list them."""


class ExporterSettings(Protocol):
    """What an exporter reads from a run's settings (``RuntimeSettings`` has every field)."""

    @property
    def pushgateway_url(self) -> str | None:
        """The Pushgateway (``http(s)://[user:password@]host:port``)."""

    @property
    def emf_namespace(self) -> str:
        """The CloudWatch namespace of EMF lines."""

    @property
    def emf_output(self) -> str:
        """``stderr`` (the default), ``stdout`` or a file that EMF lines are appended to."""

    @property
    def statsd_address(self) -> str:
        """The StatsD agent's ``host:port`` (UDP)."""

    @property
    def statsd_prefix(self) -> str:
        """Put before every StatsD name."""

    @property
    def statsd_tag_format(self) -> Literal["dogstatsd", "none"]:
        """Labels as DogStatsD tags, or as name suffixes for plain StatsD."""


class ExporterFactory(Protocol):
    """What :data:`~etl_core.metrics.choice.EXPORTERS` holds: an exporter class, built from
    a run's settings."""

    def from_settings(self, settings: ExporterSettings, job: str) -> MetricExporter:
        """The exporter ``settings`` configure for batch job ``job`` (the Pushgateway's
        group; the others ignore it).

        Raises:
            MetricError: a setting it cannot use.
        """


@runtime_checkable
class MetricExporter(Protocol):
    """Sends a registry's metrics to one place; a run builds one per configured kind.

    ``export`` may be called more than once (a long-running process exports
    periodically): push protocols send what changed since the previous call.
    """

    kind: ClassVar[str]
    """The name ``metrics_exporters`` gives this exporter."""

    def export(self, registry: Registry) -> None:
        """Send what ``registry`` holds.

        Raises:
            EtlError: the target cannot be reached or refused the metrics (never a bare
                ``OSError``): :class:`MetricExportError`, or the retryable and fatal
                errors of the Pushgateway.
        """

    def close(self) -> None:
        """Release what the exporter holds (a socket, a file); idempotent."""


class MetricExportError(RetryableError):
    """Metrics could not be sent to an exporter's target (a socket, a file, a stream).

    Attributes:
        kind: The exporter (``statsd``, ``emf``...).
        target: Where it sends (``127.0.0.1:8125``, ``stdout``), without credentials.
        reason: What went wrong.
    """

    def __init__(self, kind: str, target: str, reason: str) -> None:
        self.kind = kind
        self.target = target
        self.reason = reason
        super().__init__(f"{kind} exporter could not send metrics to {target}: {reason}")
