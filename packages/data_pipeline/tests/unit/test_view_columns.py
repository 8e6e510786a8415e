"""The transform's output columns are read from the catalog, as its view was bound."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from data_pipeline.engine import relation_columns, view_columns


def test_view_columns_name_and_type_every_column_as_describe_does(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "work.duckdb"))
    con.execute("CREATE TYPE mood AS ENUM ('calm', 'busy')")
    con.execute(
        "CREATE VIEW transformed AS SELECT 1::DECIMAL(12,2) AS price, now() AS at, "
        "{'a': 1, 'b': [1, 2]} AS nested, 'calm'::mood AS mood, 1::HUGEINT AS big, "
        "'x' AS \"odd name\", DATE '2026-11-02' AS dt, [1.5] AS list"
    )
    assert view_columns(con, "transformed") == relation_columns(con, "transformed")
    assert list(view_columns(con, "transformed")) == [
        "price", "at", "nested", "mood", "big", "odd name", "dt", "list",
    ]  # fmt: skip


def test_view_columns_do_not_read_the_views_sources_again(tmp_path: Path) -> None:
    csv = tmp_path / "input.csv"
    csv.write_text("sku,qty\nA,1\n")
    con = duckdb.connect()
    con.execute(f"CREATE VIEW transformed AS SELECT sku, qty::INTEGER AS qty FROM '{csv}'")
    csv.unlink()  # binding the view again would need the file
    assert view_columns(con, "transformed") == {"sku": "VARCHAR", "qty": "INTEGER"}
    with pytest.raises(duckdb.Error):
        relation_columns(con, "transformed")


def test_view_columns_of_the_current_schema_only(tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA other")
    con.execute("CREATE VIEW other.transformed AS SELECT 1 AS elsewhere")
    con.execute("CREATE VIEW transformed AS SELECT 'x' AS here")
    assert view_columns(con, "transformed") == {"here": "VARCHAR"}
