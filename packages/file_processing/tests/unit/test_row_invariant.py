"""No row vanishes: valid + rejected + malformed = the records the file holds (property-based).

Hypothesis writes CSV files whose record count is known by construction: long
fields (past DuckDB's old 2 MB line limit), quotes, delimiters and line breaks
inside quoted values, CR, LF or CRLF line endings, a byte-order mark, empty
fields, blank lines and ragged (malformed) rows. The engine's verdict must
account for every one of them.
"""

from __future__ import annotations

import codecs
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl_core.contracts import Contract, ParseOptions, load_contract
from file_processing.quality import validate_file
from file_processing.records import RecordLimits, count_records

CONTRACT = """\
dataset = "rows"
source = "vendor"
pattern = "rows_{date:%Y%m%d}.csv"
max_rejected_fraction = "100%"

[[columns]]
name = "a"

[[columns]]
name = "b"
"""

_SPECIALS = ('"', ",", "\r", "\n")
_SHORT = st.text(alphabet=st.sampled_from(list('ab ,"\r\né€x')), max_size=12)


@dataclass(frozen=True)
class Sample:
    """A generated CSV file and what it holds."""

    data: bytes
    records: int
    malformed: int


def _field(value: str, quote_anyway: bool) -> str:
    if quote_anyway or any(c in value for c in _SPECIALS) or value.startswith(" "):
        return '"' + value.replace('"', '""') + '"'
    return value


@st.composite
def csv_files(draw: st.DrawFn, *, long_fields: bool = True) -> Sample:
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    rows = draw(
        st.lists(
            st.tuples(
                st.lists(_SHORT, min_size=1, max_size=3),  # 2 fields is a row, else malformed
                st.booleans(),  # quote every field of the row
                st.booleans(),  # a blank line after it
            ),
            max_size=25,
        )
    )
    long_row = draw(st.none() | st.integers(0, max(0, len(rows) - 1))) if long_fields else None
    long_size = draw(st.integers(2_000_001, 3_000_000))
    lines = ["a,b"]
    malformed = 0
    for index, (fields, quote_all, blank) in enumerate(rows):
        if index == long_row:
            fields = [*fields[:-1], "L" * long_size]
        if len(fields) == 1 and not fields[0]:
            quote_all = True  # an empty unquoted line is a blank line, not a record
        if len(fields) == 3:
            fields = [*fields[:2], fields[2] + "z"]  # DuckDB drops a trailing empty field
        lines.append(",".join(_field(f, quote_all) for f in fields))
        malformed += len(fields) != 2
        if blank:
            lines.append("")
    text = newline.join(lines) + (newline if draw(st.booleans()) else "")
    bom = b"\xef\xbb\xbf" if draw(st.booleans()) else b""
    return Sample(bom + text.encode(), len(rows), malformed)


def contract(tmp: Path) -> Contract:
    path = tmp / "rows.toml"
    path.write_text(CONTRACT)
    return load_contract(path, environ={})


def pieces(data: bytes, size: int) -> list[str]:
    decoder = codecs.getincrementaldecoder("utf-8")()
    texts = [decoder.decode(data[i : i + size]) for i in range(0, len(data), size)]
    return [*texts, decoder.decode(b"", final=True)]


def count_in(path: Path) -> int:
    decoder = codecs.getincrementaldecoder("utf-8")()
    limits = RecordLimits(max_field_bytes=1 << 30, max_record_bytes=1 << 30, max_columns=10)
    pieces = iter([decoder.decode(path.read_bytes(), final=True)])
    return count_records(pieces, ParseOptions(), columns=2, limits=limits).records


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(sample=csv_files())
def test_every_record_is_valid_rejected_or_malformed(sample: Sample) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        source = tmp / "in" / "rows_20260101.csv"
        source.parent.mkdir()
        source.write_bytes(sample.data)
        result = validate_file(source, contract(tmp), out_dir=tmp / "out")
        report = result.report

        records = {c.name: c for c in report.checks}["records"]
        assert records.passed, records.detail
        assert report.rows.total == sample.records
        assert report.rows.malformed == sample.malformed
        assert report.rows.valid + report.rows.rejected == report.rows.total
        assert report.passed  # every bad row may be split off (100%)
        assert result.valid_path is not None
        if result.rejected_path is None:
            assert report.rows.rejected == 0
            assert count_in(result.valid_path) == sample.records
        else:
            assert count_in(result.valid_path) == report.rows.valid
            assert count_in(result.rejected_path) == report.rows.rejected
        assert source.read_bytes() == sample.data  # the input is never changed


@settings(max_examples=300, deadline=None)
@given(sample=csv_files(long_fields=False), size=st.sampled_from([1, 2, 3, 7, 64, 4096]))
def test_the_counter_finds_every_record_however_the_text_is_cut(sample: Sample, size: int) -> None:
    limits = RecordLimits(max_field_bytes=1 << 20, max_record_bytes=1 << 20, max_columns=10)
    result = count_records(pieces(sample.data, size), ParseOptions(), columns=2, limits=limits)
    assert result.records == sample.records
    assert result.header == ["a", "b"]
