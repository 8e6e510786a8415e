"""Hostile and unaddressable landing keys: each gets an outcome once, under a safe name.

Keys a file system cannot hold (``..``, empty segments, a trailing ``/`` with
content) are tested on S3 (moto's server), the others on both stores.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from etl_core.layout import QUARANTINE_SUFFIX
from etl_core.metrics import Registry, use_registry
from etl_core.storage import LocalObjectStore
from etl_core.storage.keys import MAX_KEY_BYTES
from etl_core.testing import local_store_can_hold, plant_object
from etl_core.work import ThreadExecutor
from file_processing.errors import FileProcessingError
from file_processing.quarantine import read_record, release
from file_processing.scan import scan

from .test_cli_processing import cli

Orders = Callable[..., bytes]

HOSTILE = [
    ("landing/vendor/orders_20261101\x01.csv", "name.control_character"),
    ("landing/vendor/orders_20261101\n.csv", "name.control_character"),
    ("landing/vendor/orders_20261101_\u202evsc.exe", "name.spoofing"),
    ("landing/vendor/orders_2026\u200f1101.csv", "name.spoofing"),
    ("landing/vendor/orders\\20261101.csv", "name.invalid_key"),
    ("landing/vendor/../orders_20261101.csv", "name.path_traversal"),
    ("landing/vendor/./orders_20261101.csv", "name.path_traversal"),
    ("landing/vendor//orders_20261101.csv", "name.invalid_key"),
    ("landing//orders_20261101.csv", "name.invalid_key"),
    ("landing/vendor/orders_20261101.csv/", "name.invalid_key"),
]


def can_hold(lane: Any, key: str) -> bool:
    if isinstance(lane.store, LocalObjectStore):
        return local_store_can_hold(key)
    return "\n" not in key  # moto's server answers 404 to a PUT of such a key


def plant(lane: Any, key: str, data: bytes) -> None:
    if not can_hold(lane, key):
        pytest.skip("this store cannot hold this key; tested on the other")
    plant_object(lane.store, key, data)


@pytest.mark.parametrize(("key", "reason"), HOSTILE)
def test_a_hostile_key_is_quarantined_once_under_a_safe_name_keeping_the_original(
    lane: Any, orders: Orders, key: str, reason: str
) -> None:
    body = orders(5)
    plant(lane, key, body)

    with lane.processor() as processor:
        outcome = processor.process(key)
        again = processor.process(key)

    assert outcome.status == "quarantined"
    assert outcome.reason is not None
    assert outcome.reason["code"] == reason
    quarantined, record_key = outcome.outputs
    assert record_key == quarantined + QUARANTINE_SUFFIX
    name = quarantined.rsplit("/", 1)[1]
    assert name.isprintable()
    assert "~" in name
    assert "\\" not in name
    assert not any(ch in name for ch in "\u202e\u200f")  # never under its spoofed name
    assert lane.store.read_bytes(quarantined) == body
    record = read_record(lane.store, quarantined)
    assert record.source_key == key
    assert record.reason == reason
    assert "\u202e" not in record.message
    assert "\n" not in record.message
    assert again.status == "skipped"
    assert "already quarantined" in again.detail
    assert lane.keys("validated/") == []


def test_a_scan_gives_every_hostile_key_an_outcome_counts_it_and_never_retries(
    lane: Any, orders: Orders
) -> None:
    planted = [key for key, _ in HOSTILE if can_hold(lane, key)]
    for key in planted:
        plant_object(lane.store, key, orders(3))
    good = lane.deliver("orders_20261101.csv", orders(5))

    registry = Registry()
    with use_registry(registry), lane.processor() as processor:
        first = scan(processor, ThreadExecutor(2))
        second = scan(processor, ThreadExecutor(2))

    assert first.failures == []
    assert {o.key: o.status for o in first.outcomes} == {
        **dict.fromkeys(planted, "quarantined"),
        good: "validated",
    }
    assert sum(n for code, n in first.by_reason().items() if code.startswith("name.")) == len(
        planted
    )
    assert second.failures == []
    assert {o.status for o in second.outcomes} == {"skipped"}
    counted = sum(
        registry.value(
            "etl_file_processing_objects_total", dataset=dataset, outcome="quarantined", reason=code
        )
        or 0
        for code in {reason for _, reason in HOSTILE}
        for dataset in ("", "orders")
    )
    assert counted == len(planted)


def test_an_unmatched_key_too_long_to_quarantine_as_is_gets_a_shortened_name(
    lane: Any,
) -> None:
    folders = "/".join(["f" * 200] * 4)
    key = f"landing/vendor/{folders}/{'n' * 150}.csv"
    assert len(key.encode()) < MAX_KEY_BYTES
    if isinstance(lane.store, LocalObjectStore):
        pytest.skip("a 1,000-byte path exceeds the file system's limit; tested on S3")
    lane.store.write_bytes(key, b"a,b\n1,2\n")

    with lane.processor() as processor:
        outcome = processor.process(key)

    assert outcome.status == "quarantined"
    assert outcome.reason is not None
    assert outcome.reason["code"] == "contract.unmatched"
    quarantined = outcome.outputs[0]
    assert len((quarantined + QUARANTINE_SUFFIX).encode()) <= MAX_KEY_BYTES
    assert quarantined.rsplit("/", 1)[1].startswith("vendor_fff")
    assert read_record(lane.store, quarantined).source_key == key


@pytest.mark.parametrize(
    "key",
    ["landing/vendor/../orders_20261101.csv", "landing/vendor//x.csv", "landing/vendor/a\x01.csv"],
)
def test_process_given_an_unaddressable_key_is_a_usage_error_in_one_line(
    local_lane: Any, key: str
) -> None:
    done = cli(local_lane, "process", key)

    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    event = json.loads(line)["event"]
    assert "not a key the store can address" in event
    assert "name." in event


def test_releasing_a_hostile_key_is_refused_saying_to_rename_it(lane: Any, orders: Orders) -> None:
    key = "landing/vendor/orders_20261101\x01.csv"
    plant_object(lane.store, key, orders(3))
    with lane.processor() as processor:
        quarantined = processor.process(key).outputs[0]

        with pytest.raises(FileProcessingError, match="proper name"):
            release(lane.store, processor.ledger, quarantined, by="ops")


def test_scan_json_counts_hostile_keys_by_reason_and_a_rescan_leaves_them_alone(
    local_lane: Any, orders: Orders
) -> None:
    plant_object(local_lane.store, "landing/vendor/orders_20261101\x01.csv", orders(3))
    plant_object(local_lane.store, "landing/vendor/orders_20261102_\u202evsc.exe", orders(3))

    first = cli(local_lane, "scan", "--json")
    second = cli(local_lane, "scan", "--json")

    assert first.returncode == 3, first.stderr
    summary = json.loads(first.stdout)
    assert summary["counts"]["quarantined"] == 2
    assert summary["by_reason"] == {"name.control_character": 1, "name.spoofing": 1}
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["counts"] == {
        "validated": 0,
        "quarantined": 0,
        "skipped": 2,
        "settling": 0,
        "failed": 0,
    }
    assert "\u202e" not in first.stderr  # logs show the key escaped
