"""observability: the platform's monitoring runtime (inventory, health signals, freshness)."""

from typing import Any

from etl_core import package_version
from observability.errors import (
    DatabaseNotConfiguredError,
    ObservabilityError,
    SchemaNotInstalledError,
)
from observability.evaluation import DatasetStatus, Evaluation, evaluate
from observability.inventory import DatasetInventory, take_inventory
from observability.monitors import MONITOR_KINDS, Monitor, Result


def __getattr__(name: str) -> Any:
    if name == "__version__":  # looked up on demand: importlib.metadata is slow to import
        return package_version("etl-observability")
    raise AttributeError(f"module 'observability' has no attribute {name!r}")


__all__ = [
    "MONITOR_KINDS",
    "DatabaseNotConfiguredError",
    "DatasetInventory",
    "DatasetStatus",
    "Evaluation",
    "Monitor",
    "ObservabilityError",
    "Result",
    "SchemaNotInstalledError",
    "__version__",
    "evaluate",
    "take_inventory",
]
