"""Which exporters a run sends its metrics through: the registry of kinds and the fan-out.

:data:`EXPORTERS` maps each name ``metrics_exporters`` may hold to its class;
:func:`configured_exporters` builds the ones a run's settings choose and
:func:`export_through` sends a registry through each of them, a failing one logged
(credentials masked) without stopping the others: metrics never fail a job.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from etl_core.errors import EtlError, UnknownKindError
from etl_core.metrics.emf import EmfExporter
from etl_core.metrics.exporter import ExporterFactory, ExporterSettings, MetricExporter
from etl_core.metrics.prometheus import PushgatewayExporter
from etl_core.metrics.registry import Registry
from etl_core.metrics.statsd import StatsdExporter
from etl_core.redaction import redact_text

__all__ = [
    "EXPORTERS",
    "chosen_exporters",
    "configured_exporters",
    "export_through",
    "exporter_class",
]

logger = logging.getLogger(__name__)

SETTING = "metrics_exporters"


EXPORTERS: dict[str, ExporterFactory] = {
    "pushgateway": PushgatewayExporter,
    "emf": EmfExporter,
    "statsd": StatsdExporter,
}
"""Each exporter kind and its class; the kinds are ``etl_core.metrics.exporter.EXPORTER_KINDS``."""


def exporter_class(kind: str, *, where: str = "the settings") -> ExporterFactory:
    """The class of exporter ``kind``.

    Raises:
        UnknownKindError: no exporter of that name, naming ``metrics_exporters``, the
            value and the kinds that exist.
    """
    try:
        return EXPORTERS[kind]
    except KeyError:
        raise UnknownKindError(SETTING, kind, list(EXPORTERS), where=where) from None


def chosen_exporters(settings: ExporterSettings, chosen: Sequence[str] | None) -> tuple[str, ...]:
    """The kinds a run exports through: ``chosen`` (the setting; ``[]`` in ``etl.toml``:
    none, each kind once), or when it is unset the Pushgateway if ``pushgateway_url`` is
    set (what every run did before the setting)."""
    if chosen is not None:
        return tuple(dict.fromkeys(chosen))
    return ("pushgateway",) if settings.pushgateway_url else ()


def configured_exporters(
    settings: ExporterSettings, kinds: Iterable[str], job: str
) -> list[MetricExporter]:
    """One exporter per kind of ``kinds``, configured from ``settings``, for job ``job``.

    Raises:
        UnknownKindError: a kind no exporter has.
        MetricError: a setting an exporter cannot use (the settings' checks refuse these
            at start-up already).
    """
    built: list[MetricExporter] = []
    for kind in kinds:
        built.append(exporter_class(kind).from_settings(settings, job))
    return built


def export_through(
    exporters: Iterable[MetricExporter], registry: Registry, *, close: bool = True
) -> list[str]:
    """Export ``registry`` through each exporter and close it; returns the kinds that failed.

    A failing exporter is logged as a warning (its message masked: no credential of a URL
    or a revealed secret), and the next one still runs: a job's outcome never depends on
    its metrics. ``close=False``: a process exporting again soon (after each unit, batch
    or cycle) keeps its socket and file open, not a new socket and a name lookup each time.
    """
    failed: list[str] = []
    for exporter in exporters:
        try:
            exporter.export(registry)
        except (EtlError, OSError, ValueError) as exc:
            failed.append(exporter.kind)
            logger.warning(
                "metrics not exported through %s: %s", exporter.kind, redact_text(str(exc))
            )
        finally:
            if close:
                _close(exporter)
    return failed


def _close(exporter: MetricExporter) -> None:
    try:
        exporter.close()
    except OSError as exc:
        logger.warning(
            "metrics exporter %s did not close: %s", exporter.kind, redact_text(str(exc))
        )
