"""Reference tables enrichment joins read (``[enrich.<name>] table = …`` in a contract)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from data_pipeline.db.door import door

__all__ = ["REFERENCE_TABLES", "iter_reference_rows"]

REFERENCE_TABLES = {
    "retail_product": ("etl_retail", "Product"),
    "retail_store": ("etl_retail", "Store"),
}
"""Reference table → (app label, model name) of the schema; joins may read only these."""
_CHUNK_ROWS = 2000


def iter_reference_rows(table: str, columns: Sequence[str]) -> Iterator[tuple[Any, ...]]:
    """Stream the ``columns`` of a reference table, in chunks (memory stays bounded).

    The whole stream is one unit of work through the door.

    Raises:
        ValueError: unknown table or column.
    """
    if table not in REFERENCE_TABLES:
        raise ValueError(
            f"table {table!r} is not a reference table; expected one of "
            f"{', '.join(sorted(REFERENCE_TABLES))}"
        )
    app, name = REFERENCE_TABLES[table]
    with door("reference tables") as schema, schema.models(app) as models:
        model = models[name]
        known = {field.column: field.name for field in model._meta.concrete_fields}
        unknown = [column for column in columns if column not in known]
        if unknown:
            raise ValueError(
                f"{table} has no column(s) {', '.join(unknown)}; expected among "
                f"{', '.join(sorted(known))}"
            )
        fields = [known[column] for column in columns]
        query = model.objects.order_by("pk").values_list(*fields)
        yield from query.iterator(chunk_size=_CHUNK_ROWS)
