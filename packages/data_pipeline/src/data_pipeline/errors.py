"""Errors of the data_pipeline runtime, rooted in :class:`etl_core.errors.EtlError`."""

from __future__ import annotations

from datetime import date

from etl_core.errors import (
    ConfigError,
    EtlError,
    FatalError,
    FieldError,
    LeaseBusyError,
    MissingDependencyError,
)

__all__ = [
    "BackfillConflictError",
    "DataPipelineError",
    "DatabaseNotConfiguredError",
    "JoinKeyTypeError",
    "MissingColumnError",
    "MissingPartitionError",
    "PartitionBusyError",
    "PartitionError",
    "SchemaNotInstalledError",
    "SupersededError",
    "TransformSqlError",
    "UnmatchedRowsError",
]


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


class PartitionError(DataPipelineError, FatalError):
    """Processing one partition failed in a way another attempt cannot fix.

    The message names the dataset, the partition date and, when one is to blame,
    the field (column, join, SQL) so an operator knows where to look.
    """

    def __init__(self, dataset: str, dt: date, message: str, *, field: str | None = None) -> None:
        self.dataset = dataset
        self.dt = dt
        self.field = field
        where = f"dataset {dataset!r}, partition dt={dt.isoformat()}"
        if field:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")


class MissingPartitionError(PartitionError):
    """The partition has no input objects (validated files or curated manifest)."""


class MissingColumnError(PartitionError):
    """An input file lacks a column the contract names."""


class JoinKeyTypeError(PartitionError):
    """An enrichment join compares keys of incompatible types."""


class TransformSqlError(PartitionError):
    """The contract's transform SQL is invalid or fails on the partition's data."""


class UnmatchedRowsError(PartitionError):
    """Rows found no match in an enrichment join whose policy is ``fail``."""


class PartitionBusyError(DataPipelineError, LeaseBusyError):
    """Another writer holds the partition's lease; try again once it is released.

    A :class:`~etl_core.errors.LeaseBusyError` (retryable) with the lease's
    ``key``, ``holder`` and ``token``, and ``retry_after`` its remaining time.
    """


class SupersededError(DataPipelineError, FatalError):
    """A newer computation of the partition was published first; this one is discarded."""


class BackfillConflictError(DataPipelineError, ConfigError):
    """A backfill overlapping the requested one is still running, or a job cannot resume."""
