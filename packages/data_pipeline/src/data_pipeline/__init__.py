"""data_pipeline: the transforms and ingestion runtime of the ETL platform."""

from importlib.metadata import PackageNotFoundError, version

from data_pipeline.errors import (
    DatabaseNotConfiguredError,
    DataPipelineError,
    SchemaNotInstalledError,
)

try:
    __version__ = version("etl-data-pipeline")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

__all__ = [
    "DataPipelineError",
    "DatabaseNotConfiguredError",
    "SchemaNotInstalledError",
    "__version__",
]
