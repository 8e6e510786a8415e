"""Inventory totals per zone and dataset, and the gauges they become."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from etl_core.metrics import Registry
from etl_core.storage import ObjectInfo
from observability.inventory import DatasetInventory, dataset_of, record_inventory_metrics


def info(key: str, size: int, minutes_ago: int) -> ObjectInfo:
    when = datetime(2026, 11, 25, 12, 0, tzinfo=UTC) - timedelta(minutes=minutes_ago)
    return ObjectInfo(key=key, size=size, etag="0" * 32, last_modified=when)


def test_dataset_is_the_second_key_segment() -> None:
    assert dataset_of("landing", "landing/pos/pos_20261101.csv") == "pos"
    assert dataset_of("curated", "curated/sales/dt=2026-11-01/part-0.parquet") == "sales"


def test_api_pages_are_grouped_by_source() -> None:
    key = "raw/api/weather/daily/dt=2026-11-01/r1-0.jsonl.gz"
    assert dataset_of("raw", key) == "api/weather"


def test_objects_directly_under_a_zone_are_grouped_as_zone_root() -> None:
    assert dataset_of("landing", "landing/stray.csv") == "(zone root)"


def test_totals_count_objects_bytes_and_keep_the_newest() -> None:
    entry = DatasetInventory("landing", "pos")
    for item in (info("landing/pos/a", 10, 30), info("landing/pos/b", 5, 5)):
        entry.add(item)
    assert (entry.objects, entry.bytes) == (2, 15)
    assert entry.newest == info("x", 0, 5).last_modified


def test_gauges_carry_zone_and_dataset_labels() -> None:
    registry = Registry()
    entry = DatasetInventory("quarantine", "pos", objects=3, bytes=300)
    entry.newest = datetime(2026, 11, 25, 11, 0, tzinfo=UTC)
    record_inventory_metrics([entry], registry, now=datetime(2026, 11, 25, 12, 0, tzinfo=UTC))
    assert registry.value("etl_observability_objects", zone="quarantine", dataset="pos") == 3
    assert registry.value("etl_observability_stored_bytes", zone="quarantine", dataset="pos") == 300
    age = registry.value(
        "etl_observability_newest_object_age_seconds", zone="quarantine", dataset="pos"
    )
    assert age == 3600
