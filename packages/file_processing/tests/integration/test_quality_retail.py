"""The retail example contract over a generated 200k-row day, with bad rows spliced in."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path
from types import ModuleType

from etl_core.contracts import load_contracts
from file_processing.quality import QualitySettings, validate_file

ROOT = Path(__file__).resolve().parents[4]
ROWS = 200_000
BAD = {
    # data row number (1-based) after which the bad line is inserted -> line, failing check
    50_000: (
        "20261102-BAD000001,S001,S001-R1,2026-11-02T08:00:00,P00001,0,1.00,0.00,EUR,card,,false",
        "range:quantity",
    ),
    100_000: ("20261102-BAD000002,S001,S001-R1,2026-11-02T08:00:00,P00001,1,1.00", "malformed"),
    150_000: (
        "20261102-BAD000003,S001,S002-R1,2026-11-02T08:00:00,P00001,1,1.00,0.00,EUR,card,,false",
        "store_matches_register",
    ),
}


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "retail_generate", ROOT / "examples/retail/generate.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_day(path: Path) -> dict[str, int]:
    """Write the day with the bad lines; return each bad transaction id's file line."""
    generate = generator()
    lines: dict[str, int] = {}
    with path.open("w", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(generate.COLUMNS)
        line = 1
        for number, row in enumerate(generate.transactions(generate.date(2026, 11, 2), ROWS), 1):
            writer.writerow(row)
            line += 1
            if number in BAD:
                out.flush()
                out.write(BAD[number][0] + "\n")
                line += 1
                lines[BAD[number][0].split(",")[0]] = line
    return lines


def test_retail_day_is_validated_with_bad_rows_split_off(tmp_path: Path) -> None:
    contract = load_contracts(ROOT / "examples/retail/config", environ={}).get("pos_transactions")
    source = tmp_path / "landing" / "pos_20261102.csv"
    source.parent.mkdir()
    lines = write_day(source)

    settings = QualitySettings(threads=2)
    result = validate_file(source, contract, out_dir=tmp_path / "out", settings=settings)
    report = result.report

    assert report.outcome == "pass", report.reason
    assert report.split
    assert (report.rows.total, report.rows.malformed, report.rows.rejected) == (ROWS + 3, 1, 3)
    assert report.rows.valid == ROWS
    assert [m.line for m in report.malformed] == [lines["20261102-BAD000002"]]
    failed = {c.name: c for c in report.checks if not c.passed}
    assert failed["range:quantity"].samples[0].line == lines["20261102-BAD000001"]
    assert failed["store_matches_register"].samples[0].line == lines["20261102-BAD000003"]
    assert "member_has_customer_id" not in failed  # members always carry a customer id
    assert result.valid_path is not None
    assert result.rejected_path is not None
    with result.rejected_path.open(newline="") as stream:
        rejected = list(csv.DictReader(stream))
    expected = sorted((lines[text.split(",")[0]], check) for text, check in BAD.values())
    assert [(int(r["_line"]), r["_failed_check"]) for r in rejected] == expected
    with result.valid_path.open() as valid:
        assert sum(1 for _ in valid) == ROWS + 1
