"""The [schema] policy: extra columns refused, kept or dropped; missing ones refused or
published empty; an open schema checked for well-formedness only, its columns inferred."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from etl_core.artifacts import QualitySummary
from etl_core.contracts import Contract, load_contract
from file_processing.quality import analyze_file, validate_file
from file_processing.reasons import Reason
from file_processing.report import CheckResult, QualityReport

DECLARED = """\
[[columns]]
name = "id"
type = "int"
required = true

[[columns]]
name = "amount"
type = "decimal"

[[columns]]
name = "note"
"""


def contract(tmp_path: Path, schema: str = "", columns: str = DECLARED, top: str = "") -> Contract:
    path = tmp_path / "contract.toml"
    path.write_text(
        f'dataset = "sales"\nsource = "vendor"\npattern = "s_{{date:%Y%m%d}}.csv"\n{top}\n'
        f"[schema]\n{schema}\n{columns}"
    )
    return load_contract(path, environ={})


def data(tmp_path: Path, text: str, name: str = "s.csv") -> Path:
    path = tmp_path / "in" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def columns_check(report: QualityReport) -> CheckResult:
    (found,) = [c for c in report.checks if c.name == "columns"]
    return found


def rows_of(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


# ------------------------------------------------------------------ extra columns


def test_extra_column_is_refused_by_default(tmp_path: Path) -> None:
    report = analyze_file(data(tmp_path, "id,amount,note,region\n1,2.5,x,EU\n"), contract(tmp_path))
    assert report.outcome == "fail"
    assert report.reason is not None
    assert report.reason.code == Reason.DATA_SCHEMA
    assert "unexpected 'region'" in columns_check(report).detail


def test_kept_extra_column_is_published_with_the_file_and_reported(tmp_path: Path) -> None:
    source = data(tmp_path, "region,id,amount,note\nEU,1,2.5,x\nUS,2,3,\n")
    result = validate_file(
        source, contract(tmp_path, 'extra_columns = "keep"'), out_dir=tmp_path / "out"
    )
    assert result.report.outcome == "pass"
    assert result.valid_path is not None
    assert result.valid_path.read_bytes() == source.read_bytes()  # unchanged, nothing lost
    columns = [(c.name, c.type, c.source) for c in result.report.columns]
    assert columns == [
        ("region", "string", "extra"),
        ("id", "int", "declared"),
        ("amount", "decimal", "declared"),
        ("note", "string", "declared"),
    ]
    assert "kept: 'region'" in columns_check(result.report).detail


def test_dropped_extra_column_is_left_out_of_the_published_file(tmp_path: Path) -> None:
    source = data(tmp_path, "id,region,amount,note\n1,EU,2.5,x\n2,US,3,\n")
    result = validate_file(
        source, contract(tmp_path, 'extra_columns = "drop"'), out_dir=tmp_path / "out"
    )
    assert result.report.outcome == "pass"
    assert result.valid_path is not None
    assert rows_of(result.valid_path) == [
        ["id", "amount", "note"],
        ["1", "2.5", "x"],
        ["2", "3", ""],
    ]
    assert source.read_text().startswith("id,region")  # the input stays as delivered
    assert result.report.rows.valid == 2


# ------------------------------------------------------------------ missing columns


def test_missing_optional_column_is_refused_by_default(tmp_path: Path) -> None:
    report = analyze_file(data(tmp_path, "id,amount\n1,2\n"), contract(tmp_path))
    assert report.outcome == "fail"
    assert "missing 'note'" in columns_check(report).detail


def test_missing_optional_column_is_published_empty_under_null(tmp_path: Path) -> None:
    source = data(tmp_path, "amount,id\n2.5,1\n3,2\n")
    result = validate_file(
        source, contract(tmp_path, 'missing_columns = "null"'), out_dir=tmp_path / "out"
    )
    assert result.report.outcome == "pass"
    assert result.valid_path is not None
    assert rows_of(result.valid_path) == [
        ["amount", "id", "note"],
        ["2.5", "1", ""],
        ["3", "2", ""],
    ]
    assert [(c.name, c.source) for c in result.report.columns][-1] == ("note", "filled")


def test_missing_required_column_is_refused_whatever_the_policy(tmp_path: Path) -> None:
    report = analyze_file(
        data(tmp_path, "amount,note\n2.5,x\n"), contract(tmp_path, 'missing_columns = "null"')
    )
    assert report.outcome == "fail"
    assert "missing required 'id'" in columns_check(report).detail


def test_filled_and_dropped_columns_survive_a_split(tmp_path: Path) -> None:
    policy = 'extra_columns = "drop"\nmissing_columns = "null"'
    source = data(tmp_path, "id,junk,amount\n1,a,2\nx,b,3\n3,c,4\n")
    result = validate_file(
        source,
        contract(tmp_path, policy, top="max_rejected_fraction = 1"),
        out_dir=tmp_path / "out",
    )
    assert result.report.outcome == "pass"
    assert result.valid_path is not None
    assert result.rejected_path is not None
    assert rows_of(result.valid_path) == [["id", "amount", "note"], ["1", "2", ""], ["3", "4", ""]]
    counts = result.report.rows
    assert (counts.total, counts.valid, counts.rejected) == (3, 2, 1)


# ------------------------------------------------------------------ open schema


def test_open_schema_accepts_any_well_formed_file_and_infers_its_columns(tmp_path: Path) -> None:
    text = (
        "id,price,flag,day,seen_at,label,empty\n"
        "1,2.5,true,2024-01-31,2024-01-31 08:00:00,a,\n"
        "2,3,false,2024-02-01,2024-02-01T09:30:00,b,\n"
    )
    result = validate_file(
        data(tmp_path, text),
        contract(tmp_path, 'mode = "open"', columns=""),
        out_dir=tmp_path / "o",
    )
    assert result.report.outcome == "pass"
    inferred = {c.name: c.type for c in result.report.columns}
    assert inferred == {
        "id": "int",
        "price": "float",
        "flag": "bool",
        "day": "date",
        "seen_at": "timestamp",
        "label": "string",
        "empty": "string",
    }
    assert {c.source for c in result.report.columns} == {"inferred"}
    summary = QualitySummary.from_dict(
        {
            "delivery": {"key": "k", "etag": "e", "size": 1, "run_id": "r"},
            **result.report.to_dict(),
        }
    )
    assert [(c.name, c.type) for c in summary.columns][:2] == [("id", "int"), ("price", "float")]
    assert QualitySummary.from_json(summary.to_json()).columns == summary.columns


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("id,,name\n1,2,3\n", "empty column name at position(s) 2"),
        ("id,id\n1,2\n", "a column name is repeated: 'id'"),
        ("id,Note,note\n1,2,3\n", "differ only in case ('Note', 'note')"),
    ],
)
def test_open_schema_refuses_a_bad_header(tmp_path: Path, text: str, detail: str) -> None:
    report = analyze_file(data(tmp_path, text), contract(tmp_path, 'mode = "open"', columns=""))
    assert report.outcome == "fail"
    assert report.reason is not None
    assert report.reason.code == Reason.DATA_SCHEMA
    assert detail in columns_check(report).detail


def test_open_schema_counts_a_ragged_row_as_malformed(tmp_path: Path) -> None:
    report = analyze_file(
        data(tmp_path, "a,b\n1,2\n3\n4,5\n"), contract(tmp_path, 'mode = "open"', columns="")
    )
    assert report.outcome == "fail"
    assert (report.rows.total, report.rows.malformed) == (3, 1)


def test_open_schema_refuses_bad_encoding(tmp_path: Path) -> None:
    path = tmp_path / "in" / "s.csv"
    path.parent.mkdir()
    path.write_bytes(b"a,b\n1,\xff\n")
    report = analyze_file(path, contract(tmp_path, 'mode = "open"', columns=""))
    assert report.reason is not None
    assert report.reason.code == Reason.DATA_ENCODING


# ------------------------------------------------------------------ parquet


def parquet(tmp_path: Path, sql: str) -> Path:
    import duckdb

    path = tmp_path / "in" / "s.parquet"
    path.parent.mkdir(exist_ok=True)
    with duckdb.connect() as connection:
        connection.execute(f"COPY ({sql}) TO '{path}' (FORMAT parquet)")
    return path


def test_parquet_extra_columns_are_dropped_and_missing_ones_filled(tmp_path: Path) -> None:
    source = parquet(tmp_path, "SELECT 1::BIGINT AS id, 'EU' AS region UNION ALL SELECT 2, 'US'")
    policy = 'extra_columns = "drop"\nmissing_columns = "null"'
    result = validate_file(
        source, contract(tmp_path, policy, top='format = "auto"'), out_dir=tmp_path / "out"
    )
    assert result.report.outcome == "pass"
    assert result.valid_path is not None
    import duckdb

    with duckdb.connect() as connection:
        rows = connection.execute(
            f"SELECT * FROM read_parquet('{result.valid_path}') ORDER BY id"
        ).fetchall()
        names = [d[0] for d in connection.description]
    assert names == ["id", "amount", "note"]
    assert rows == [(1, None, None), (2, None, None)]


def test_parquet_open_schema_infers_from_the_values(tmp_path: Path) -> None:
    source = parquet(tmp_path, "SELECT 1 AS n, 2.5 AS x, 'a' AS s, DATE '2024-01-31' AS d")
    report = analyze_file(
        source, contract(tmp_path, 'mode = "open"', columns="", top='format = "auto"')
    )
    assert report.outcome == "pass"
    assert {c.name: c.type for c in report.columns} == {
        "n": "int",
        "x": "float",
        "s": "string",
        "d": "date",
    }
