"""observability: the platform's monitoring runtime (storage inventory, health signals)."""

from typing import Any

from etl_core import package_version
from observability.errors import (
    DatabaseNotConfiguredError,
    ObservabilityError,
    SchemaNotInstalledError,
)
from observability.inventory import DatasetInventory, take_inventory


def __getattr__(name: str) -> Any:
    if name == "__version__":  # looked up on demand: importlib.metadata is slow to import
        return package_version("etl-observability")
    raise AttributeError(f"module 'observability' has no attribute {name!r}")


__all__ = [
    "DatabaseNotConfiguredError",
    "DatasetInventory",
    "ObservabilityError",
    "SchemaNotInstalledError",
    "__version__",
    "take_inventory",
]
