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


CONTRACT = """\
dataset = "sales"
source = "vendor"
pattern = "s_{date:%Y%m%d}.csv"

[[columns]]
name = "id"
required = true

[[checks]]
kind = "unique"
column = "id"
"""


@pytest.mark.parametrize(
    ("body", "outcome"),
    [("id\n1\n2\n3\n", "pass"), ("id\n1\n2\n2\n", "fail"), ('id\n1\n"2\n', "fail")],
)
def test_an_analysis_leaves_no_table_of_its_key_hashes_in_the_delivery_database(
    tmp_path: Path, body: str, outcome: str
) -> None:
    from etl_core.contracts import load_contract
    from file_processing.quality import validate_file

    (tmp_path / "contract.toml").write_text(CONTRACT)
    contract = load_contract(tmp_path / "contract.toml", environ={})
    root = tmp_path / "delivery"
    (root / "in").mkdir(parents=True)
    source = root / "in" / "s_20260101.csv"
    source.write_text(body)
    with QualityEngine(root, memory_limit=64 * MIB) as engine:
        result = validate_file(source, contract, out_dir=root / "out", engine=engine)
        tables = engine.connect().execute("SELECT table_name FROM duckdb_tables()").fetchall()

    assert result.report.outcome == outcome
    assert tables == []
