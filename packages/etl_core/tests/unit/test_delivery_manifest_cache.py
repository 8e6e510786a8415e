"""Delivery manifests read once per ETag, within a bound (``DeliveryManifests``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from etl_core.artifacts import DeliveryManifests, read_deliveries
from etl_core.layout import is_delivery_manifest
from etl_core.storage import ObjectStore, open_store
from etl_core.testing.deliveries import publish_delivery

DAY = date(2026, 11, 1)


def _counting(store: Any) -> list[str]:
    """The keys ``store`` reads from now on (``read_versioned`` and ``open_read``)."""
    reads: list[str] = []
    for name in ("read_versioned", "open_read"):
        method = getattr(store, name)

        def counted(key: str, *args: Any, _method: Any = method, **kwargs: Any) -> Any:
            reads.append(key)
            return _method(key, *args, **kwargs)

        setattr(store, name, counted)
    return reads


@contextmanager
def _three_deliveries(tmp_path: Path, files: int) -> Iterator[tuple[ObjectStore, list[str]]]:
    """A local store holding three ``orders`` deliveries of :data:`DAY` (``f<n>.csv``, or
    with ``files`` above one ``f<n>.<m>.csv``), and the keys it reads from then on."""
    (tmp_path / "lake").mkdir()
    with open_store(tmp_path / "lake") as store:
        for n in range(3):
            names = [f"f{n}.csv"] if files == 1 else [f"f{n}.{m}.csv" for m in range(files)]
            publish_delivery(store, "orders", DAY, dict.fromkeys(names, b"id\n1\n"))
        yield store, _counting(store)


def test_a_manifest_is_read_again_only_when_its_etag_changed(tmp_path: Path) -> None:
    with _three_deliveries(tmp_path, files=1) as (store, reads):
        cache = DeliveryManifests()
        first = read_deliveries(store, "orders", DAY, cache=cache)
        assert read_deliveries(store, "orders", DAY, cache=cache) == first
        assert len([k for k in reads if is_delivery_manifest(k)]) == 3
        publish_delivery(store, "orders", DAY, {"f0.csv": b"id\n1\n2\n"}, rows=2)
        again = read_deliveries(store, "orders", DAY, cache=cache)
        assert len([k for k in reads if is_delivery_manifest(k)]) == 4
        assert again == read_deliveries(store, "orders", DAY)


def test_the_cache_keeps_at_most_its_limit_forgetting_the_oldest(tmp_path: Path) -> None:
    with _three_deliveries(tmp_path, files=1) as (store, reads):
        cache = DeliveryManifests(limit=4)  # 2 manifests naming one file each
        read_deliveries(store, "orders", DAY, cache=cache)
        read_deliveries(store, "orders", DAY, cache=cache)
        # 3 manifests through a cache of 2, in listing order: each pass reads all 3 again
        assert len([k for k in reads if is_delivery_manifest(k)]) == 6
        assert len(cache._read) == 2


def test_the_bound_counts_the_files_manifests_name_not_only_the_manifests(
    tmp_path: Path,
) -> None:
    # A manifest of a zip names up to max_entries (10,000) files, ~4 MB parsed: a bound on
    # manifests alone let a backlog of such zips hold gigabytes.
    with _three_deliveries(tmp_path, files=5) as (store, reads):
        cache = DeliveryManifests(limit=12)  # room for 2 manifests naming 5 files each
        read_deliveries(store, "orders", DAY, cache=cache)
        assert len(cache._read) == 2
        read_deliveries(store, "orders", DAY, cache=cache)
        assert len([k for k in reads if is_delivery_manifest(k)]) == 6
