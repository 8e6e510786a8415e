"""The delivery's shared DuckDB database: confined to its scratch, private per analysis."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from file_processing.engine import QualityEngine

MIB = 1024 * 1024


def test_the_engine_reads_inside_its_root_and_nowhere_else(tmp_path: Path) -> None:
    root = tmp_path / "delivery"
    root.mkdir()
    (root / "a.csv").write_text("id\n1\n2\n")
    (tmp_path / "secret.csv").write_text("id\n42\n")

    with QualityEngine(root, memory_limit=64 * MIB) as engine:
        connection = engine.connect()
        ((rows,),) = connection.execute(f"SELECT count(*) FROM '{root / 'a.csv'}'").fetchall()
        with pytest.raises(duckdb.Error):
            connection.execute(f"SELECT * FROM '{tmp_path / 'secret.csv'}'").fetchall()
        with pytest.raises(duckdb.Error):
            connection.execute("SET enable_external_access = true")

    assert rows == 2


def test_each_connection_has_temporary_tables_of_its_own(tmp_path: Path) -> None:
    with QualityEngine(tmp_path, memory_limit=64 * MIB) as engine:
        first, second = engine.connect(), engine.connect()
        first.execute("CREATE TEMP TABLE __bad AS SELECT 1 AS x")
        second.execute("CREATE TEMP TABLE __bad AS SELECT 2 AS x")
        assert first.execute("SELECT x FROM __bad").fetchall() == [(1,)]
        assert second.execute("SELECT x FROM __bad").fetchall() == [(2,)]
        scratch = engine.scratch

    assert not scratch.exists()
