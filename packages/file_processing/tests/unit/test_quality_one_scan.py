"""One checking pass: the unique check settled by key hashes (exact grouping only when
a hash repeats) and the report naming the profile's approximate and omitted statistics.

A tiny hash (the ``KEY_HASH_MODULUS`` seam) makes distinct values collide: the exact
grouping must then find the real duplicates and never report a collision as one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from etl_core.contracts import Contract, load_contract
from file_processing import checks as check_sql
from file_processing import quality
from file_processing.quality import QualitySettings, analyze_file, validate_file
from file_processing.report import CheckResult, QualityReport

CONTRACT = """\
dataset = "sales"
source = "vendor"
pattern = "s_{date:%Y%m%d}.csv"
max_rejected_fraction = "50%"

[[columns]]
name = "id"
required = true

[[columns]]
name = "code"
type = "int"

[[checks]]
kind = "unique"
column = "id"

[[checks]]
kind = "unique"
column = "code"
"""


def contract(tmp_path: Path) -> Contract:
    path = tmp_path / "contract.toml"
    path.write_text(CONTRACT)
    return load_contract(path, environ={})


def data(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "in" / "s.csv"
    path.parent.mkdir(exist_ok=True)
    path.write_text("id,code\n" + "".join(rows))
    return path


def unique(report: QualityReport, column: str) -> CheckResult:
    (found,) = [c for c in report.checks if c.name == f"unique:{column}"]
    return found


@pytest.fixture(params=[None, 2, 1], ids=["64-bit", "two-hashes", "one-hash"])
def modulus(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int | None:
    """Key hashes as in production, or so small that distinct values share them."""
    monkeypatch.setattr(check_sql, "KEY_HASH_MODULUS", request.param)
    return request.param


def test_distinct_values_pass_even_when_their_hashes_collide(
    tmp_path: Path, modulus: int | None
) -> None:
    rows = [f"k{i},{i}\n" for i in range(40)]
    report = analyze_file(data(tmp_path, rows), contract(tmp_path))
    assert report.passed
    for column in ("id", "code"):
        assert unique(report, column).passed
        assert unique(report, column).failed_count == 0


def test_exact_duplicates_are_found_among_colliding_hashes(
    tmp_path: Path, modulus: int | None
) -> None:
    rows = [f"k{i},{i}\n" for i in range(20)] + ["k3,100\n", "k7,101\n", "k3,102\n"]
    report = analyze_file(data(tmp_path, rows), contract(tmp_path))
    ids = unique(report, "id")
    assert (ids.passed, ids.failed_count) == (False, 5)  # every row of k3 (3) and k7 (2)
    assert [s.line for s in ids.samples] == [5, 9, 22, 23, 24]
    assert unique(report, "code").passed


def test_nulls_are_no_duplicates_and_typed_values_compare_as_values(
    tmp_path: Path, modulus: int | None
) -> None:
    rows = ["a,\n", "b,\n", "c,07\n", "d,7\n", "e,8\n"]
    report = analyze_file(data(tmp_path, rows), contract(tmp_path))
    codes = unique(report, "code")
    assert (codes.passed, codes.failed_count) == (False, 2)  # 07 and 7 are the same int
    assert [s.line for s in codes.samples] == [4, 5]


def test_split_is_the_same_whichever_way_unique_is_settled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [f"k{i},{i}\n" for i in range(10)] + ["k4,50\n"]
    source = data(tmp_path, rows)
    outputs = []
    for modulus, row_bytes in ((None, 8), (1, 8), (None, 2**40)):
        monkeypatch.setattr(check_sql, "KEY_HASH_MODULUS", modulus)
        # Key hashes too large for the memory limit: the column is grouped in its own pass.
        monkeypatch.setattr(quality, "_KEY_HASH_BYTES", row_bytes)
        out = tmp_path / f"out-{modulus}-{row_bytes}"
        result = validate_file(source, contract(tmp_path), out_dir=out)
        assert result.valid_path is not None
        assert result.rejected_path is not None
        outputs.append(
            (
                result.report.rows,
                unique(result.report, "id").failed_count,
                result.valid_path.read_text(),
                result.rejected_path.read_text(),
            )
        )
    assert outputs[0] == outputs[1] == outputs[2]
    rows_counted, failed, _, rejected = outputs[0]
    assert (rows_counted.rejected, failed) == (2, 2)
    assert rejected.count("unique:id") == 2


def test_values_are_grouped_only_when_a_key_hash_repeats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements: list[str] = []
    run = quality._Analysis._sql

    def spy(self: quality._Analysis, sql: str, parameters: object = ()) -> object:
        statements.append(sql)
        return run(self, sql, parameters)  # type: ignore[arg-type]

    monkeypatch.setattr(quality._Analysis, "_sql", spy)
    source, rules = data(tmp_path, [f"k{i},{i}\n" for i in range(30)]), contract(tmp_path)
    analyze_file(source, rules)
    assert not [s for s in statements if "GROUP BY" in s]  # one pass: hashes were distinct
    monkeypatch.setattr(check_sql, "KEY_HASH_MODULUS", 1)
    analyze_file(source, rules)
    assert len([s for s in statements if "GROUP BY" in s]) == 2  # each column grouped once


def test_report_names_approximate_and_omitted_profile_statistics(tmp_path: Path) -> None:
    source, rules = data(tmp_path, ["a,1\n", "a,2\n", "b,3\n"]), contract(tmp_path)
    full = analyze_file(source, rules)
    assert (full.profile_approximate, full.profile_omitted) == (
        ["distinct_count", "top_values"],
        [],
    )
    assert next(p for p in full.profile if p.name == "id").top_values == ["a", "b"]
    lean = analyze_file(source, rules, settings=QualitySettings(top_values=0))
    assert (lean.profile_approximate, lean.profile_omitted) == (["distinct_count"], ["top_values"])
    assert all(p.top_values == [] for p in lean.profile)
    assert [(p.null_fraction, p.min, p.max) for p in lean.profile] == [
        (p.null_fraction, p.min, p.max) for p in full.profile
    ]
