"""observability: the platform's monitoring runtime (inventory, health signals, freshness)."""

from typing import TYPE_CHECKING

from etl_core import package_version
from etl_core.exports import lazy_exports

if TYPE_CHECKING:
    from observability.errors import (
        DatabaseNotConfiguredError,
        ObservabilityError,
        SchemaNotInstalledError,
    )
    from observability.evaluation import DatasetStatus, Evaluation, evaluate
    from observability.inventory import DatasetInventory, take_inventory
    from observability.monitors import MONITOR_KINDS, Monitor, Result

_EXPORTS = {
    "DatabaseNotConfiguredError": "observability.errors",
    "DatasetInventory": "observability.inventory",
    "DatasetStatus": "observability.evaluation",
    "evaluate": "observability.evaluation",
    "Evaluation": "observability.evaluation",
    "Monitor": "observability.monitors",
    "MONITOR_KINDS": "observability.monitors",
    "ObservabilityError": "observability.errors",
    "Result": "observability.monitors",
    "SchemaNotInstalledError": "observability.errors",
    "take_inventory": "observability.inventory",
}
"""Each re-exported name and its module, imported on first use (issue 16, start-up)."""


__getattr__, __dir__ = lazy_exports(
    __name__, _EXPORTS, {"__version__": lambda: package_version("etl-observability")}
)

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
