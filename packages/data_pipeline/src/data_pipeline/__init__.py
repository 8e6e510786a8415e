"""data_pipeline: the transforms and ingestion runtime of the ETL platform.

Reads ``validated/`` partitions, transforms and enriches them with DuckDB into
``curated/`` Parquet, and loads curated partitions into the database.
"""

from typing import Any

from data_pipeline.errors import (
    BackfillConflictError,
    DatabaseNotConfiguredError,
    DataPipelineError,
    JoinKeyTypeError,
    MissingColumnError,
    MissingPartitionError,
    PartitionBusyError,
    PartitionError,
    SchemaNotInstalledError,
    SupersededError,
    TransformSqlError,
    UnmatchedRowsError,
)
from data_pipeline.load import load_curated_partition
from data_pipeline.pipeline import process_partition
from data_pipeline.settings import PipelineSettings
from data_pipeline.transform import transform_partition
from data_pipeline.validate import transform_problems
from etl_core import package_version


def __getattr__(name: str) -> Any:
    if name == "__version__":  # looked up on demand: importlib.metadata is slow to import
        return package_version("etl-data-pipeline")
    raise AttributeError(f"module 'data_pipeline' has no attribute {name!r}")


__all__ = [
    "BackfillConflictError",
    "DataPipelineError",
    "DatabaseNotConfiguredError",
    "JoinKeyTypeError",
    "MissingColumnError",
    "MissingPartitionError",
    "PartitionBusyError",
    "PartitionError",
    "PipelineSettings",
    "SchemaNotInstalledError",
    "SupersededError",
    "TransformSqlError",
    "UnmatchedRowsError",
    "__version__",
    "load_curated_partition",
    "process_partition",
    "transform_partition",
    "transform_problems",
]
