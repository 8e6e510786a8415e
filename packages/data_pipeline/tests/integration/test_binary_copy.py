"""Arrow batches sent to PostgreSQL in binary ``COPY`` format arrive as the same values as
they do through CSV: nulls, negative and fractional decimals, time zones, every type."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import psycopg
import pyarrow as pa
import pytest

from data_pipeline.db.binary_copy import SIGNATURE, TRAILER, binary_encoder

pytestmark = pytest.mark.postgres

COLUMNS = {
    "day": ("date", pa.date32()),
    "code": ("character varying(8)", pa.string()),
    "note": ("text", pa.large_string()),
    "small": ("smallint", pa.int16()),
    "n": ("integer", pa.int32()),
    "big": ("bigint", pa.int64()),
    "flag": ("boolean", pa.bool_()),
    "at": ("timestamp with time zone", pa.timestamp("us", tz="UTC")),
    "local": ("timestamp without time zone", pa.timestamp("ms")),
    "qty": ("numeric(12,3)", pa.decimal128(12, 3)),
    "price": ("numeric(14,2)", pa.decimal128(14, 2)),
    "wide": ("numeric(18,0)", pa.decimal128(18, 0)),
    "odd": ("numeric(15,1)", pa.decimal128(15, 1)),
    "tiny": ("numeric(4,4)", pa.decimal128(4, 4)),
}
ROWS: list[tuple[Any, ...]] = [
    (date(2024, 5, 1), "S001", "été ☕", 7, -2, 2**40, True,
     datetime(2024, 5, 1, 9, 30, 15, 123456, tzinfo=UTC), datetime(1999, 12, 31, 23, 59, 59, 1000),
     Decimal("-4.500"), Decimal("123456789012.34"), Decimal("999999999999999999"),
     Decimal("99999999999999.9"), Decimal("0.0001")),
    (date(1970, 1, 1), "", "", -32768, 2**31 - 1, -(2**63), False,
     datetime(1900, 1, 1, tzinfo=timezone(timedelta(hours=2))), datetime(2000, 1, 1),
     Decimal("0.000"), Decimal("-0.01"), Decimal("-1"), Decimal("-1.5"), Decimal("-0.9999")),
    (None, None, None, None, None, None, None, None, None, None, None, None, None, None),
]  # fmt: skip


def _table(con: psycopg.Connection[Any]) -> None:
    columns = ", ".join(f"{name} {kind}" for name, (kind, _) in COLUMNS.items())
    con.execute(f"CREATE TABLE t ({columns})")


def _batch() -> Any:
    arrays = [
        pa.array([row[i] for row in ROWS], type=kind)
        for i, (_, kind) in enumerate(COLUMNS.values())
    ]
    return pa.RecordBatch.from_arrays(arrays, names=list(COLUMNS))


def test_binary_rows_read_back_as_the_values_sent(postgres_url: str) -> None:
    batch = _batch()
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute("SET TIME ZONE 'UTC'")
        _table(con)
        types = dict(
            con.execute(
                "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
                "WHERE attrelid = 't'::regclass AND attnum > 0"
            ).fetchall()
        )
        encode = binary_encoder(batch.schema, types)
        assert encode is not None
        with con.cursor().copy(f"COPY t ({', '.join(COLUMNS)}) FROM STDIN (FORMAT binary)") as cp:
            cp.write(SIGNATURE)
            cp.write(encode(batch.slice(0, 1)))
            cp.write(encode(batch.slice(1)))  # a slice: offsets into shared buffers
            cp.write(TRAILER)
        stored = con.execute(f"SELECT {', '.join(COLUMNS)} FROM t").fetchall()

    expected = [tuple(_as_stored(row[name]) for name in COLUMNS) for row in batch.to_pylist()]
    assert [tuple(_as_stored(v) for v in row) for row in stored] == expected


def _as_stored(value: Any) -> Any:
    """Timestamps compared as UTC instants (the server returns them in its session zone)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    return value


def test_a_column_that_cannot_be_encoded_exactly_falls_back_to_csv() -> None:
    wide = pa.schema([("amount", pa.decimal128(17, 2))])  # 19 digits in base 10000
    mismatched = pa.schema([("n", pa.int64())])

    assert binary_encoder(wide, {"amount": "numeric"}) is None
    assert binary_encoder(pa.schema([("a", pa.decimal128(5, -2))]), {"a": "numeric"}) is None
    assert (
        binary_encoder(pa.schema([("t", pa.timestamp("ns"))]), {"t": "timestamp without time zone"})
        is None
    )
    assert binary_encoder(mismatched, {"n": "integer"}) is None
    assert binary_encoder(pa.schema([("n", pa.int32())]), {"n": "integer"}) is not None
