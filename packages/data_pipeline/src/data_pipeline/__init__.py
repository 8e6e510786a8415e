"""data_pipeline: the transforms and ingestion runtime of the ETL platform.

Reads ``validated/`` partitions, transforms and enriches them with DuckDB into
``curated/`` Parquet, and loads curated partitions into the database.
"""

from importlib.metadata import PackageNotFoundError, version

from data_pipeline.contracts import DatasetContract, load_contract
from data_pipeline.errors import (
    BackfillConflictError,
    ContractError,
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

try:
    __version__ = version("etl-data-pipeline")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

__all__ = [
    "BackfillConflictError",
    "ContractError",
    "DataPipelineError",
    "DatabaseNotConfiguredError",
    "DatasetContract",
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
    "load_contract",
    "load_curated_partition",
    "process_partition",
    "transform_partition",
]
