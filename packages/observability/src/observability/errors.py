"""Errors of the observability runtime, rooted in :class:`etl_core.errors.EtlError`.

The database errors are the platform's (:mod:`etl_core.errors`), derived into this
runtime's tree: ``observability.db`` raises the database door's failures as them.
"""

from __future__ import annotations

from etl_core import errors
from etl_core.errors import ConfigError, EtlError, MissingDependencyError

__all__ = [
    "DatabaseNotConfiguredError",
    "DatabaseNotReadyError",
    "DatabaseRefusedError",
    "DatabaseUnavailableError",
    "MetricsFileError",
    "ObservabilityError",
    "OutputFileError",
    "SchemaNotInstalledError",
    "ServeProbeError",
    "StatusPageError",
]


class ObservabilityError(EtlError):
    """Root of every error the observability runtime raises on purpose."""


class SchemaNotInstalledError(ObservabilityError, MissingDependencyError):
    """A database-backed feature was used without the ``schema`` extra installed."""

    def __init__(self, feature: str) -> None:
        MissingDependencyError.__init__(self, feature, package="etl-observability", extra="schema")


class DatabaseNotConfiguredError(ObservabilityError, errors.DatabaseNotConfiguredError):
    """A database-backed feature (``database``) was used without a database URL."""


class DatabaseNotReadyError(ObservabilityError, errors.DatabaseNotReadyError):
    """The configured database is not migrated, or its URL is bad (exit code 2)."""


class DatabaseUnavailableError(ObservabilityError, errors.DatabaseUnavailableError):
    """The database could not be reached for a health signal: try again later."""


class DatabaseRefusedError(ObservabilityError, errors.DatabaseRefusedError):
    """The database refused a ledger query."""


class OutputFileError(ObservabilityError, ConfigError):
    """A file a command was asked to write could not be written there: a bad argument, so
    exit code 2, never the 1 that means late data.

    Attributes:
        path: The file that was to be written.
    """

    what = "output file"

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        ConfigError.__init__(self, f"{self.what} {path} cannot be written: {reason}")


class StatusPageError(OutputFileError):
    """The static status page (``check --html``) could not be written."""

    what = "status page"


class MetricsFileError(OutputFileError):
    """The Prometheus text (``--metrics-file``) could not be written."""

    what = "metrics file"


class ServeProbeError(ObservabilityError):
    """``serve-ping`` found the status service not healthy: nothing answered at the address
    the settings give, or it answered other than ``200`` (the message says which, one line)."""
