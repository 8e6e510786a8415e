"""data_pipeline: the transforms and ingestion runtime of the ETL platform.

Reads ``validated/`` partitions, transforms and enriches them with DuckDB into
``curated/`` Parquet, and loads curated partitions into the database.
"""

from typing import TYPE_CHECKING

from etl_core import package_version
from etl_core.exports import lazy_exports

if TYPE_CHECKING:
    from data_pipeline.errors import (
        BackfillConflictError,
        DatabaseNotConfiguredError,
        DataPipelineError,
        InputFileError,
        JoinKeyTypeError,
        MissingColumnError,
        MissingPartitionError,
        PartitionBusyError,
        PartitionError,
        ReferenceFileError,
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

_EXPORTS = {
    "BackfillConflictError": "data_pipeline.errors",
    "DatabaseNotConfiguredError": "data_pipeline.errors",
    "DataPipelineError": "data_pipeline.errors",
    "InputFileError": "data_pipeline.errors",
    "JoinKeyTypeError": "data_pipeline.errors",
    "load_curated_partition": "data_pipeline.load",
    "MissingColumnError": "data_pipeline.errors",
    "MissingPartitionError": "data_pipeline.errors",
    "PartitionBusyError": "data_pipeline.errors",
    "PartitionError": "data_pipeline.errors",
    "PipelineSettings": "data_pipeline.settings",
    "process_partition": "data_pipeline.pipeline",
    "ReferenceFileError": "data_pipeline.errors",
    "SchemaNotInstalledError": "data_pipeline.errors",
    "SupersededError": "data_pipeline.errors",
    "transform_partition": "data_pipeline.transform",
    "transform_problems": "data_pipeline.validate",
    "TransformSqlError": "data_pipeline.errors",
    "UnmatchedRowsError": "data_pipeline.errors",
}
"""Each re-exported name and its module, imported on first use (issue 16, start-up)."""


__getattr__, __dir__ = lazy_exports(
    __name__, _EXPORTS, {"__version__": lambda: package_version("etl-data-pipeline")}
)

__all__ = [
    "BackfillConflictError",
    "DataPipelineError",
    "DatabaseNotConfiguredError",
    "InputFileError",
    "JoinKeyTypeError",
    "MissingColumnError",
    "MissingPartitionError",
    "PartitionBusyError",
    "PartitionError",
    "PipelineSettings",
    "ReferenceFileError",
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
