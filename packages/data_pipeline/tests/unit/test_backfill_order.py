"""The order a backfill hands its partitions out: by date, or the largest first."""

from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace
from typing import cast

from data_pipeline.backfill import backfill_units
from data_pipeline.db import BackfillJobRecord, BackfillPartitionRecord
from data_pipeline.work import partition_of
from etl_core.contracts import Contract
from etl_core.work import WorkUnit

FIRST = date(2026, 11, 1)
CONTRACT = cast(Contract, SimpleNamespace(dataset="pos"))


def job(*states: str) -> BackfillJobRecord:
    partitions = tuple(
        BackfillPartitionRecord(FIRST + timedelta(days=n), state, 0, "", None, "")
        for n, state in enumerate(states)
    )
    return BackfillJobRecord("j1", "pos", FIRST, partitions[-1].dt, "running", {}, 3, partitions)


def days(units: list[WorkUnit]) -> list[int]:
    return [partition_of(unit)[1].day for unit in units]


def test_without_sizes_partitions_go_out_in_date_order() -> None:
    assert days(backfill_units(CONTRACT, job("pending", "pending", "pending"))) == [1, 2, 3]


def test_with_sizes_the_largest_partition_goes_out_first() -> None:
    sizes = {FIRST: 10, FIRST + timedelta(days=1): 900, FIRST + timedelta(days=2): 50}
    units = backfill_units(CONTRACT, job("pending", "pending", "pending"), sizes=sizes)
    assert days(units) == [2, 3, 1]


def test_equal_sizes_keep_date_order_and_an_unknown_size_counts_as_empty() -> None:
    sizes = {FIRST: 5, FIRST + timedelta(days=1): 5, FIRST + timedelta(days=3): 7}
    units = backfill_units(CONTRACT, job("pending", "pending", "pending", "failed"), sizes=sizes)
    assert days(units) == [4, 1, 2, 3]


def test_sizes_do_not_bring_back_partitions_already_done() -> None:
    sizes = {FIRST: 1, FIRST + timedelta(days=1): 1000, FIRST + timedelta(days=2): 10}
    units = backfill_units(CONTRACT, job("pending", "succeeded", "pending"), sizes=sizes)
    assert days(units) == [3, 1]
