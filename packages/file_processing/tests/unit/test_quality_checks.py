"""Quality analysis of real files: each check's pass and fail path, with samples and lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from etl_core.contracts import Contract, load_contract
from file_processing.quality import QualitySettings, analyze_file
from file_processing.reasons import Reason
from file_processing.report import CheckResult, QualityReport

HEADER = "id,store,qty,price,paid,sold_on\n"
GOOD_ROWS = [
    "1,S1,2,9.99,card,2024-01-31\n",
    "2,S2,1,0.50,cash,2024-01-31\n",
    "3,S1,5,12.00,card,2024-02-01\n",
]

COLUMNS = """\
[[columns]]
name = "id"
type = "int"
required = true

[[columns]]
name = "store"

[[columns]]
name = "qty"
type = "int"

[[columns]]
name = "price"
type = "decimal"
scale = 2

[[columns]]
name = "paid"

[[columns]]
name = "sold_on"
type = "date"
"""


def make_contract(tmp_path: Path, checks: str = "", top: str = "") -> Contract:
    text = (
        'dataset = "sales"\nsource = "vendor"\npattern = "s_{date:%Y%m%d}.csv"\n'
        f"{top}\n{COLUMNS}\n{checks}"
    )
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "contract.toml"
    path.write_text(text)
    return load_contract(path, environ={})


def write_data(tmp_path: Path, rows: list[str], header: str = HEADER, name: str = "s.csv") -> Path:
    path = tmp_path / "data" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(header + "".join(rows))
    return path


def check(report: QualityReport, name: str) -> CheckResult:
    (found,) = [c for c in report.checks if c.name == name]
    return found


def analyze(tmp_path: Path, rows: list[str], checks: str = "", **kwargs: str) -> QualityReport:
    contract = make_contract(tmp_path, checks)
    return analyze_file(write_data(tmp_path, rows, **kwargs), contract)


# ------------------------------------------------------------------ clean files


def test_clean_file_passes_with_counts_and_profile(tmp_path: Path) -> None:
    report = analyze(tmp_path, [*GOOD_ROWS, "4,S3,,3.10,card,\n"])
    assert report.outcome == "pass"
    assert report.reason is None
    assert (report.rows.total, report.rows.valid, report.rows.malformed) == (4, 4, 0)
    assert all(c.passed for c in report.checks)
    qty = next(p for p in report.profile if p.name == "qty")
    assert (qty.null_fraction, qty.min, qty.max) == (0.25, "1", "5")
    store = next(p for p in report.profile if p.name == "store")
    assert store.distinct_count == 3
    assert store.top_values[0] == "S1"
    sold_on = next(p for p in report.profile if p.name == "sold_on")
    assert (sold_on.min, sold_on.max) == ("2024-01-31", "2024-02-01")
    assert report.engine.startswith("duckdb ")


def test_report_is_json_serialisable(tmp_path: Path) -> None:
    report = analyze(tmp_path, [*GOOD_ROWS, "x,S1,1,1,card,2024-01-01\n"])
    data = json.loads(report.to_json())
    assert data["outcome"] == "fail"
    assert data["reason"]["code"] == "data.type"
    assert data["checks"][0]["name"] == "columns"


def test_columns_may_come_in_another_order(tmp_path: Path) -> None:
    header = "sold_on,paid,price,qty,store,id\n"
    rows = ["2024-01-31,card,9.99,2,S1,1\n", "2024-01-31,cash,0.50,x,S2,2\n"]
    report = analyze(tmp_path, rows, header=header)
    qty = check(report, "type:qty")
    assert (qty.passed, qty.failed_count) == (False, 1)
    assert qty.samples[0].line == 3
    assert qty.samples[0].values["qty"] == "x"
    assert check(report, "type:id").passed


# ------------------------------------------------------------------ schema


def test_missing_and_unexpected_columns_fail_the_schema(tmp_path: Path) -> None:
    report = analyze(tmp_path, ["1,S1,2,9.99,2024-01-31,x\n"], header="id,store,qty,price,day,x\n")
    assert report.outcome == "fail"
    assert report.reason is not None
    assert report.reason.code == Reason.DATA_SCHEMA
    columns = check(report, "columns")
    assert not columns.passed
    assert "missing 'paid', 'sold_on'" in columns.detail
    assert "unexpected 'day', 'x'" in columns.detail


def test_unparsable_values_fail_their_type_check_with_lines(tmp_path: Path) -> None:
    rows = [*GOOD_ROWS, "4,S1,1.5,9.99,card,2024-01-31\n", "5,S1,1,abc,card,2024-02-30\n"]
    report = analyze(tmp_path, rows)
    assert report.outcome == "fail"
    assert report.reason is not None
    assert report.reason.code == Reason.DATA_TYPE
    qty = check(report, "type:qty")
    assert (qty.failed_count, [s.line for s in qty.samples]) == (1, [5])
    assert qty.samples[0].values["qty"] == "1.5"
    assert [s.line for s in check(report, "type:price").samples] == [6]
    assert [s.line for s in check(report, "type:sold_on").samples] == [6]


def test_malformed_rows_are_counted_with_line_numbers(tmp_path: Path) -> None:
    rows = [
        GOOD_ROWS[0],
        "2,S2,1\n",  # too few columns: line 3
        GOOD_ROWS[1],
        "3,S1,5,12.00,card,2024-02-01,extra\n",  # too many: line 5
        "4,S1,x,12.00,card,2024-02-01\n",  # parses, fails type:qty on line 6
    ]
    report = analyze(tmp_path, rows)
    assert report.outcome == "fail"
    assert (report.rows.total, report.rows.malformed) == (5, 2)
    assert [m.line for m in report.malformed] == [3, 5]
    assert report.malformed[0].text == "2,S2,1"
    assert "Expected Number of Columns: 6" in report.malformed[0].error
    offset = report.malformed[0].byte_offset
    assert offset == len((HEADER + GOOD_ROWS[0]).encode())
    malformed = check(report, "malformed")
    assert (malformed.passed, malformed.failed_count) == (False, 2)
    # rows after malformed ones keep their true line numbers
    assert [s.line for s in check(report, "type:qty").samples] == [6]


def test_non_utf8_byte_is_reported_with_its_offset_and_line(tmp_path: Path) -> None:
    contract = make_contract(tmp_path)
    path = tmp_path / "s.csv"
    head = (HEADER + GOOD_ROWS[0]).encode()
    path.write_bytes(head + b"2,S\xff2,1,0.50,cash,2024-01-31\n" + GOOD_ROWS[2].encode())
    report = analyze_file(path, contract)
    assert report.outcome == "fail"
    assert report.reason is not None
    assert report.reason.code == Reason.DATA_ENCODING
    assert report.encoding_error_count == 1
    (issue,) = report.encoding_errors
    assert (issue.byte_offset, issue.line, issue.bytes_hex) == (len(head) + 3, 3, "ff")
    assert f"byte offset {len(head) + 3}" in report.reason.message


def test_encoding_errors_across_chunk_boundaries_have_exact_offsets(tmp_path: Path) -> None:
    contract = make_contract(tmp_path)
    path = tmp_path / "s.csv"
    filler = "1,S1,2,9.99,card,2024-01-31\n" * 40_000  # past the 1 MiB chunk
    prefix = (HEADER + filler).encode() + b"2,S\xc3"  # first byte of a 2-byte sequence
    path.write_bytes(prefix + b"(,1,0.50,cash,2024-01-31\n" + b"3,\xe9\n")
    report = analyze_file(path, contract, settings=QualitySettings(encoding_samples=1))
    assert report.encoding_error_count == 2
    (issue,) = report.encoding_errors
    assert issue.byte_offset == len(prefix) - 1
    assert issue.line == 40_002


def test_latin1_file_is_read_when_the_contract_says_so(tmp_path: Path) -> None:
    contract = make_contract(tmp_path, top='[parse]\nencoding = "latin-1"\n')
    path = tmp_path / "s.csv"
    path.write_bytes((HEADER + "1,Caf\xe9,2,9.99,card,2024-01-31\n").encode("latin-1"))
    report = analyze_file(path, contract)
    assert report.outcome == "pass"
    assert next(p for p in report.profile if p.name == "store").min == "Café"


def test_headerless_file_is_read_in_schema_order(tmp_path: Path) -> None:
    contract = make_contract(tmp_path, top="[parse]\nheader = false\n")
    report = analyze_file(write_data(tmp_path, [*GOOD_ROWS, "x,S,1,1,c,\n"], header=""), contract)
    assert [s.line for s in check(report, "type:id").samples] == [4]


# ------------------------------------------------------------------ checks


@pytest.mark.parametrize(
    ("checks", "name", "bad_rows", "failing_lines"),
    [
        (
            "",
            "not_null:id",
            [",S1,1,1.00,card,2024-01-31\n"],
            [5],
        ),
        (
            '[[checks]]\nkind = "not_null"\ncolumn = "store"\n',
            "not_null:store",
            ["4,,1,1.00,card,2024-01-31\n"],
            [5],
        ),
        (
            '[[checks]]\nkind = "unique"\ncolumn = "id"\n',
            "unique:id",
            ["2,S1,1,1.00,card,2024-01-31\n", "2,S9,1,1.00,card,2024-01-31\n"],
            [3, 5, 6],
        ),
        (
            '[[checks]]\nkind = "range"\ncolumn = "qty"\nmin = 1\n',
            "range:qty",
            ["4,S1,0,1.00,card,2024-01-31\n"],
            [5],
        ),
        (
            '[[checks]]\nkind = "range"\ncolumn = "price"\nmax = "100.00"\n',
            "range:price",
            ["4,S1,1,100.01,card,2024-01-31\n"],
            [5],
        ),
        (
            '[[checks]]\nkind = "range"\ncolumn = "sold_on"\n'
            'min = 2024-01-01\nmax = "2024-12-31"\n',
            "range:sold_on",
            ["4,S1,1,1.00,card,2023-12-31\n"],
            [5],
        ),
        (
            '[[checks]]\nkind = "allowed"\ncolumn = "paid"\nvalues = ["card", "cash"]\n',
            "allowed:paid",
            ["4,S1,1,1.00,bitcoin,2024-01-31\n"],
            [5],
        ),
        (
            '[[checks]]\nkind = "regex"\ncolumn = "store"\npattern = "S\\\\d+"\n',
            "regex:store",
            ["4,S1x,1,1.00,card,2024-01-31\n"],
            [5],
        ),
        (
            '[[checks]]\nname = "total"\nkind = "sql"\nexpression = "qty * price < 100"\n',
            "total",
            ["4,S1,10,15.00,card,2024-01-31\n"],
            [5],
        ),
    ],
)
def test_each_check_passes_on_good_rows_and_fails_on_bad_ones(
    tmp_path: Path, checks: str, name: str, bad_rows: list[str], failing_lines: list[int]
) -> None:
    good = analyze(tmp_path / "good", GOOD_ROWS, checks)
    assert check(good, name).passed
    assert good.outcome == "pass"

    bad = analyze(tmp_path / "bad", [*GOOD_ROWS, *bad_rows], checks)
    result = check(bad, name)
    assert not result.passed
    assert result.failed_count == len(failing_lines)
    assert [s.line for s in result.samples] == failing_lines
    assert bad.outcome == "fail"
    assert bad.reason is not None
    assert bad.reason.code == Reason.DATA_QUALITY
    assert name in bad.reason.message


def test_null_values_pass_value_checks(tmp_path: Path) -> None:
    checks = (
        '[[checks]]\nkind = "range"\ncolumn = "qty"\nmin = 1\n'
        '[[checks]]\nkind = "allowed"\ncolumn = "paid"\nvalues = ["card"]\n'
        '[[checks]]\nkind = "sql"\nexpression = "qty > 0"\n'
    )
    report = analyze(tmp_path, ["1,S1,,1.00,,2024-01-31\n"], checks)
    assert report.outcome == "pass"


def test_sample_values_are_the_text_as_written(tmp_path: Path) -> None:
    checks = '[[checks]]\nkind = "range"\ncolumn = "price"\nmax = 10\n'
    report = analyze(tmp_path, [*GOOD_ROWS, '4,"S,1",1,10.500,card,2024-01-31\n'], checks)
    (sample,) = [s for s in check(report, "range:price").samples if s.line == 5]
    assert sample.values == {
        "id": "4",
        "store": "S,1",
        "qty": "1",
        "price": "10.500",
        "paid": "card",
        "sold_on": "2024-01-31",
    }


def test_samples_are_capped_but_counts_are_complete(tmp_path: Path) -> None:
    rows = [f"{n},S1,0,1.00,card,2024-01-31\n" for n in range(1, 21)]
    contract = make_contract(tmp_path, '[[checks]]\nkind = "range"\ncolumn = "qty"\nmin = 1\n')
    report = analyze_file(
        write_data(tmp_path, rows), contract, settings=QualitySettings(sample_rows=3)
    )
    result = check(report, "range:qty")
    assert (result.failed_count, [s.line for s in result.samples]) == (20, [2, 3, 4])


def test_warn_severity_failure_is_reported_but_passes(tmp_path: Path) -> None:
    checks = '[[checks]]\nkind = "range"\ncolumn = "qty"\nmax = 3\nseverity = "warn"\n'
    report = analyze(tmp_path, GOOD_ROWS, checks)
    result = check(report, "range:qty")
    assert (result.passed, result.failed_count, result.severity) == (False, 1, "warn")
    assert report.outcome == "pass"
    assert report.rows.rejected == 0


@pytest.mark.parametrize(
    ("bounds", "passed"),
    [("min = 3", True), ("min = 4", False), ("max = 3", True), ("max = 2", False)],
)
def test_row_count_bounds(tmp_path: Path, bounds: str, passed: bool) -> None:
    report = analyze(tmp_path, GOOD_ROWS, f'[[checks]]\nkind = "row_count"\n{bounds}\n')
    result = check(report, "row_count")
    assert result.passed is passed
    assert "3 rows" in result.detail
    assert report.outcome == ("pass" if passed else "fail")


def test_empty_file_fails_a_minimum_row_count(tmp_path: Path) -> None:
    report = analyze(tmp_path, [], '[[checks]]\nkind = "row_count"\nmin = 1\n')
    assert report.outcome == "fail"
    assert report.rows.total == 0
    assert not check(report, "row_count").passed


# ------------------------------------------------------------------ other formats


def test_jsonl_file_is_checked(tmp_path: Path) -> None:
    contract = make_contract(tmp_path, top='format = "auto"')
    path = tmp_path / "s.jsonl"
    path.write_text(
        '{"id": 1, "store": "S1", "qty": 2, "price": 9.99, "paid": "card", '
        '"sold_on": "2024-01-31"}\n'
        '{"id": 2, "store": "S1", "qty": "x", "price": 1, "paid": "card", "sold_on": null}\n'
    )
    report = analyze_file(path, contract)
    assert report.format == "jsonl"
    assert [s.line for s in check(report, "type:qty").samples] == [2]


def test_broken_jsonl_line_is_a_malformed_record_with_a_parse_error(tmp_path: Path) -> None:
    contract = make_contract(tmp_path, top='format = "jsonl"')
    path = tmp_path / "s.jsonl"
    path.write_text('{"id": 1}\n{"id": \n')
    report = analyze_file(path, contract)
    assert report.outcome == "fail"
    assert report.reason is not None
    assert report.reason.code == Reason.DATA_PARSE_ERROR
    assert (report.rows.total, report.rows.malformed) == (2, 1)
    assert [m.line for m in report.malformed] == [2]


def test_parquet_file_is_checked_by_content(tmp_path: Path) -> None:
    import duckdb

    contract = make_contract(tmp_path, top='format = "auto"')
    path = tmp_path / "s.bin"
    with duckdb.connect() as connection:
        connection.execute(
            "COPY (SELECT * FROM (VALUES (1, 'S1', 2, 9.99, 'card', DATE '2024-01-31'), "
            "(NULL, 'S2', 1, 0.5, 'cash', NULL)) AS t(id, store, qty, price, paid, sold_on)) "
            f"TO '{path}' (FORMAT parquet)"
        )
    report = analyze_file(path, contract)
    assert report.format == "parquet"
    assert report.rows.total == 2
    assert [s.line for s in check(report, "not_null:id").samples] == [2]
