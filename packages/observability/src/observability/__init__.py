"""observability: the platform's monitoring runtime (storage inventory, health signals)."""

from importlib.metadata import PackageNotFoundError, version

from observability.errors import (
    DatabaseNotConfiguredError,
    ObservabilityError,
    SchemaNotInstalledError,
)
from observability.inventory import DatasetInventory, take_inventory

try:
    __version__ = version("etl-observability")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

__all__ = [
    "DatabaseNotConfiguredError",
    "DatasetInventory",
    "ObservabilityError",
    "SchemaNotInstalledError",
    "__version__",
    "take_inventory",
]
