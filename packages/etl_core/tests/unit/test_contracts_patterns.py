"""File-name patterns: whole-name matching, partition dates, wildcards, overlap detection."""

from __future__ import annotations

from datetime import date

import pytest

from etl_core.contracts.patterns import FilePattern, PatternError


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("pos_{date:%Y%m%d}.csv", "pos_20261101.csv", date(2026, 11, 1)),
        ("pos_{date:%Y%m%d}.csv.zip.pgp", "pos_20261101.csv.zip.pgp", date(2026, 11, 1)),
        ("sales-{date:%Y-%m-%d}.jsonl", "sales-2024-02-29.jsonl", date(2024, 2, 29)),
        ("{date:%d%b%Y}_stock.csv", "03Mar2025_stock.csv", date(2025, 3, 3)),
        ("dump_{date:%Y%j}.csv", "dump_2025032.csv", date(2025, 2, 1)),
        ("pos_*_{date:%Y%m%d}.csv*", "pos_store7_20261101.csv.gz", date(2026, 11, 1)),
        ("pos_{date:%Y%m%d}.csv", "pos_20261101.csv.sha256", None),
        ("pos_{date:%Y%m%d}.csv", "xpos_20261101.csv", None),
        ("pos_{date:%Y%m%d}.csv", "pos_2026110.csv", None),
        ("pos_{date:%Y%m%d}.csv", "pos_20261301.csv", None),  # month 13
        ("pos_{date:%Y%m%d}.csv", "pos_20230229.csv", None),  # not a leap year
        ("pos_{date:%Y%m%d}.csv", "posX20261101.csv", None),
        ("pos_*.{date:%Y%m%d}", "pos_a/b.20261101", None),  # * never crosses '/'
    ],
)
def test_pattern_matches_the_whole_name_and_extracts_the_date(
    pattern: str, name: str, expected: date | None
) -> None:
    assert FilePattern(pattern).match(name) == expected


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("pos.csv", "exactly one {date:<strftime>} placeholder, found 0"),
        ("{date:%Y%m%d}_{date:%Y%m%d}.csv", "exactly one {date:<strftime>} placeholder, found 2"),
        ("pos_{date:%Y%m%d}_{batch}.csv", "braces are only allowed"),
        ("pos_{date:%Y%m%d %Z}.csv", "unsupported strftime directive '%Z'"),
        ("pos_{date:%Y%m}.csv", "must name a day"),
        ("pos/{date:%Y%m%d}.csv", "cannot contain '/'"),
        ("", "non-empty file name"),
    ],
)
def test_invalid_pattern_is_refused_with_the_reason(pattern: str, message: str) -> None:
    with pytest.raises(PatternError, match=message.replace("{", r"\{").replace("}", r"\}")):
        FilePattern(pattern)


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        ("pos_{date:%Y%m%d}.csv", "pos_{date:%Y%m%d}.csv", True),
        ("pos_{date:%Y%m%d}.csv", "pos_{date:%Y%m%d}.csv.zip", False),
        ("pos_{date:%Y%m%d}.csv*", "pos_{date:%Y%m%d}.csv.zip", True),
        ("pos_*{date:%Y%m%d}*", "pos_{date:%Y%m%d}.csv", True),
        ("*{date:%Y%m%d}.csv", "pos_{date:%Y%m%d}.jsonl", False),
        ("pos_{date:%Y%m%d}.csv", "pos_{date:%Y-%m-%d}.csv", False),
        ("pos_{date:%Y%m%d}.csv", "pos_20{date:%y%m%d}.csv", True),
        ("pos_{date:%Y%m%d}.csv", "pos_2026{date:%y%m%d}.csv", False),  # 8 vs 10 digits
        ("x{date:%d%b%Y}.csv", "x{date:%d%m%Y}.csv", False),  # letters never meet digits
        ("a*b_{date:%Y%m%d}", "*c*_{date:%Y%m%d}", True),
    ],
)
def test_overlap_is_decided_exactly(first: str, second: str, overlap: bool) -> None:
    a, b = FilePattern(first), FilePattern(second)
    assert a.overlaps(b) is overlap
    assert b.overlaps(a) is overlap
