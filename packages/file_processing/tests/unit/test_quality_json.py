"""JSON documents (one array of objects) and JSON Lines: streamed record by record, with
their own reasons for what JSON parsers disagree on, and nothing lost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from etl_core.contracts import Contract, load_contract
from etl_core.units import ByteSize
from file_processing.json_records import JsonLimits, scan_json
from file_processing.quality import QualitySettings, analyze_file, validate_file
from file_processing.reasons import Reason

COLUMNS = """\
[[columns]]
name = "id"
type = "int"
required = true

[[columns]]
name = "price"
type = "float"
"""


def contract(tmp_path: Path, top: str = 'format = "json"', schema: str = "") -> Contract:
    path = tmp_path / "contract.toml"
    path.write_text(
        f'dataset = "sales"\nsource = "vendor"\npattern = "s_{{date:%Y%m%d}}.json"\n{top}\n'
        f"{schema}\n{COLUMNS}"
    )
    return load_contract(path, environ={})


def data(tmp_path: Path, text: str, name: str = "s.json") -> Path:
    path = tmp_path / "in" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_json_array_passes_and_is_published_byte_for_byte(tmp_path: Path) -> None:
    text = '[\n  {"id": 1, "price": 2.5},\n  {"id": 2, "price": 3, "note": "x"}\n]\n'
    source = data(tmp_path, text)
    result = validate_file(source, contract(tmp_path), out_dir=tmp_path / "out")
    assert result.report.outcome == "pass"
    assert result.report.format == "json"
    assert result.valid_path is not None
    assert result.valid_path.read_text() == text
    assert (result.report.rows.total, result.report.rows.valid) == (2, 2)


@pytest.mark.parametrize("head", ['[{"id": 1, "price": 2}]', '\ufeff \n [\n{"id": 1}]', "[]"])
def test_a_json_array_is_detected_under_auto(tmp_path: Path, head: str) -> None:
    report = analyze_file(data(tmp_path, head), contract(tmp_path, 'format = "auto"'))
    assert report.format == "json"
    assert report.outcome == "pass"


def test_type_checks_run_on_json_records_with_their_record_number(tmp_path: Path) -> None:
    text = '[{"id": 1, "price": 2}, {"id": "x", "price": 3}, {"id": 3, "price": "y"}]'
    report = analyze_file(data(tmp_path, text), contract(tmp_path))
    assert report.outcome == "fail"
    failed = {c.name: [s.line for s in c.samples] for c in report.failed_checks}
    assert failed == {"type:id": [2], "type:price": [3]}


@pytest.mark.parametrize(
    ("record", "reason", "words"),
    [
        ('{"id": 2, "price": NaN}', Reason.DATA_NUMBER_RANGE, "NaN is not a JSON number"),
        ('{"id": 2, "price": -Infinity}', Reason.DATA_NUMBER_RANGE, "-Infinity"),
        ('{"id": 2, "price": 1e400}', Reason.DATA_NUMBER_RANGE, "beyond the range of a double"),
        ('{"id": 2, "price": ' + "9" * 45 + "}", Reason.DATA_NUMBER_RANGE, "45 digits"),
        ('{"id": 2, "price": 1, "id": 3}', Reason.DATA_SCHEMA, "key 'id' appears twice"),
        ('{"id": 2, "note": "\\ud800 lone"}', Reason.DATA_ENCODING, "lone UTF-16 surrogate"),
        ('{"id": 2, "deep": ' + "[" * 70 + "]" * 70 + "}", Reason.DATA_NESTING, "64 levels"),
        ('"just text"', Reason.DATA_TYPE, "must be an object, got a string"),
    ],
)
def test_each_json_disagreement_fails_with_its_own_reason(
    tmp_path: Path, record: str, reason: Reason, words: str
) -> None:
    text = f'[{{"id": 1, "price": 2}}, {record}, {{"id": 3, "price": 4}}]'
    report = analyze_file(data(tmp_path, text), contract(tmp_path))
    assert report.outcome == "fail"
    assert report.reason is not None
    assert report.reason.code == reason
    assert (report.rows.total, report.rows.malformed) == (3, 1)
    (bad,) = report.malformed
    assert bad.line == 2
    assert words in bad.error


def test_a_valid_surrogate_pair_and_a_big_but_representable_number_pass(tmp_path: Path) -> None:
    text = '[{"id": 1, "price": 1e300, "note": "\\ud83d\\ude00"}, {"id": 2, "price": 1E-400}]'
    report = analyze_file(data(tmp_path, text), contract(tmp_path))
    assert report.outcome == "pass", report.checks


def test_bad_records_are_split_off_and_nothing_is_lost(tmp_path: Path) -> None:
    text = '[{"id": 1, "price": 2.50}, {"id": 2, "price": NaN}, {"id": 3, "price": {"a": [1]}}]'
    source = data(tmp_path, text)
    result = validate_file(
        source,
        contract(tmp_path, 'format = "json"\nmax_rejected_fraction = "100%"'),
        out_dir=tmp_path / "out",
    )
    report = result.report
    assert report.outcome == "pass"
    counts = report.rows
    assert (counts.total, counts.valid, counts.malformed, counts.rejected) == (3, 1, 1, 2)
    assert result.valid_path is not None
    assert result.rejected_path is not None
    assert json.loads(result.valid_path.read_text()) == [{"id": 1, "price": 2.5}]
    rejected = result.rejected_path.read_text()
    assert "NaN" in rejected  # the malformed record, as written
    assert ",3," not in rejected.splitlines()[0]
    assert len(rejected.strip().splitlines()) == 3  # header + two rows


@pytest.mark.parametrize(
    ("text", "reason", "words"),
    [
        ('[{"id": 1}, {"id": 2,, }]', Reason.DATA_PARSE_ERROR, "record 2: not JSON"),
        ('[{"id": 1}\n {"id": 2}]', Reason.DATA_PARSE_ERROR, "expected ',' or ']' after record 1"),
        ('[{"id": 1}', Reason.DATA_PARSE_ERROR, "the end of the file"),
        ('[{"id": 1}] [', Reason.DATA_PARSE_ERROR, "text after the end of the array"),
        ('{"id": 1}', Reason.DATA_PARSE_ERROR, "one array of objects"),
        ("[" * 200_000 + "]" * 200_000, Reason.DATA_NESTING, "nested too deep"),
    ],
)
def test_a_json_document_that_cannot_be_read_on_fails_whole(
    tmp_path: Path, text: str, reason: Reason, words: str
) -> None:
    report = analyze_file(data(tmp_path, text), contract(tmp_path))
    assert report.outcome == "fail"
    assert report.reason is not None
    assert report.reason.code == reason
    assert words in report.reason.message


def test_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    text = '[\n {"id": 1},\n {"id": 2, "price": tru}\n]'
    report = analyze_file(data(tmp_path, text), contract(tmp_path))
    assert report.reason is not None
    assert "line 3, column" in report.reason.message


def test_a_record_over_the_size_limit_fails_with_too_large(tmp_path: Path) -> None:
    text = '[{"id": 1, "note": "' + "x" * 5000 + '"}]'
    settings = QualitySettings(max_record_bytes=ByteSize(1024))
    report = analyze_file(data(tmp_path, text), contract(tmp_path), settings=settings)
    assert report.reason is not None
    assert report.reason.code == Reason.DATA_TOO_LARGE


def test_jsonl_records_get_the_same_refusals_line_by_line(tmp_path: Path) -> None:
    text = '{"id": 1}\n{"id": 2, "price": Infinity}\n\n{"id": 3, "id": 4}\n{"id": 5}\n'
    report = analyze_file(data(tmp_path, text, "s.jsonl"), contract(tmp_path, 'format = "jsonl"'))
    assert (report.rows.total, report.rows.malformed) == (4, 2)
    assert [m.line for m in report.malformed] == [2, 3]
    assert report.reason is not None
    assert report.reason.code in (Reason.DATA_NUMBER_RANGE, Reason.DATA_SCHEMA)


def test_extra_json_keys_follow_the_schema_policy(tmp_path: Path) -> None:
    text = '[{"id": 1, "price": 2, "note": "x"}, {"id": 2, "colour": "red"}]'
    refused = analyze_file(
        data(tmp_path, text), contract(tmp_path, schema='[schema]\nextra_columns = "refuse"')
    )
    assert refused.reason is not None
    assert refused.reason.code == Reason.DATA_SCHEMA
    dropped = validate_file(
        data(tmp_path, text),
        contract(tmp_path, schema='[schema]\nextra_columns = "drop"'),
        out_dir=tmp_path / "out",
    )
    assert dropped.valid_path is not None
    assert json.loads(dropped.valid_path.read_text()) == [
        {"id": 1, "price": 2},
        {"id": 2, "price": None},
    ]


def test_open_schema_infers_json_keys_and_types(tmp_path: Path) -> None:
    path = tmp_path / "open.toml"
    path.write_text(
        'dataset = "o"\nsource = "v"\npattern = "o.json"\ndate_from = "arrival"\n'
        'format = "json"\n[schema]\nmode = "open"\n'
    )
    text = '[{"id": 1, "price": 2.5, "ok": true, "tags": ["a"]}, {"id": 2, "day": "2024-01-31"}]'
    report = analyze_file(data(tmp_path, text), load_contract(path, environ={}))
    assert report.outcome == "pass"
    assert {c.name: c.type for c in report.columns} == {
        "id": "int",
        "price": "float",
        "ok": "bool",
        "tags": "string",
        "day": "date",
    }


def test_a_large_json_array_is_read_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    record = json.dumps({"id": 1, "name": "x" * 200, "values": list(range(20))})
    with path.open("w") as handle:
        handle.write("[")
        handle.write(",\n".join([record] * 60_000))
        handle.write("]")
    size = path.stat().st_size
    # measured in a process of its own: tracemalloc counts every thread's allocations, and
    # a thread an earlier test of a long suite left running would be counted here
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_OF_SCAN, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    found = json.loads(done.stdout)
    peak = found["peak"]
    assert found["records"] == 60_000
    assert found["fatal"] is None
    assert size > 15_000_000
    assert peak < 8_000_000, f"peak {peak} bytes for a {size}-byte file"


_PEAK_OF_SCAN = """
import json, sys, tracemalloc
from pathlib import Path
from file_processing.json_records import JsonLimits, scan_json
path = Path(sys.argv[1])
tracemalloc.start()
found = scan_json(path, array=True, encoding="utf-8", work_dir=path.parent, limits=JsonLimits())
_, peak = tracemalloc.get_traced_memory()
fatal = None if found.fatal is None else str(found.fatal)
print(json.dumps({"records": found.records, "fatal": fatal, "peak": peak}))
"""


def test_more_distinct_keys_than_the_limit_fail_as_too_wide(tmp_path: Path) -> None:
    path = tmp_path / "wide.json"
    path.write_text(json.dumps([{f"k{i}": i} for i in range(50)]))
    found = scan_json(
        path, array=True, encoding="utf-8", work_dir=tmp_path, limits=JsonLimits(max_keys=10)
    )
    assert found.fatal is not None
    assert found.fatal.reason == Reason.DATA_TOO_WIDE
    assert "record 11 adds 'k10'" in found.fatal.message
