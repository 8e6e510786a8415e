"""Storage inventory: objects, bytes and newest object per zone and dataset.

The platform's zones (docs/architecture.md section 3, :mod:`etl_core.layout`) are top-level
prefixes of one store.
Walking them once gives the health signals an operator looks at first: is
anything arriving in ``landing/``, is ``quarantine/`` growing, how old is the
newest ``curated/`` partition. The walk streams the listing, so memory depends
on the number of datasets, not of objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from etl_core.layout import API, RAW, ZONES, zone_prefix
from etl_core.metrics import Registry
from etl_core.storage import ObjectInfo, ObjectStore

__all__ = ["ZONES", "DatasetInventory", "record_inventory_metrics", "take_inventory"]


@dataclass
class DatasetInventory:
    """Totals for one dataset (or source) inside one zone."""

    zone: str
    dataset: str
    objects: int = 0
    bytes: int = 0
    newest: datetime | None = field(default=None)

    def add(self, info: ObjectInfo) -> None:
        self.objects += 1
        self.bytes += info.size
        if self.newest is None or info.last_modified > self.newest:
            self.newest = info.last_modified


def dataset_of(zone: str, key: str) -> str:
    """The dataset (or source) an object belongs to, from its key's layout."""
    parts = key.split("/")
    if zone == RAW and len(parts) > 3 and parts[1] == API:
        return f"{API}/{parts[2]}"
    return parts[1] if len(parts) > 2 else "(zone root)"


def take_inventory(store: ObjectStore, zones: Iterable[str] = ZONES) -> list[DatasetInventory]:
    """Walk each zone of ``store`` once and total it per dataset, sorted by zone then dataset."""
    totals: dict[tuple[str, str], DatasetInventory] = {}
    for zone, info in _objects(store, zones):
        dataset = dataset_of(zone, info.key)
        entry = totals.get((zone, dataset))
        if entry is None:
            entry = totals[(zone, dataset)] = DatasetInventory(zone, dataset)
        entry.add(info)
    order = {zone: n for n, zone in enumerate(ZONES)}
    return sorted(totals.values(), key=lambda e: (order.get(e.zone, len(order)), e.zone, e.dataset))


def _objects(store: ObjectStore, zones: Iterable[str]) -> Iterator[tuple[str, ObjectInfo]]:
    for zone in zones:
        for info in store.list(zone_prefix(zone)):
            yield zone, info


def record_inventory_metrics(
    inventory: Iterable[DatasetInventory], registry: Registry, *, now: datetime
) -> None:
    """Set the inventory gauges (objects, bytes, newest object age) in ``registry``."""
    labels = ("zone", "dataset")
    objects = registry.gauge(
        "etl_observability_objects", "Objects stored per zone and dataset.", labels
    )
    stored = registry.gauge(
        "etl_observability_stored_bytes", "Bytes stored per zone and dataset.", labels
    )
    age = registry.gauge(
        "etl_observability_newest_object_age_seconds",
        "Age of the newest object per zone and dataset.",
        labels,
    )
    for entry in inventory:
        objects.labels(zone=entry.zone, dataset=entry.dataset).set(entry.objects)
        stored.labels(zone=entry.zone, dataset=entry.dataset).set(entry.bytes)
        if entry.newest is not None:
            seconds = max(0.0, (now - entry.newest).total_seconds())
            age.labels(zone=entry.zone, dataset=entry.dataset).set(seconds)
