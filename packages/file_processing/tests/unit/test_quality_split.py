"""Row-level split: bad rows to <file>.rejected.csv within the contract's limit, else fail."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from etl_core.contracts import Contract, load_contract
from file_processing.quality import validate_file
from file_processing.reasons import Reason

HEADER = "id,qty,note\n"
CHECKS = """
[[checks]]
kind = "range"
column = "qty"
min = 1

[[checks]]
kind = "unique"
column = "id"

[[checks]]
kind = "allowed"
column = "note"
values = ["ok"]
severity = "warn"
"""


def make_contract(tmp_path: Path, limit: str) -> Contract:
    path = tmp_path / "contract.toml"
    path.write_text(
        'dataset = "d"\nsource = "v"\npattern = "d_{date:%Y%m%d}.csv"\n'
        f"max_rejected_fraction = {limit}\n"
        '[[columns]]\nname = "id"\ntype = "int"\nrequired = true\n'
        '[[columns]]\nname = "qty"\ntype = "int"\n'
        '[[columns]]\nname = "note"\n' + CHECKS
    )
    return load_contract(path, environ={})


def write_data(tmp_path: Path, good: int, extra: list[str]) -> Path:
    path = tmp_path / "in" / "d_20240131.csv"
    path.parent.mkdir()
    rows = [f"{n},1,ok\n" for n in range(1, good + 1)]
    path.write_text(HEADER + "".join(rows) + "".join(extra))
    return path


BAD_ROWS = [
    "1001,0,ok\n",  # range:qty
    "1002,2,ok,surplus\n",  # malformed
    "5,3,ok\n",  # duplicates id 5: both rows are rejected
    "1003,x,odd\n",  # type:qty (and the warn-only allowed:note)
]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as stream:
        return list(csv.DictReader(stream))


def test_bad_rows_within_the_limit_are_split_off(tmp_path: Path) -> None:
    contract = make_contract(tmp_path, "5")
    source = write_data(tmp_path, 10, BAD_ROWS)
    result = validate_file(source, contract, out_dir=tmp_path / "out")
    report = result.report
    assert report.outcome == "pass"
    assert report.split
    assert (report.rows.total, report.rows.rejected, report.rows.valid) == (14, 5, 9)
    assert result.valid_path == tmp_path / "out" / "d_20240131.csv"
    assert result.rejected_path == tmp_path / "out" / "d_20240131.csv.rejected.csv"

    valid = result.valid_path.read_text().splitlines()
    assert valid[0] == "id,qty,note"
    assert [line.split(",")[0] for line in valid[1:]] == [
        "1",
        "2",
        "3",
        "4",
        "6",
        "7",
        "8",
        "9",
        "10",
    ]

    rejected = read_csv(result.rejected_path)
    assert [r["_line"] for r in rejected] == ["6", "12", "13", "14", "15"]
    assert [r["_failed_check"] for r in rejected] == [
        "unique:id",
        "range:qty",
        "malformed",
        "unique:id",
        "type:qty",
    ]
    assert rejected[2]["_raw"] == "1002,2,ok,surplus"
    assert rejected[4] == {
        "id": "1003",
        "qty": "x",
        "note": "odd",
        "_line": "15",
        "_failed_check": "type:qty",
        "_raw": "",
    }
    assert source.read_text().count("\n") == 15  # the input is left as it was


def test_bad_rows_above_the_limit_fail_the_whole_file(tmp_path: Path) -> None:
    contract = make_contract(tmp_path, "4")
    source = write_data(tmp_path, 10, BAD_ROWS)
    out = tmp_path / "out"
    result = validate_file(source, contract, out_dir=out)
    assert result.report.outcome == "fail"
    assert not result.report.split
    assert (result.valid_path, result.rejected_path) == (None, None)
    assert result.report.reason is not None
    # Records that do not split come first, then values that do not parse.
    assert result.report.reason.code == Reason.DATA_PARSE_ERROR
    assert "5 of 14 rows fail, above the limit of 4 rows" in result.report.reason.message
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(("limit", "outcome"), [('"10%"', "pass"), ('"9.9%"', "fail")])
def test_percent_limit_is_of_the_data_rows(tmp_path: Path, limit: str, outcome: str) -> None:
    contract = make_contract(tmp_path, limit)
    source = write_data(tmp_path, 9, ["1001,0,ok\n"])  # 1 bad row of 10
    result = validate_file(source, contract, out_dir=tmp_path / "out")
    assert result.report.outcome == outcome
    assert result.report.rows.rejected == 1


def test_without_failures_the_input_is_the_valid_file(tmp_path: Path) -> None:
    contract = make_contract(tmp_path, "0")
    source = write_data(tmp_path, 3, ["4,1,odd\n"])  # only a warn check fails
    result = validate_file(source, contract, out_dir=tmp_path / "out")
    assert result.report.outcome == "pass"
    assert not result.report.split
    assert (result.valid_path, result.rejected_path) == (source, None)


def test_file_level_failure_is_never_split(tmp_path: Path) -> None:
    contract = make_contract(tmp_path, '"50%"')
    path = tmp_path / "c.toml"
    path.write_text(
        Path(contract.origin).read_text() + '\n[[checks]]\nkind = "row_count"\nmin = 100\n'
    )
    contract = load_contract(path, environ={})
    source = write_data(tmp_path, 3, ["4,0,ok\n"])
    result = validate_file(source, contract, out_dir=tmp_path / "out")
    assert result.report.outcome == "fail"
    assert result.report.reason is not None
    assert result.report.reason.code == Reason.DATA_QUALITY
    assert result.valid_path is None


def test_output_directory_must_differ_from_the_input_directory(tmp_path: Path) -> None:
    contract = make_contract(tmp_path, "0")
    source = write_data(tmp_path, 1, [])
    with pytest.raises(ValueError, match="out_dir must differ"):
        validate_file(source, contract, out_dir=source.parent)


def test_split_valid_rows_are_written_in_the_contracts_own_dialect(tmp_path: Path) -> None:
    path = tmp_path / "contract.toml"
    path.write_text(
        'dataset = "d"\nsource = "v"\npattern = "d_{date:%Y%m%d}.csv"\n'
        "max_rejected_fraction = 1\n"
        '[parse]\ndelimiter = ";"\nescape = "\\\\"\nheader = false\nnull_values = ["NA"]\n'
        '[[columns]]\nname = "id"\ntype = "int"\n'
        '[[columns]]\nname = "qty"\ntype = "int"\n'
        '[[columns]]\nname = "note"\n'
        '[[checks]]\nkind = "range"\ncolumn = "qty"\nmin = 1\n'
    )
    contract = load_contract(path, environ={})
    source = tmp_path / "in" / "d_20240131.csv"
    source.parent.mkdir()
    source.write_text('1;5;"say \\"hi\\""\n2;NA;"a;b"\n3;0;ok\n')
    first = validate_file(source, contract, out_dir=tmp_path / "out")
    assert first.report.split
    assert first.valid_path is not None
    # The valid file, read again with the same contract, holds the same two rows.
    again = validate_file(first.valid_path, contract, out_dir=tmp_path / "again")
    assert again.report.outcome == "pass", again.report.reason
    assert (again.report.rows.total, again.report.rows.rejected) == (2, 0)
