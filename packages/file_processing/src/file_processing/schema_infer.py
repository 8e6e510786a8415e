"""Inferring the type of text columns: the narrowest column type every value fits.

Rendered as aggregate expressions that ride along in the engine's single checking
pass (an open schema's columns, a contract's extra ones), so inference costs no
extra read of the file. A column with no value at all is ``string``.
"""

from __future__ import annotations

from collections.abc import Sequence

from file_processing.checks import raw_name, sql_text

__all__ = ["CANDIDATES", "inference_exprs", "inferred_types"]

CANDIDATES: tuple[tuple[str, str], ...] = (
    ("bool", "lower(trim({raw})) IN ('true', 'false')"),
    (
        "int",
        "regexp_full_match({raw}, " + sql_text(r"\s*[+-]?[0-9]+\s*") + ")"
        " AND TRY_CAST({raw} AS BIGINT) IS NOT NULL",
    ),
    ("float", "TRY_CAST({raw} AS DOUBLE) IS NOT NULL"),
    ("date", "TRY_CAST({raw} AS DATE) IS NOT NULL AND length(trim({raw})) = 10"),
    ("timestamp", "TRY_CAST({raw} AS TIMESTAMP) IS NOT NULL"),
)
"""Types tried, narrowest first, each with the SQL condition a value of it meets."""


def inference_exprs(indexes: Sequence[int]) -> list[str]:
    """Aggregates over the raw text of the columns at ``indexes``: the values, then how many
    fit each candidate type."""
    exprs = []
    for index in indexes:
        raw = raw_name(index)
        exprs.append(f"count({raw})")
        exprs += [f"count_if({condition.format(raw=raw)})" for _, condition in CANDIDATES]
    return exprs


def inferred_types(values: Sequence[object], count: int) -> list[str]:
    """The type of each of ``count`` columns from the results of :func:`inference_exprs`."""
    width = 1 + len(CANDIDATES)
    types = []
    for column in range(count):
        present, *fits = values[column * width : (column + 1) * width]
        total = _count(present)
        chosen = "string"
        if total:
            for (name, _), fit in zip(CANDIDATES, fits, strict=True):
                if _count(fit) == total:
                    chosen = name
                    break
        types.append(chosen)
    return types


def _count(value: object) -> int:
    return int(value) if isinstance(value, int | float) else 0
