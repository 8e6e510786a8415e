"""Rows numbered from a reserved block of ids, batch by batch."""

from __future__ import annotations

import pyarrow as pa
import pytest

from data_pipeline.db.loads import _numbered


def _batch(rows: int) -> pa.RecordBatch:
    return pa.record_batch({"x": pa.array(range(rows), type=pa.int64())})


def test_rows_take_the_block_s_ids_in_order_across_batches_and_empty_ones() -> None:
    batches = [_batch(3), _batch(0), _batch(2), _batch(0)]

    numbered = list(_numbered(iter(batches), range(10, 15), "sales"))

    assert [b.column("id").to_pylist() for b in numbered] == [[10, 11, 12], [], [13, 14], []]


def test_more_rows_than_the_block_holds_are_refused() -> None:
    with pytest.raises(ValueError, match="sales: the batches hold more than the 4 rows"):
        list(_numbered(iter([_batch(3), _batch(2)]), range(1, 5), "sales"))
