"""Errors of the data_pipeline runtime, rooted in :class:`etl_core.errors.EtlError`."""

from __future__ import annotations

from etl_core.errors import ConfigError, EtlError, FieldError, MissingDependencyError

__all__ = ["DataPipelineError", "DatabaseNotConfiguredError", "SchemaNotInstalledError"]


class DataPipelineError(EtlError):
    """Root of every error the data_pipeline runtime raises on purpose."""


class SchemaNotInstalledError(DataPipelineError, MissingDependencyError):
    """A database-backed feature was used without the ``schema`` extra installed."""

    def __init__(self, feature: str) -> None:
        MissingDependencyError.__init__(self, feature, package="etl-data-pipeline", extra="schema")


class DatabaseNotConfiguredError(DataPipelineError, ConfigError):
    """A database-backed feature was used without a database URL."""

    def __init__(self, feature: str) -> None:
        self.feature = feature
        ConfigError.__init__(
            self,
            f"{feature} needs a database: set DATABASE_URL (or pass --database-url), "
            "for example postgresql://user@host/db or sqlite:///path/to/file.sqlite3",
            [FieldError("DATABASE_URL", "not set", "environment")],
        )
