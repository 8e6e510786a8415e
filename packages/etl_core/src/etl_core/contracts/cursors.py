"""Incremental cursor values: parsed to compare, moved back by a lookback, written back as text.

An endpoint's high-water mark is the largest cursor value its records carried. The
value is kept as text (as the API spells it); comparing and subtracting a lookback
go through the value's declared type: ``timestamp`` (ISO 8601, a ``Z`` or offset,
naive read as UTC), ``date`` (``YYYY-MM-DD``), ``int`` or ``string``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from etl_core.errors import ConfigError

__all__ = [
    "CursorValue",
    "CursorValueError",
    "format_cursor",
    "parse_cursor",
    "shift_cursor",
]

CursorValue = datetime | date | int | str
"""A parsed cursor value: comparable with values of the same type."""


class CursorValueError(ConfigError, ValueError):
    """A cursor value does not read as its declared type; the message says what was expected."""


def parse_cursor(kind: str, value: object) -> CursorValue:
    """``value`` (text or a JSON number) read as a cursor of type ``kind``.

    Raises:
        CursorValueError: the value does not read as ``kind``.
    """
    try:
        if kind == "timestamp":
            parsed = datetime.fromisoformat(str(value))
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        if kind == "date":
            text = str(value)
            return date.fromisoformat(text[:10]) if len(text) >= 10 else date.fromisoformat(text)
        if kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            if isinstance(value, int | float):
                return int(value)
            return int(str(value))
    except (TypeError, ValueError):
        expected = {
            "timestamp": "an ISO 8601 timestamp such as 2026-01-31T12:00:00Z",
            "date": "a date YYYY-MM-DD",
            "int": "an integer",
        }[kind]
        raise CursorValueError(f"expected {expected}, got {value!r}") from None
    if kind == "string":
        return str(value)
    raise CursorValueError(f"unknown cursor type {kind!r}")


def format_cursor(value: CursorValue) -> str:
    """A cursor value as the text sent to the API and kept in the state."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def shift_cursor(value: CursorValue, back: timedelta | None) -> CursorValue:
    """``value`` moved ``back`` earlier (a lookback); other types are returned unchanged."""
    if back is None or not isinstance(value, date):
        return value
    if isinstance(value, datetime):
        return value - back
    return value - timedelta(days=back.days)
