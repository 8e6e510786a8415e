"""Where a partition date comes from: the file name, a folder of the path, or the arrival time."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from etl_core.contracts import ContractError, FilePattern, PatternError, load_contracts

CONTRACT = """\
dataset = "{dataset}"
source = "{source}"
pattern = "{pattern}"
{extra}

[[columns]]
name = "id"
"""


def config(tmp_path: Path, *contracts: dict[str, str]) -> Path:
    folder = tmp_path / "datasets"
    folder.mkdir(parents=True, exist_ok=True)
    for fields in contracts:
        text = CONTRACT.format(**{"extra": "", "source": "vendor", **fields})
        (folder / f"{fields['dataset']}.toml").write_text(text)
    return tmp_path


# ------------------------------------------------------------------ path


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("{date:%Y-%m-%d}/report.csv", "2026-11-01/report.csv", date(2026, 11, 1)),
        ("daily/{date:%Y%m%d}/*.csv", "daily/20261101/stock_eu.csv", date(2026, 11, 1)),
        ("{date:%Y/%m/%d}/report.csv", "2026/11/01/report.csv", date(2026, 11, 1)),
        ("{date:%Y-%m-%d}/report.csv", "2026-02-30/report.csv", None),  # not a calendar date
        ("{date:%Y-%m-%d}/report.csv", "report.csv", None),
        ("{date:%Y-%m-%d}/report.csv", "2026-11-01/x/report.csv", None),
        ("{date:%Y-%m-%d}/*.csv", "2026-11-01/a/b.csv", None),  # * never crosses '/'
    ],
)
def test_path_pattern_takes_the_date_from_a_folder(
    pattern: str, path: str, expected: date | None
) -> None:
    assert FilePattern(pattern, "path").match(path) == expected


def test_path_pattern_needs_its_date_in_a_folder() -> None:
    with pytest.raises(PatternError, match="must be in a folder"):
        FilePattern("reports/report_{date:%Y%m%d}.csv", "path")


@pytest.mark.parametrize(
    "pattern",
    ["/{date:%Y%m%d}/a.csv", "{date:%Y%m%d}//a.csv", "../{date:%Y%m%d}/a.csv", "{date:%Y%m%d}/a/"],
)
def test_path_pattern_refuses_empty_dot_and_dotdot_folders(pattern: str) -> None:
    with pytest.raises(PatternError, match=r"empty, '\.' or '\.\.' folder"):
        FilePattern(pattern, "path")


def test_name_pattern_still_refuses_folders_and_names_the_alternative() -> None:
    with pytest.raises(PatternError, match="date_from = 'path'"):
        FilePattern("{date:%Y%m%d}/report.csv")


# ------------------------------------------------------------------ arrival


def test_arrival_pattern_dates_by_last_modified_in_the_contract_time_zone() -> None:
    pattern = FilePattern("report.csv", "arrival", "Europe/Berlin")
    late_evening_utc = datetime(2026, 10, 31, 23, 30, tzinfo=UTC)  # 00:30 on Nov 1 in Berlin
    assert pattern.match("report.csv", late_evening_utc) == date(2026, 11, 1)
    assert FilePattern("report.csv", "arrival").match("report.csv", late_evening_utc) == date(
        2026, 10, 31
    )
    assert pattern.match("other.csv", late_evening_utc) is None


def test_arrival_pattern_without_the_arrival_time_is_a_callers_error() -> None:
    with pytest.raises(ValueError, match="last-modified"):
        FilePattern("report.csv", "arrival").match("report.csv")
    naive = datetime(2026, 11, 1, 12)
    with pytest.raises(ValueError, match="timezone-aware"):
        FilePattern("report.csv", "arrival").match("report.csv", naive)


def test_arrival_pattern_holds_no_placeholder() -> None:
    with pytest.raises(PatternError, match="arrival"):
        FilePattern("report_{date:%Y%m%d}.csv", "arrival")


def test_a_dated_pattern_without_placeholder_suggests_arrival() -> None:
    with pytest.raises(PatternError, match="date_from = 'arrival'"):
        FilePattern("report.csv")


def test_expected_path_of_a_day_is_derived_from_the_same_pattern() -> None:
    day = date(2026, 11, 1)
    assert FilePattern("pos_{date:%Y%m%d}.csv*").expected(day) == "pos_20261101.csv*"
    assert FilePattern("{date:%Y/%m/%d}/r.csv", "path").expected(day) == "2026/11/01/r.csv"
    assert FilePattern("exports/*.csv", "arrival").expected(day) == "exports/*.csv"


# ------------------------------------------------------------------ contracts


def test_contracts_route_keys_by_name_path_and_arrival(tmp_path: Path) -> None:
    contracts = load_contracts(
        config(
            tmp_path,
            {"dataset": "by_name", "pattern": "n_{date:%Y%m%d}.csv"},
            {
                "dataset": "by_path",
                "pattern": "{date:%Y-%m-%d}/report.csv",
                "extra": 'date_from = "path"',
            },
            {
                "dataset": "by_arrival",
                "source": "other",
                "pattern": "report.csv",
                "extra": 'date_from = "arrival"\ntimezone = "America/New_York"',
            },
        ),
        environ={},
    )
    arrived = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)  # Oct 31, 23:00 in New York
    found = {
        key: (m[0].dataset, m[1]) if (m := contracts.match(key, arrived)) else None
        for key in (
            "landing/vendor/n_20261101.csv",
            "landing/vendor/2026-11-02/report.csv",
            "landing/other/report.csv",
            "landing/vendor/report.csv",
            "landing/other/sub/report.csv",
        )
    }
    assert found == {
        "landing/vendor/n_20261101.csv": ("by_name", date(2026, 11, 1)),
        "landing/vendor/2026-11-02/report.csv": ("by_path", date(2026, 11, 2)),
        "landing/other/report.csv": ("by_arrival", date(2026, 10, 31)),
        "landing/vendor/report.csv": None,
        "landing/other/sub/report.csv": None,
    }
    assert contracts.find("landing/other/report.csv") is not None
    reason = contracts.why_unmatched("landing/vendor/2026-13-01/report.csv")
    assert "by_path" in reason
    assert "not a calendar date" in reason


def test_overlap_across_a_source_and_a_folder_pattern_is_refused(tmp_path: Path) -> None:
    folder = config(
        tmp_path,
        {
            "dataset": "by_path",
            "pattern": "{date:%Y-%m-%d}/report.csv",
            "extra": 'date_from = "path"',
        },
        {
            "dataset": "by_arrival",
            "source": "vendor/2026-11-01",
            "pattern": "*.csv",
            "extra": 'date_from = "arrival"',
        },
    )
    with pytest.raises(ContractError) as caught:
        load_contracts(folder, environ={})
    (error,) = caught.value.errors
    assert error.field == "pattern"
    assert "could match both" in error.message


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ('date_from = "arrival"\ntimezone = "Mars/Olympus"', "timezone", "unknown time zone"),
        ('date_from = "folder"', "date_from", "'name', 'path', 'arrival'"),
        ('date_from = "arrival"', "pattern", "holds no {date:...} placeholder"),
    ],
)
def test_bad_date_source_is_refused_with_file_line_and_field(
    tmp_path: Path, extra: str, field: str, message: str
) -> None:
    folder = config(tmp_path, {"dataset": "bad", "pattern": "b_{date:%Y%m%d}.csv", "extra": extra})
    with pytest.raises(ContractError) as caught:
        load_contracts(folder, environ={})
    errors = [(e.field, e.message, e.source) for e in caught.value.errors]
    assert [name for name, _, _ in errors][:1] == [field]
    assert message in errors[0][1]
    assert errors[0][2].startswith(str(folder / "datasets" / "bad.toml") + ":")


# ------------------------------------------------------------------ schema policy


@pytest.mark.parametrize(
    ("extra", "columns", "field", "message"),
    [
        ('[schema]\nmode = "open"', True, "columns[0]", "declares no [[columns]]"),
        ('[schema]\nmode = "open"\nextra_columns = "keep"', False, "schema.extra_columns", "open"),
        (
            '[parse]\nheader = false\n[schema]\nextra_columns = "keep"',
            True,
            "schema.extra_columns",
            "parse.header = true",
        ),
        ('[schema]\nextra_columns = "ignore"', True, "schema.extra_columns", "'refuse', 'keep'"),
        (
            '[schema]\nmode = "open"\n[[checks]]\nkind = "sql"\nexpression = "1 = 1"',
            False,
            "checks[0].kind",
            "only row_count",
        ),
    ],
)
def test_bad_schema_policy_is_refused_with_file_line_and_field(
    tmp_path: Path, extra: str, columns: bool, field: str, message: str
) -> None:
    text = f'dataset = "bad"\nsource = "vendor"\npattern = "b_{{date:%Y%m%d}}.csv"\n{extra}\n'
    if columns:
        text += '[[columns]]\nname = "id"\n'
    folder = tmp_path / "datasets"
    folder.mkdir()
    (folder / "bad.toml").write_text(text)
    with pytest.raises(ContractError) as caught:
        load_contracts(tmp_path, environ={})
    errors = [(e.field, e.message, e.source) for e in caught.value.errors]
    assert errors[0][0] == field
    assert message in errors[0][1]
    assert errors[0][2].startswith(str(folder / "bad.toml") + ":")


def test_open_schema_contract_loads_without_columns(tmp_path: Path) -> None:
    folder = tmp_path / "datasets"
    folder.mkdir()
    (folder / "open.toml").write_text(
        'dataset = "open"\nsource = "v"\npattern = "report.csv"\ndate_from = "arrival"\n'
        '[schema]\nmode = "open"\n[[checks]]\nkind = "row_count"\nmin = 1\n'
    )
    (contract,) = load_contracts(tmp_path, environ={})
    assert contract.schema.open
    assert contract.columns == ()
    assert contract.schema.extras("csv") == "refuse"
    assert contract.schema.extras("jsonl") == "keep"


def test_arrival_dates_in_the_freshness_time_zone_when_the_contract_names_none(
    tmp_path: Path,
) -> None:
    extra = 'date_from = "arrival"\n[freshness]\ntimezone = "Asia/Tokyo"'
    folder = config(tmp_path, {"dataset": "tokyo", "pattern": "export.csv", "extra": extra})
    (contract,) = load_contracts(folder, environ={})
    arrived = datetime(2026, 10, 31, 20, 0, tzinfo=UTC)  # 1 November, 05:00 in Tokyo
    assert contract.partition_date("landing/vendor/export.csv", arrived) == date(2026, 11, 1)


def test_two_different_time_zones_in_one_contract_are_refused(tmp_path: Path) -> None:
    extra = (
        'date_from = "arrival"\ntimezone = "Europe/Berlin"\n[freshness]\ntimezone = "Asia/Tokyo"'
    )
    folder = config(tmp_path, {"dataset": "two", "pattern": "export.csv", "extra": extra})
    with pytest.raises(ContractError) as caught:
        load_contracts(folder, environ={})
    (error,) = caught.value.errors
    assert error.field == "timezone"
    assert "one time zone" in error.message
