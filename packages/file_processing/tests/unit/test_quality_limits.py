"""Limits, screens and reasons of the quality engine: what a hostile or awkward file gets.

Over-long records and fields (``data.too_large``), wide files (``data.too_wide``),
records the engine cannot account for, NUL bytes, formula injection, numbers out
of range, CR-only and mixed line breaks, and an engine out of memory (never a
verdict on the data).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from etl_core.contracts import Contract, ContractError, load_contract
from etl_core.units import ByteSize
from file_processing.errors import QualityEngineError
from file_processing.quality import QualitySettings, analyze_file, validate_file
from file_processing.reasons import Reason
from file_processing.report import CheckResult, QualityReport

MIB = 1024 * 1024
HEAD = 'dataset = "notes"\nsource = "vendor"\npattern = "n_{date:%Y%m%d}.csv"\n'
COLUMNS = '[[columns]]\nname = "id"\ntype = "int"\n\n[[columns]]\nname = "note"\n'


def contract(tmp_path: Path, extra: str = "", *, columns: str = COLUMNS, top: str = "") -> Contract:
    path = tmp_path / "notes.toml"
    path.write_text(f"{HEAD}{top}\n{columns}\n{extra}")
    return load_contract(path, environ={})


def data_file(tmp_path: Path, data: bytes, name: str = "n_20260101.csv") -> Path:
    path = tmp_path / "in" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


def check(report: QualityReport, name: str) -> CheckResult:
    (found,) = [c for c in report.checks if c.name == name]
    return found


def code(report: QualityReport) -> Reason | None:
    return report.reason.code if report.reason else None


# ------------------------------------------------------------------ size limits


def test_a_row_over_32_mib_is_quarantined_as_too_large_not_lost(tmp_path: Path) -> None:
    data = b"id,note\n1,a\n2," + b"x" * (33 * MIB) + b"\n3,c\n"
    source = data_file(tmp_path, data)
    result = validate_file(source, contract(tmp_path), out_dir=tmp_path / "out")
    assert result.report.outcome == "fail"
    assert code(result.report) == Reason.DATA_TOO_LARGE
    assert result.report.reason is not None
    assert "line 3" in result.report.reason.message
    assert "max_record_bytes" in result.report.reason.message
    assert (result.valid_path, result.rejected_path) == (None, None)
    assert source.stat().st_size == len(data)


def test_a_field_over_the_field_limit_is_named(tmp_path: Path) -> None:
    data = b'id,note\n1,a\n2,"' + b"x\n" * (6 * MIB) + b'"\n'
    report = analyze_file(data_file(tmp_path, data), contract(tmp_path))
    assert code(report) == Reason.DATA_TOO_LARGE
    assert report.reason is not None
    assert "field" in report.reason.message
    assert "line 3" in report.reason.message


def test_fields_of_a_few_mib_are_read_whole_not_malformed(tmp_path: Path) -> None:
    data = b"id,note\n1,a\n2," + b"x" * (3 * MIB) + b"\n3,c\n"
    report = analyze_file(data_file(tmp_path, data), contract(tmp_path))
    assert report.outcome == "pass"
    assert (report.rows.total, report.rows.malformed, report.rows.valid) == (3, 0, 3)


def test_the_contract_may_lower_the_limits_but_not_raise_them(tmp_path: Path) -> None:
    data = b"id,note\n1," + b"x" * 2000 + b"\n"
    lowered = contract(tmp_path, top="[parse]\nmax_field_bytes = 1000\n")
    assert code(analyze_file(data_file(tmp_path, data), lowered)) == Reason.DATA_TOO_LARGE

    raised = contract(tmp_path, top='[parse]\nmax_field_bytes = "1GiB"\n')
    settings = QualitySettings(max_field_bytes=ByteSize(1000))
    report = analyze_file(data_file(tmp_path, data), raised, settings=settings)
    assert code(report) == Reason.DATA_TOO_LARGE


def test_a_zero_size_limit_in_a_contract_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match=r"parse\.max_record_bytes"):
        contract(tmp_path, top="[parse]\nmax_record_bytes = 0\n")


# ------------------------------------------------------------------ wide files


def test_ten_thousand_columns_are_refused_up_front_as_too_wide(tmp_path: Path) -> None:
    header = ",".join(f"c{i}" for i in range(10_000))
    row = ",".join("x" for _ in range(10_000))
    data = f"{header}\n{row}\n{row}\n".encode()
    report = analyze_file(data_file(tmp_path, data), contract(tmp_path))
    assert code(report) == Reason.DATA_TOO_WIDE
    assert report.reason is not None
    assert "10000 fields" in report.reason.message
    assert "max_columns" in report.reason.message


def test_an_engine_out_of_memory_is_an_error_of_the_run_not_a_verdict(tmp_path: Path) -> None:
    names = [f"c{i}" for i in range(400)]
    columns = "".join(f'[[columns]]\nname = "{n}"\n' for n in names)
    data = (",".join(names) + "\n" + ",".join("x" for _ in names) + "\n").encode()
    settings = QualitySettings(memory_limit=ByteSize("8MiB"), threads=1)
    with pytest.raises(QualityEngineError, match="quality_memory_limit") as raised:
        analyze_file(
            data_file(tmp_path, data), contract(tmp_path, columns=columns), settings=settings
        )
    assert raised.value.file == "n_20260101.csv"


# ------------------------------------------------------------------ line breaks and records


def test_a_cr_only_file_has_its_header_read(tmp_path: Path) -> None:
    report = analyze_file(data_file(tmp_path, b"id,note\r1,a\r2,b\r"), contract(tmp_path))
    assert report.outcome == "pass"
    assert report.rows.total == 2


def test_mixed_line_breaks_are_a_parse_error_that_says_so(tmp_path: Path) -> None:
    data = b"id,note\r\n1,a\n2,b\r\n"
    report = analyze_file(data_file(tmp_path, data), contract(tmp_path))
    assert code(report) == Reason.DATA_PARSE_ERROR
    assert "mixes CRLF and LF line breaks" in check(report, "readable").detail


def test_ragged_rows_are_a_parse_error(tmp_path: Path) -> None:
    report = analyze_file(data_file(tmp_path, b"id,note\n1,a,b\n2,b\n"), contract(tmp_path))
    assert code(report) == Reason.DATA_PARSE_ERROR
    assert report.rows.malformed == 1
    assert check(report, "records").passed


def test_a_missing_column_is_a_schema_error(tmp_path: Path) -> None:
    report = analyze_file(data_file(tmp_path, b"id,text\n1,a\n"), contract(tmp_path))
    assert code(report) == Reason.DATA_SCHEMA


def test_a_value_of_the_wrong_type_is_a_type_error(tmp_path: Path) -> None:
    report = analyze_file(data_file(tmp_path, b"id,note\nx1,a\n"), contract(tmp_path))
    assert code(report) == Reason.DATA_TYPE


def test_a_number_its_column_cannot_hold_is_out_of_range(tmp_path: Path) -> None:
    columns = COLUMNS + '\n[[columns]]\nname = "amount"\ntype = "decimal(5,2)"\n'
    data = b"id,note,amount\n99999999999999999999,a,1.50\n2,b,123456.00\n3,c,abc\n"
    report = analyze_file(data_file(tmp_path, data), contract(tmp_path, columns=columns))
    assert code(report) == Reason.DATA_NUMBER_RANGE
    assert check(report, "number_range:id").failed_count == 1
    assert check(report, "number_range:amount").failed_count == 1
    assert check(report, "type:amount").failed_count == 1  # 'abc' is no number at all
    assert check(report, "type:id").passed


# ------------------------------------------------------------------ screens


def test_nul_bytes_in_text_are_refused_by_default(tmp_path: Path) -> None:
    report = analyze_file(data_file(tmp_path, b"id,note\n1,a\x00b\n2,c\n"), contract(tmp_path))
    assert code(report) == Reason.DATA_QUALITY
    nul = check(report, "nul_bytes")
    assert (nul.severity, nul.failed_count) == ("error", 1)
    assert nul.samples[0].line == 2


def test_nul_bytes_can_be_flagged_only(tmp_path: Path) -> None:
    flagged = contract(tmp_path, top='[parse]\nnul_bytes = "flag"\n')
    report = analyze_file(data_file(tmp_path, b"id,note\n1,a\x00b\n"), flagged)
    assert report.outcome == "pass"
    nul = check(report, "nul_bytes")
    assert (nul.severity, nul.passed, nul.failed_count) == ("warn", False, 1)


def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every SQL statement the analyses run from now on."""
    from file_processing import quality

    seen: list[str] = []
    run = quality._Analysis._sql

    def recording(self: quality._Analysis, sql: str, parameters: object = ()) -> object:
        seen.append(sql)
        return run(self, sql, parameters)  # type: ignore[arg-type]

    monkeypatch.setattr(quality._Analysis, "_sql", recording)
    return seen


def test_a_csv_without_nul_is_not_screened_by_the_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = statements(monkeypatch)
    report = analyze_file(data_file(tmp_path, b"id,note\n1,a\n2,b\n"), contract(tmp_path))
    nul = check(report, "nul_bytes")
    assert (nul.passed, nul.failed_count) == (True, 0)
    assert seen
    assert not any("chr(0)" in sql for sql in seen)


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_a_nul_in_the_last_bytes_is_still_screened(tmp_path: Path, encoding: str) -> None:
    latin = contract(tmp_path, top=f'[parse]\nencoding = "{encoding}"\n')
    body = b"id,note\n" + b"1,abc\n" * 300_000 + "2,\u00e9\x00".encode(encoding)  # 2nd chunk
    report = analyze_file(data_file(tmp_path, body), latin)
    nul = check(report, "nul_bytes")
    assert (nul.passed, nul.failed_count) == (False, 1)
    assert nul.samples[0].line == 300_002


def test_a_nul_escaped_in_json_is_still_screened(tmp_path: Path) -> None:
    jsonl = contract(tmp_path, top='format = "jsonl"\n')
    report = analyze_file(
        data_file(tmp_path, b'{"id": 1, "note": "a\\u0000b"}\n', "n_20260101.jsonl"), jsonl
    )
    assert check(report, "nul_bytes").failed_count == 1


FORMULA = '[[checks]]\nkind = "formula_injection"\ncolumn = "note"\nseverity = "SEVERITY"\n'


@pytest.mark.parametrize(
    "value", ["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tx", '"\rx"']
)
def test_formula_injection_catches_every_dangerous_first_character(
    tmp_path: Path, value: str
) -> None:
    checks = FORMULA.replace("SEVERITY", "error")
    data = f"id,note\n1,plain\n2,{value}\n".encode()
    report = analyze_file(data_file(tmp_path, data), contract(tmp_path, checks))
    result = check(report, "formula_injection:note")
    assert (result.failed_count, result.samples[0].line) == (1, 3)
    assert code(report) == Reason.DATA_QUALITY


def test_formula_injection_leaves_plain_numbers_alone(tmp_path: Path) -> None:
    checks = FORMULA.replace("SEVERITY", "error")
    data = b"id,note\n1,-12.5\n2,+3\n3,a-b\n4,\n"
    report = analyze_file(data_file(tmp_path, data), contract(tmp_path, checks))
    assert check(report, "formula_injection:note").passed


def test_formula_injection_as_a_warning_reports_and_passes(tmp_path: Path) -> None:
    checks = FORMULA.replace("SEVERITY", "warn")
    data = b'id,note\n1,=HYPERLINK("x")\n'
    report = analyze_file(data_file(tmp_path, data), contract(tmp_path, checks))
    assert report.outcome == "pass"
    assert not check(report, "formula_injection:note").passed


def test_formula_injection_rows_are_split_off_within_the_reject_limit(tmp_path: Path) -> None:
    checks = FORMULA.replace("SEVERITY", "error")
    lenient = contract(tmp_path, checks, top='max_rejected_fraction = "50%"\n')
    source = data_file(tmp_path, b"id,note\n1,ok\n2,=cmd\n3,fine\n")
    result = validate_file(source, lenient, out_dir=tmp_path / "out")
    assert result.report.split
    assert result.valid_path is not None
    assert result.rejected_path is not None
    assert "=cmd" not in result.valid_path.read_text()
    assert "=cmd" in result.rejected_path.read_text()


def test_formula_injection_on_a_number_column_is_refused(tmp_path: Path) -> None:
    checks = '[[checks]]\nkind = "formula_injection"\ncolumn = "id"\n'
    with pytest.raises(ContractError, match="applies to string columns"):
        contract(tmp_path, checks)


# ------------------------------------------------------------------ JSON Lines


def test_json_lines_records_are_counted_and_accounted_for(tmp_path: Path) -> None:
    jsonl = contract(tmp_path, top='format = "jsonl"\n')
    data = b'{"id": 1, "note": "a"}\n\n  \n{"id": 2, "note": "b"}\r\n{"id": 3, "note": "c"}'
    report = analyze_file(data_file(tmp_path, data, "n_20260101.jsonl"), jsonl)
    assert report.outcome == "pass"
    assert report.rows.total == 3
    assert check(report, "records").detail == "3 records in the file, 3 read"


def test_an_over_long_json_line_is_too_large(tmp_path: Path) -> None:
    jsonl = contract(tmp_path, top='format = "jsonl"\n[parse]\nmax_record_bytes = 1000\n')
    data = b'{"id": 1, "note": "a"}\n{"id": 2, "note": "' + b"x" * 2000 + b'"}\n'
    report = analyze_file(data_file(tmp_path, data, "n_20260101.jsonl"), jsonl)
    assert code(report) == Reason.DATA_TOO_LARGE
    assert report.reason is not None
    assert "line 2" in report.reason.message


def test_a_corrupt_parquet_file_is_a_parse_error_not_a_crash(tmp_path: Path) -> None:
    parquet = contract(tmp_path, top='format = "parquet"\n')
    report = analyze_file(data_file(tmp_path, b"PAR1" + b"x" * 100 + b"PAR1"), parquet)
    assert code(report) == Reason.DATA_PARSE_ERROR
    assert check(report, "readable").detail.startswith("unreadable")


def test_a_parquet_file_wider_than_max_columns_is_too_wide(tmp_path: Path) -> None:
    import duckdb

    source = tmp_path / "in" / "n_20260101.parquet"
    source.parent.mkdir()
    columns = ", ".join(f"{i} AS c{i}" for i in range(50))
    with duckdb.connect() as connection:
        connection.execute(f"COPY (SELECT {columns}) TO '{source}' (FORMAT parquet)")
    parquet = contract(tmp_path, top='format = "parquet"\n')
    report = analyze_file(source, parquet, settings=QualitySettings(max_columns=20))
    assert code(report) == Reason.DATA_TOO_WIDE
    assert "50 columns" in check(report, "width").detail
