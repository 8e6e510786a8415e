"""An input listed for a partition that is gone when it is read (the file lane withdrew
its delivery, a republish pruned a curated part, between the listing and the download) is
said as the pipeline's error naming the partition and the key, retryable: the next
attempt lists again and sees what is there now. A key the listing still names but the
store lacks is the partition's fault, never retried. A transform (``run``'s and a
backfill's units build through it) and a load both read their inputs this way."""

from __future__ import annotations

import pickle
from datetime import date
from typing import Any

import pytest

from data_pipeline import load, transform
from data_pipeline.errors import (
    InputGoneError,
    MissingPartitionError,
    PartitionError,
)
from data_pipeline.layout import read_manifest
from data_pipeline.load import load_curated_partition
from data_pipeline.settings import PipelineSettings
from data_pipeline.transform import transform_partition
from etl_core.contracts import load_contracts
from etl_core.errors import FatalError, ObjectNotFoundError, RetryableError
from etl_core.layout import (
    deliveries_prefix,
    delivery_manifest_key,
    manifest_key,
    quality_report_key,
    validated_key,
    validated_prefix,
)
from etl_core.retry import RetryPolicy
from etl_core.storage import ObjectStore
from etl_core.testing.deliveries import notice_withdrawal, publish_delivery

DAY = date(2026, 11, 1)
LATE = "landing/pos/pos_20261101_late.csv"
LATE_NAME = "pos_20261101_late.csv"


def late_delivery(store: ObjectStore, retail: Any) -> str:
    """A second delivery of the day; its data key."""
    publish_delivery(
        store, "pos", DAY, {LATE_NAME: retail.rows(DAY.isoformat(), 20).encode()}, landing=LATE
    )
    return validated_key("pos", DAY, LATE_NAME)


def withdraw_late(store: ObjectStore) -> None:
    """The file lane withdraws the late delivery (its notice, manifest and members)."""
    data = validated_key("pos", DAY, LATE_NAME)
    notice_withdrawal(store, "pos", DAY, landing=LATE, moved_to=[], data_keys=[data])
    store.delete(delivery_manifest_key("pos", DAY, LATE))
    store.delete(data)
    store.delete(quality_report_key(data))


def read_then(monkeypatch: pytest.MonkeyPatch, module: Any, read: str, meanwhile: Any) -> None:
    """``module.read`` (a read of the store, its first argument) runs, then ``meanwhile``
    happens to the store before its caller goes on: the transform lists its inputs
    (``input_objects``), the load reads the curated manifest (``read_manifest``)."""
    original = getattr(module, read)

    def read_then_change(store: ObjectStore, *args: Any) -> Any:
        found = original(store, *args)
        meanwhile(store)
        return found

    monkeypatch.setattr(module, read, read_then_change)


def test_a_validated_input_withdrawn_between_listing_and_download_is_named_and_retried(
    local_store: ObjectStore,
    settings: PipelineSettings,
    retail: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    contract = load_contracts(settings.config_dir).get("pos")
    gone = late_delivery(local_store, retail)
    read_then(monkeypatch, transform, "input_objects", withdraw_late)

    with pytest.raises(InputGoneError) as caught:
        transform_partition(local_store, contract, DAY, settings)
    monkeypatch.undo()

    error = caught.value
    said = str(error)
    assert isinstance(error, RetryableError)
    assert not isinstance(error, (FatalError, ObjectNotFoundError))
    assert RetryPolicy().is_retryable(error)
    assert (error.dataset, error.dt, error.key) == ("pos", DAY, gone)
    assert said.startswith(
        f"dataset 'pos', partition dt=2026-11-01: validated input {gone}, named by the "
        f"delivery manifests of {validated_prefix('pos', DAY)} when this attempt started, "
        "was gone when it was read"
    ), said
    assert pickle.loads(pickle.dumps(error)).key == gone
    assert read_manifest(local_store, "pos", DAY) is None  # nothing published
    assert not list(local_store.list("curated/"))

    again = transform_partition(local_store, contract, DAY, settings)  # the retry lists again
    manifest = read_manifest(local_store, "pos", DAY)
    assert manifest is not None
    assert list(manifest.inputs) == [validated_key("pos", DAY, "pos_2026-11-01.csv")]
    assert again.rows > 0


def test_a_validated_input_deleted_while_its_delivery_still_names_it_is_not_retried(
    local_store: ObjectStore,
    settings: PipelineSettings,
    retail: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    contract = load_contracts(settings.config_dir).get("pos")
    gone = late_delivery(local_store, retail)
    read_then(monkeypatch, transform, "input_objects", lambda store: store.delete(gone))

    with pytest.raises(PartitionError) as caught:
        transform_partition(local_store, contract, DAY, settings)

    assert isinstance(caught.value, FatalError)
    assert not isinstance(caught.value, InputGoneError)
    assert f"a delivery manifest names {gone}, which is not in the store" in str(caught.value)


def test_a_curated_part_republished_away_before_the_load_reads_it_is_named_and_retried(
    local_store: ObjectStore,
    settings: PipelineSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The load's manifest names a generation two republishes pruned (the replaced one is
    kept one publish): retryable, naming the part; the database is never reached (no
    database is configured here: a load that got as far would fail saying so)."""
    contract = load_contracts(settings.config_dir).get("pos")
    transform_partition(local_store, contract, DAY, settings)
    first = read_manifest(local_store, "pos", DAY)
    assert first is not None

    def republish_twice(store: ObjectStore) -> None:
        for _ in range(2):
            transform_partition(store, contract, DAY, settings)

    read_then(monkeypatch, load, "read_manifest", republish_twice)
    with pytest.raises(InputGoneError) as caught:
        load_curated_partition(local_store, contract, DAY)

    error = caught.value
    assert RetryPolicy().is_retryable(error)
    assert error.key in first.files
    assert str(error).startswith(
        f"dataset 'pos', partition dt=2026-11-01: curated part {error.key}, named by the "
        f"curated manifest {manifest_key('pos', DAY)} (generation {first.generation}) when "
        "this attempt started, was gone when it was read"
    ), str(error)


def test_a_curated_part_deleted_while_its_manifest_still_names_it_fails_the_load(
    local_store: ObjectStore,
    settings: PipelineSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    contract = load_contracts(settings.config_dir).get("pos")
    transform_partition(local_store, contract, DAY, settings)
    manifest = read_manifest(local_store, "pos", DAY)
    assert manifest is not None
    part = manifest.files[0]

    read_then(monkeypatch, load, "read_manifest", lambda store: store.delete(part))
    with pytest.raises(MissingPartitionError) as caught:
        load_curated_partition(local_store, contract, DAY)

    assert not RetryPolicy().is_retryable(caught.value)
    assert f"its curated manifest names {part}, which is not in the store" in str(caught.value)


def test_a_delivery_replaced_while_its_partition_is_listed_is_read_as_it_is_now(
    local_store: ObjectStore,
    settings: PipelineSettings,
    retail: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The file lane re-delivers a key with another file name between the reading of the
    day's delivery manifests and the listing of its objects (its new member and manifest
    written, then the replaced member removed, as it does): the old member is missing from
    the listing, yet no manifest names it any more. The day's inputs are read again, the
    new member found (was a `PartitionError` saying a manifest names a file not in the
    store, never retried: a backfill's day failed for good on a passing re-delivery)."""
    contract = load_contracts(settings.config_dir).get("pos")
    replaced = late_delivery(local_store, retail)
    renamed = "pos_20261101_late_v2.csv"
    listing = local_store.list
    redelivered: list[bool] = []

    def list_after_redelivery(prefix: str = "") -> Any:
        if prefix == validated_prefix("pos", DAY) and not redelivered:
            redelivered.append(True)
            publish_delivery(
                local_store,
                "pos",
                DAY,
                {renamed: retail.rows(DAY.isoformat(), 20).encode()},
                landing=LATE,
            )
            local_store.delete(replaced)
            local_store.delete(quality_report_key(replaced))
        return listing(prefix)

    monkeypatch.setattr(local_store, "list", list_after_redelivery)
    built = transform_partition(local_store, contract, DAY, settings)
    monkeypatch.undo()

    assert redelivered
    manifest = read_manifest(local_store, "pos", DAY)
    assert manifest is not None
    assert sorted(manifest.inputs) == sorted(
        [validated_key("pos", DAY, "pos_2026-11-01.csv"), validated_key("pos", DAY, renamed)]
    )
    assert built.rows > 0


def test_a_delivery_withdrawn_while_its_manifests_are_read_leaves_the_days_other_inputs(
    local_store: ObjectStore,
    settings: PipelineSettings,
    retail: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The file lane withdraws a delivery between the listing of the day's delivery
    manifests and the reading of its manifest: the day's inputs are read again and built
    from what is left (was the store's raw ObjectNotFoundError naming the manifest)."""
    contract = load_contracts(settings.config_dir).get("pos")
    late_delivery(local_store, retail)
    listing = local_store.list
    withdrawn: list[bool] = []

    def list_then_withdrawn(prefix: str = "") -> Any:
        found = list(listing(prefix))
        if prefix == deliveries_prefix("pos", DAY) and not withdrawn:
            withdrawn.append(True)
            withdraw_late(local_store)
        return iter(found)

    monkeypatch.setattr(local_store, "list", list_then_withdrawn)
    built = transform_partition(local_store, contract, DAY, settings)
    monkeypatch.undo()

    assert withdrawn
    manifest = read_manifest(local_store, "pos", DAY)
    assert manifest is not None
    assert list(manifest.inputs) == [validated_key("pos", DAY, "pos_2026-11-01.csv")]
    assert built.rows > 0
