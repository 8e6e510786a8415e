"""Arrow record batches as PostgreSQL's binary ``COPY`` format, built by Arrow kernels.

The server parses binary fields (dates, timestamps, numerics as integers) instead of
text: about 1.4x faster than ``FORMAT csv`` for a curated day (bench/README.md). Each
field is a length and its bytes in network order; a row is a field count and its fields.
Every field is made column by column (Arrow compute and :meth:`array.array.byteswap`, no
Python object per value) and the rows are joined by ``binary_join_element_wise``.

A batch whose columns this module cannot encode exactly (a type pair not in
:data:`ENCODED`, a decimal wider than 18 digits) makes :func:`binary_encoder` return
``None``; the caller then uses CSV.
"""

from __future__ import annotations

import array
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["ENCODED", "SIGNATURE", "TRAILER", "binary_encoder"]

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
"""The format's header: signature, flags and header-extension length (both 0)."""
TRAILER = b"\xff\xff"
_PG_EPOCH_DAYS = 10_957
"""Days from 1970-01-01 (Arrow's epoch) to 2000-01-01 (PostgreSQL's)."""
_PG_EPOCH_MICROS = _PG_EPOCH_DAYS * 86_400_000_000
_MICROS = {"s": 1_000_000, "ms": 1_000, "us": 1}
_NULL = b"\xff\xff\xff\xff"
_NUMERIC_NEGATIVE = b"\x40\x00"
_MAX_DECIMAL_DIGITS = 18
"""Decimals of up to this many digits, fraction padded to base 10000, are encoded (int64)."""

ENCODED = {
    "integer": ("int32",),
    "bigint": ("int64",),
    "smallint": ("int16",),
    "boolean": ("bool",),
    "date": ("date32[day]",),
    "timestamp with time zone": ("timestamp",),
    "timestamp without time zone": ("timestamp",),
    "numeric": ("decimal128",),
    "character varying": ("string", "large_string"),
    "text": ("string", "large_string"),
}
"""PostgreSQL column type → the Arrow types encoded for it (timestamp: any tz, s/ms/us)."""

Field = Callable[[Any], list[Any]]
"""An Arrow column → the pieces of its binary field (length first), arrays or scalars."""


def binary_encoder(
    schema: Any, column_types: Mapping[str, str]
) -> Callable[[Any], memoryview] | None:
    """A function from a batch of ``schema`` to its rows in binary ``COPY`` format (no
    signature or trailer), or ``None`` when a column cannot be encoded exactly.

    ``column_types`` maps each column name to its PostgreSQL type (``format_type`` without
    the modifier, e.g. ``character varying``).
    """
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.compute as pc  # type: ignore[import-untyped]

    fields: list[Field] = []
    for field in schema:
        field_encoder = _field_encoder(field.type, column_types.get(field.name, ""))
        if field_encoder is None:
            return None
        fields.append(field_encoder)
    count = pa.scalar(len(fields).to_bytes(2, "big"), pa.binary())

    def encode(batch: Any) -> memoryview:
        if batch.num_rows == 0:
            return memoryview(b"")
        pieces: list[Any] = [count]
        for index, field_pieces in enumerate(fields):
            pieces.extend(field_pieces(batch.column(index)))
        rows = pc.binary_join_element_wise(*_merged(pieces), pa.scalar(b"", pa.binary()))
        offsets = memoryview(rows.buffers()[1]).cast("B").cast("i")
        start, end = offsets[rows.offset], offsets[rows.offset + len(rows)]
        return memoryview(rows.buffers()[2])[start:end]

    return encode


def _merged(pieces: list[Any]) -> list[Any]:
    """``pieces`` with each run of adjacent scalars joined into one (fewer to join)."""
    import pyarrow as pa

    merged: list[Any] = []
    for piece in pieces:
        if merged and isinstance(piece, pa.Scalar) and isinstance(merged[-1], pa.Scalar):
            merged[-1] = pa.scalar(merged[-1].as_py() + piece.as_py(), pa.binary())
        else:
            merged.append(piece)
    return merged


def _field_encoder(kind: Any, pg_type: str) -> Field | None:
    """The encoder of an Arrow type into PostgreSQL type ``pg_type``, if exact."""
    import pyarrow as pa

    accepted = ENCODED.get(pg_type, ())
    if pa.types.is_timestamp(kind):
        name = "timestamp" if kind.unit in _MICROS else ""
    elif pa.types.is_decimal128(kind):
        padded = kind.precision + -kind.scale % 4  # the fraction padded to base 10000
        exact = padded <= _MAX_DECIMAL_DIGITS and kind.scale >= 0
        name = "decimal128" if exact else ""
    else:
        name = str(kind)
    if name not in accepted:
        return None
    if name in ("string", "large_string"):
        return _text
    if name == "decimal128":
        return lambda column: _numeric(column, kind.precision, kind.scale)
    if name == "timestamp":
        return lambda column: _timestamp(column, _MICROS[kind.unit])
    fixed = {"int32": _int(4), "int64": _int(8), "int16": _int(2), "bool": _bool}
    return fixed.get(name) or _date  # date32[day]


def _network(values: Any, width: int) -> Any:
    """Fixed-width integers (an Arrow array of ``width`` bytes each) in network order, as
    an Arrow binary array."""
    import pyarrow as pa

    raw = _machine_words(values, width, {2: "h", 4: "i"}.get(width, "q"))
    if sys.byteorder == "little":
        raw.byteswap()
    fixed = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), len(values), [None, pa.py_buffer(raw.tobytes())]
    )
    return fixed.cast(pa.binary())


def _length(column: Any, width: int) -> Any:
    """The length piece of a fixed-width field: ``width``, or -1 for a null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    size = pa.scalar(width.to_bytes(4, "big"), pa.binary())
    if column.null_count == 0:
        return size
    return pc.if_else(pc.is_valid(column), size, pa.scalar(_NULL, pa.binary()))


def _fixed(column: Any, values: Any, width: int) -> list[Any]:
    """Length and payload of a fixed-width field (a null's payload is empty)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    payload = _network(values, width)
    if column.null_count:
        payload = pc.if_else(pc.is_valid(column), payload, pa.scalar(b"", pa.binary()))
    return [_length(column, width), payload]


def _int(width: int) -> Field:
    import pyarrow as pa

    kind = {2: pa.int16(), 4: pa.int32(), 8: pa.int64()}[width]
    return lambda column: _fixed(column, column.cast(kind).fill_null(0), width)


def _bool(column: Any) -> list[Any]:
    import pyarrow as pa
    import pyarrow.compute as pc

    byte = pc.if_else(
        column.fill_null(False), pa.scalar(b"\x01", pa.binary()), pa.scalar(b"\x00", pa.binary())
    )
    if column.null_count:
        byte = pc.if_else(pc.is_valid(column), byte, pa.scalar(b"", pa.binary()))
    return [_length(column, 1), byte]


def _date(column: Any) -> list[Any]:
    import pyarrow as pa
    import pyarrow.compute as pc

    days = pc.subtract(column.cast(pa.int32()).fill_null(_PG_EPOCH_DAYS), _PG_EPOCH_DAYS)
    return _fixed(column, days.cast(pa.int32()), 4)


def _timestamp(column: Any, micros: int) -> list[Any]:
    """Microseconds since 2000-01-01 UTC (a naive timestamp is read as UTC, the session
    time zone of every connection of the platform)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ticks = column.cast(pa.int64()).fill_null(0)
    if micros != 1:
        ticks = pc.multiply_checked(ticks, micros)
    return _fixed(column, pc.subtract_checked(ticks, _PG_EPOCH_MICROS), 8)


def _text(column: Any) -> list[Any]:
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = pa.large_binary() if pa.types.is_large_string(column.type) else pa.binary()
    lengths = pc.binary_length(column).cast(pa.int32()).fill_null(-1)
    payload = column.cast(kind).fill_null(b"")
    if kind == pa.large_binary():
        payload = payload.cast(pa.binary())
    return [_network(lengths, 4), payload]


def _numeric(column: Any, precision: int, scale: int) -> list[Any]:
    """PostgreSQL's numeric: digit count, weight, sign, display scale, then base-10000
    digits, most significant first (leading and trailing zero digits are allowed; the
    server strips them). Each row's field is one run of 64-bit words: the header, then
    four digits a word."""
    import pyarrow as pa
    import pyarrow.compute as pc

    pad = -scale % 4
    words = -(-(precision + pad) // 16)
    groups = 4 * words
    fraction = (scale + pad) // 4
    header = (groups << 48) | (((groups - fraction - 1) & 0xFFFF) << 32) | scale
    unscaled = _unscaled(column)
    magnitude = pc.multiply(pc.abs(unscaled), 10**pad)
    ceiling, zero = 10 ** (precision + pad), pc.multiply(magnitude, 0)
    negative = pc.multiply(pc.less(unscaled, 0).cast(pa.int64()), 0x4000 << 16)
    parts = [pc.add(negative, header)]
    above = None
    for word in range(words):
        divisor = 10 ** (16 * (words - 1 - word))
        whole = pc.divide(magnitude, divisor) if divisor <= ceiling else zero
        value = whole if above is None else pc.subtract(whole, pc.multiply(above, 10**16))
        above = whole
        parts.append(_packed_digits(value))
    return _fixed(column, _interleaved(parts), 8 * (1 + words))


_PACKED = tuple((2 ** (16 * k) - 10_000 * 2 ** (16 * (k - 1)), 10_000**k) for k in (1, 2, 3))
"""Per k: what one unit of ``value // 10000**k`` adds to a packed word, and ``10000**k``."""


def _packed_digits(value: Any) -> Any:
    """Int64 values below 10**16 as four base-10000 digits of 16 bits each, the most
    significant first (``d0 << 48 | d1 << 32 | d2 << 16 | d3``): with ``q_k = value //
    10000**k`` the packed word is ``value + sum(q_k * (2**(16 k) - 10000 * 2**(16 (k-1))))``,
    at most 2**62 on the way (no overflow)."""
    import pyarrow.compute as pc

    packed = value
    for step, divisor in _PACKED:
        quotient = pc.divide(value, divisor)
        packed = pc.add(packed, pc.multiply(quotient, step))
    return packed


def _interleaved(parts: list[Any]) -> Any:
    """Int64 arrays of one length, row by row (one row: a value of each, in order), as
    an Arrow array of fixed-size values."""
    import pyarrow as pa

    if len(parts) == 1:
        return parts[0]
    raw = array.array("q", bytes(8 * len(parts) * len(parts[0])))
    for index, part in enumerate(parts):
        raw[index :: len(parts)] = _machine_words(part, 8)
    width = 8 * len(parts)
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), len(parts[0]), [None, pa.py_buffer(raw.tobytes())]
    )


def _machine_words(values: Any, width: int, code: str = "q") -> array.array[int]:
    """The data of a fixed-width Arrow array (``width`` bytes a value) as machine words."""
    first, end = values.offset * width, (values.offset + len(values)) * width
    raw = array.array(code)
    raw.frombytes(memoryview(values.buffers()[1])[first:end])
    return raw


def _unscaled(column: Any) -> Any:
    """The unscaled int64 values of a decimal128 column of at most 18 digits (nulls as 0)."""
    import pyarrow as pa

    raw = _machine_words(column, 16)
    if sys.byteorder != "little":  # Arrow's decimals are little-endian two's complement
        raw.byteswap()
    low = raw[0::2]  # the low 64 bits: the value itself at this precision
    values = pa.Array.from_buffers(pa.int64(), len(column), [None, pa.py_buffer(low.tobytes())])
    return values if column.null_count == 0 else values.fill_null(0)
