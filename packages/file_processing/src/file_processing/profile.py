"""Per-column profile: null fraction, distinct count, min/max and top values.

Rendered as aggregate expressions that ride along in the engine's single
checking pass, so profiling costs no extra read of the file. Distinct counts
come from HyperLogLog (``approx_count_distinct``) and top values from an
approximate top-k sketch: memory stays bounded whatever the cardinality. A large
CSV's top values come from a sample of its records instead (:func:`top_value_exprs`),
the sketch being the dearest statistic per row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from etl_core.contracts import Column
from file_processing.checks import ident, raw_name
from file_processing.report import ColumnProfile

__all__ = [
    "TOP_VALUES",
    "present_count",
    "profile_columns",
    "profile_exprs",
    "profile_kinds",
    "top_value_exprs",
    "with_top_values",
]

TOP_VALUES = 5
_PER_COLUMN = 5  # expressions per column in profile_exprs, in this order
_NEAR_UNIQUE = 0.9  # distinct/non-null ratio above which top values are left out


def profile_kinds(top: int) -> tuple[list[str], list[str]]:
    """The profile's statistics that are estimates, and those left out (``top`` 0: no
    top values, whose sketch is the profile's dearest part)."""
    if top > 0:
        return ["distinct_count", "top_values"], []
    return ["distinct_count"], ["top_values"]


def profile_exprs(columns: Sequence[Column], *, top: int = TOP_VALUES) -> list[str]:
    """Aggregate SQL expressions profiling ``columns`` (five per column; no top-k sketch
    when ``top`` is 0)."""
    exprs: list[str] = []
    for index, column in enumerate(columns):
        value, raw = ident(column.name), raw_name(index)
        exprs += [
            f"count({raw})",
            f"approx_count_distinct({value})",
            f"CAST(min({value}) AS VARCHAR)",
            f"CAST(max({value}) AS VARCHAR)",
            f"approx_top_k({raw}, {int(top)})" if top > 0 else "CAST(NULL AS VARCHAR[])",
        ]
    return exprs


def present_count(values: Sequence[object], index: int) -> int:
    """The non-null values of the ``index``-th column, from the results of
    :func:`profile_exprs`."""
    return int(_number(values[index * _PER_COLUMN]))


def top_value_exprs(columns: Sequence[Column], *, top: int) -> list[str]:
    """The top-k sketch of each column alone, for a sample of the rows (``top`` > 0)."""
    return [f"approx_top_k({raw_name(i)}, {int(top)})" for i in range(len(columns))]


def with_top_values(values: Sequence[object], tops: Sequence[object]) -> list[object]:
    """The results of :func:`profile_exprs` (made with ``top`` 0) with the top values of
    :func:`top_value_exprs` in their place."""
    merged = list(values)
    for index, top in enumerate(tops):
        merged[index * _PER_COLUMN + _PER_COLUMN - 1] = top
    return merged


def profile_columns(
    columns: Sequence[Column], values: Sequence[object], rows: int
) -> list[ColumnProfile]:
    """Shape the results of :func:`profile_exprs` (in order) into column profiles."""
    profiles = []
    for index, column in enumerate(columns):
        present, distinct, low, high, top = values[index * _PER_COLUMN : (index + 1) * _PER_COLUMN]
        nulls = rows - int(_number(present))
        distinct_count = int(_number(distinct))
        if distinct_count >= _NEAR_UNIQUE * max(1, rows - nulls):
            top = []  # a sketch of a (nearly) unique column names arbitrary values
        profiles.append(
            ColumnProfile(
                name=column.name,
                type=column.type,
                null_fraction=round(nulls / rows, 6) if rows else 0.0,
                distinct_count=distinct_count,
                min=_text(low),
                max=_text(high),
                top_values=[str(v) for v in _items(top) if v is not None],
            )
        )
    return profiles


def _items(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def _number(value: object) -> int | float:
    if isinstance(value, int | float):
        return value
    if isinstance(value, Decimal):
        return float(value)
    return 0


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)
