"""Errors of the observability runtime, rooted in :class:`etl_core.errors.EtlError`."""

from __future__ import annotations

from etl_core.errors import ConfigError, EtlError, FieldError, MissingDependencyError

__all__ = ["DatabaseNotConfiguredError", "ObservabilityError", "SchemaNotInstalledError"]


class ObservabilityError(EtlError):
    """Root of every error the observability runtime raises on purpose."""


class SchemaNotInstalledError(ObservabilityError, MissingDependencyError):
    """A database-backed feature was used without the ``schema`` extra installed."""

    def __init__(self, feature: str) -> None:
        MissingDependencyError.__init__(self, feature, package="etl-observability", extra="schema")


class DatabaseNotConfiguredError(ObservabilityError, ConfigError):
    """A database-backed feature was used without a database URL."""

    def __init__(self, feature: str) -> None:
        self.feature = feature
        ConfigError.__init__(
            self,
            f"{feature} needs a database: set DATABASE_URL (or pass --database-url), "
            "for example postgresql://user@host/db or sqlite:///path/to/file.sqlite3",
            [FieldError("DATABASE_URL", "not set", "environment")],
        )
