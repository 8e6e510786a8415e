"""A range longer than :data:`PROBE_DAYS` is planned from one listing of the dataset's
validated partitions: it must plan what asking each day plans, past a page of 1000 keys
(S3 listings are paged), with days whose files were quarantined or never published."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from data_pipeline.backfill import PROBE_DAYS, plan_backfill
from data_pipeline.layout import input_objects
from etl_core.contracts import Contract
from etl_core.layout import validated_key
from etl_core.storage import ObjectStore
from etl_core.testing.deliveries import publish_delivery

from .conftest import listings

FIRST = date(2026, 9, 1)
DAYS = 40


def _per_day(store: ObjectStore, contract: Contract) -> list[tuple[date, int, int]]:
    plan = []
    for offset in range(DAYS):
        dt = FIRST + timedelta(days=offset)
        found = input_objects(store, contract.dataset, dt)
        if found:
            plan.append((dt, len(found), sum(o.size for o in found)))
    return plan


def test_a_long_plan_past_a_page_of_keys_plans_what_each_day_plans(
    store: ObjectStore, config_dir: Any
) -> None:
    from etl_core.contracts import load_contracts

    contract = load_contracts(config_dir).get("pos")
    assert DAYS > PROBE_DAYS
    for offset in range(0, DAYS, 3):  # 14 days x 40 files: 1,134 keys with reports
        dt = FIRST + timedelta(days=offset)
        files = {f"pos_{dt}_{n:02}.csv": b"x" * (offset + n + 1) for n in range(40)}
        publish_delivery(store, "pos", dt, files)
    quarantined = FIRST + timedelta(days=1)
    store.write_bytes(f"quarantine/pos/dt={quarantined}/pos_{quarantined}.csv", b"bad")
    unpublished = FIRST + timedelta(days=2)  # written, its manifest never was
    store.write_bytes(validated_key("pos", unpublished, f"pos_{unpublished}.csv"), b"half")
    assert sum(1 for _ in store.list("validated/pos/")) > 1000

    long = plan_backfill(store, contract, FIRST, FIRST + timedelta(days=DAYS - 1))
    assert [(p.dt, p.objects, p.bytes) for p in long] == _per_day(store, contract)
    assert len(long) == 14


def test_a_long_plan_of_a_delivery_every_day_lists_the_store_once(
    tmp_path: Any, config_dir: Any, monkeypatch: Any
) -> None:
    from etl_core.contracts import load_contracts
    from etl_core.storage import open_store

    contract = load_contracts(config_dir).get("pos")
    with open_store(str(tmp_path / "lake")) as store:
        for offset in range(DAYS):
            dt = FIRST + timedelta(days=offset)
            publish_delivery(store, "pos", dt, {f"pos_{dt}.csv": b"x"})
        listed = listings(store, monkeypatch)
        plan = plan_backfill(store, contract, FIRST, FIRST + timedelta(days=DAYS - 1))
    assert len(plan) == DAYS
    assert len(listed) <= 2, f"{len(listed)} listings, the first ones {listed[:3]}"


def test_a_delivery_the_long_listing_missed_a_file_of_is_planned_from_its_day(
    tmp_path: Any, config_dir: Any, monkeypatch: Any
) -> None:
    from etl_core.contracts import load_contracts
    from etl_core.storage import open_store

    contract = load_contracts(config_dir).get("pos")
    late = FIRST + timedelta(days=DAYS - 1)
    with open_store(str(tmp_path / "lake")) as store:
        publish_delivery(store, "pos", FIRST, {f"pos_{FIRST}.csv": b"x"})
        publish_delivery(store, "pos", late, {f"pos_{late}.csv": b"xy", "more.csv": b"z"})
        every = store.list

        def racing(prefix: str = "") -> Any:  # re-delivered meanwhile: a file listed late
            hidden = validated_key("pos", late, "more.csv")
            return (
                info for info in every(prefix) if prefix != "validated/pos/" or info.key != hidden
            )

        monkeypatch.setattr(store, "list", racing)
        plan = plan_backfill(store, contract, FIRST, late)
    assert [(p.dt, p.objects, p.bytes) for p in plan] == [(FIRST, 1, 1), (late, 2, 3)]
