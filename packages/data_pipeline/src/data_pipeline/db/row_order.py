"""Rows of a day put in the order of one of its table's indexes before they are copied.

A staging table's indexes are built after its rows are written; PostgreSQL's sort first
checks whether its input is already sorted. A plain index on a code with few distinct
values (8 stores a day) is the costliest build, because nearly every comparison ties on
the code and goes on to the row's position; rows written in that code's order make its
sort find them sorted. The order is stable (rows of one code keep their order, which
the unique key's sort also benefits from). The key chosen is, among the candidates the
schema gives (:func:`etl_database_schema.partitions.row_order_keys`), the one whose first
column has the fewest distinct values.

The rows are held in memory to be ordered, up to a bound: a day larger than that is
copied in the order it came, which only makes its index builds slower.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

__all__ = ["ordered_batches"]

logger = logging.getLogger(__name__)


def ordered_batches(
    batches: Iterable[Any], keys: Sequence[Sequence[str]], *, max_bytes: int, batch_rows: int
) -> Iterator[Any]:
    """The rows of Arrow record ``batches``, stably ordered by the key of ``keys`` whose
    first column has the fewest distinct values, in batches of ``batch_rows``.

    Without a usable key (none, or a column missing from the batches) the batches pass
    through as they are; once the batches held exceed ``max_bytes`` (Arrow's buffer
    sizes) those held and the rest pass through in the order they came.
    """
    stream = iter(batches)
    usable = [key for key in keys if key]
    if not usable:
        yield from stream
        return
    held: list[Any] = []
    size = 0
    for batch in stream:
        held.append(batch)
        size += batch.nbytes
        if size > max_bytes:
            logger.info(
                "rows copied in the order they came: the day is larger than the bound "
                "for ordering it",
                extra={"max_bytes": max_bytes},
            )
            yield from held
            yield from stream
            return
    if not held:
        return
    yield from _ordered(held, usable, batch_rows)


def _ordered(held: list[Any], keys: Sequence[Sequence[str]], batch_rows: int) -> Iterator[Any]:
    import pyarrow as pa  # type: ignore[import-untyped]

    schema = held[0].schema
    table = pa.Table.from_batches(
        [batch if batch.schema == schema else batch.cast(schema) for batch in held]
    )
    held.clear()
    key = _fewest_distinct(table, [k for k in keys if all(c in schema.names for c in k)])
    if key is None:
        yield from table.to_batches(max_chunksize=batch_rows)
        return
    indices = _sort_indices(table, key)
    rows = table.combine_chunks().to_batches()[0] if table.num_rows else None
    del table
    for start in range(0, len(indices), batch_rows):
        yield rows.take(indices.slice(start, batch_rows))


def _fewest_distinct(table: Any, keys: Sequence[Sequence[str]]) -> Sequence[str] | None:
    """The key whose first column has the fewest distinct values (the first on a tie)."""
    import pyarrow.compute as pc  # type: ignore[import-untyped]

    counted = [(pc.count_distinct(table.column(key[0]), mode="all").as_py(), key) for key in keys]
    return min(counted, key=lambda pair: pair[0])[1] if counted else None


def _sort_indices(table: Any, key: Sequence[str]) -> Any:
    """Indices of a stable ascending sort by ``key``, nulls last (a B-tree's default).

    Text is ranked through its distinct values (bytewise, as collation ``"C"`` orders it),
    so the rows are sorted by small integers rather than compared as strings."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = {}
    for name in key:
        column = table.column(name)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            encoded = pc.dictionary_encode(column.combine_chunks())
            ranks = pc.rank(encoded.dictionary, sort_keys="ascending", tiebreaker="first")
            column = pc.take(ranks, encoded.indices)
        columns[name] = column
    ranked = pa.table(columns)  # Arrow's sort_indices is stable and puts nulls last
    return pc.sort_indices(ranked, sort_keys=[(name, "ascending") for name in key])
