"""Which index keys a load may order a day's rows by: plain B-tree keys a client can sort."""

from __future__ import annotations

from typing import Any

from etl_database_schema.partitions import row_order_keys

KEY_COLUMNS = [  # (index, column or None for an expression, collation, indoption), by index
    ("t_code", "store_code", "C", 0),
    ("t_day_sku", "dt", "", 0),
    ("t_day_sku", "sku", "POSIX", 0),
    ("t_desc", "amount", "", 1),  # DESC
    ("t_expr", None, "", 0),  # an expression
    ("t_local", "name", "default", 0),  # the database's collation: not bytewise
    ("t_num", "qty", "", 0),
    ("t_same", "store_code", "C", 0),  # the same key twice is offered once
]


class Catalog:
    """A cursor answering row_order_keys' one query with ``KEY_COLUMNS``."""

    def execute(self, sql: str, params: Any = None) -> None:
        assert "NOT i.indisunique" in sql
        assert "amname = 'btree'" in sql

    def fetchall(self) -> list[tuple[str, str | None, str, int]]:
        return KEY_COLUMNS


def test_only_ascending_plain_column_keys_of_bytewise_order_are_offered_without_the_day() -> None:
    assert row_order_keys(Catalog(), "t") == [("store_code",), ("sku",), ("qty",)]
