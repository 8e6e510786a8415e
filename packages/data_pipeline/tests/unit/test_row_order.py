"""A day's rows ordered by an index key before the ``COPY``: stable, bytewise, bounded."""

from __future__ import annotations

import pyarrow as pa

from data_pipeline.db.row_order import ordered_batches


def _batch(codes: list[str | None], skus: list[str], start: int) -> pa.RecordBatch:
    return pa.record_batch(
        {
            "n": pa.array(range(start, start + len(codes)), type=pa.int64()),
            "store_code": pa.array(codes, type=pa.string()),
            "sku": pa.array(skus, type=pa.string()),
        }
    )


BATCHES = [
    _batch(["S2", "S1", "S2"], ["a", "b", "c"], 0),
    _batch(["S1", "S2", "S1"], ["d", "e", "f"], 3),
]
KEYS = [("sku",), ("store_code",)]


def _column(batches: list[pa.RecordBatch], name: str) -> list[object]:
    return [value for batch in batches for value in batch.column(name).to_pylist()]


def test_rows_follow_the_key_with_fewest_distinct_values_keeping_their_order_within_it() -> None:
    ordered = list(ordered_batches(iter(BATCHES), KEYS, max_bytes=2**20, batch_rows=4))

    assert _column(ordered, "store_code") == ["S1", "S1", "S1", "S2", "S2", "S2"]
    assert _column(ordered, "n") == [1, 3, 5, 0, 2, 4]  # stable: arrival order within a code
    assert [batch.num_rows for batch in ordered] == [4, 2]


def test_text_is_ordered_bytewise_with_nulls_last() -> None:
    codes = ["b", None, "a", "B", "ä", "ab"]
    batch = _batch(codes, ["x"] * len(codes), 0)

    ordered = list(ordered_batches([batch], [("store_code",)], max_bytes=2**20, batch_rows=10))

    assert _column(ordered, "store_code") == ["B", "a", "ab", "b", "ä", None]


def test_a_key_of_several_columns_orders_by_each_in_turn() -> None:
    batch = _batch(["S2", "S1", "S2", "S1"], ["b", "b", "a", "a"], 0)

    ordered = list(ordered_batches([batch], [("store_code", "sku")], max_bytes=2**20, batch_rows=9))

    assert _column(ordered, "n") == [3, 1, 2, 0]


def test_a_day_larger_than_the_bound_passes_in_the_order_it_came() -> None:
    bound = BATCHES[0].nbytes  # the second batch goes past it

    passed = list(ordered_batches(iter(BATCHES), KEYS, max_bytes=bound, batch_rows=4))

    assert passed == BATCHES


def test_rows_without_a_usable_key_pass_in_the_order_they_came() -> None:
    assert list(ordered_batches(iter(BATCHES), [], max_bytes=2**20, batch_rows=4)) == BATCHES
    missing = list(ordered_batches(iter(BATCHES), [("region",)], max_bytes=2**20, batch_rows=4))
    assert _column(missing, "n") == list(range(6))


def test_no_batches_give_no_batches() -> None:
    assert list(ordered_batches(iter([]), KEYS, max_bytes=2**20, batch_rows=4)) == []
