"""The independent record counter: every dialect detail, any chunking, bounded by its limits."""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from etl_core.contracts import ParseOptions
from file_processing import prescan as prescan_module
from file_processing.records import (
    SAMPLE_PIECES,
    LineFeeds,
    RecordCount,
    RecordLimits,
    count_records,
)

MIB = 1024 * 1024
LIMITS = RecordLimits(max_field_bytes=10 * MIB, max_record_bytes=16 * MIB, max_columns=500)


def pieces(data: bytes, size: int) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")()
    for start in range(0, len(data), size):
        yield decoder.decode(data[start : start + size])
    yield decoder.decode(b"", final=True)


def count(
    data: bytes,
    *,
    columns: int = 2,
    size: int = 1 << 20,
    limits: RecordLimits = LIMITS,
    **options: object,
) -> RecordCount:
    return count_records(
        pieces(data, size), ParseOptions(**options), columns=columns, limits=limits
    )


@pytest.mark.parametrize(
    ("data", "records"),
    [
        (b"a,b\n1,x\n2,y\n", 2),
        (b"a,b\r\n1,x\r\n2,y\r\n", 2),
        (b"a,b\r1,x\r2,y\r", 2),
        (b"a,b\n1,x\n2,y", 2),  # no line break at the end
        (b"a,b\n1,x\n\n\n2,y\n\n", 2),  # blank lines are no records
        (b"a,b\n \n", 1),  # a line of spaces is one (a malformed one)
        (b'a,b\n1,"x\ny"\n2,"a\r\nb"\n3,"c\rd"\n', 3),  # line breaks inside quotes
        (b'a,b\n1,"say ""hi"", twice"\n', 1),
        (b'a,b\n1,x"y\n2,y\n', 2),  # a quote inside an unquoted value is text
        (b'a,b\n1,"x"y\n2,y\n', 2),  # text after a closing quote: still one record
        (b'a,b\n1,x\n2,"y\n3,z\n', 2),  # an unterminated quote runs to the end
        (b"\xef\xbb\xbfa,b\n1,x\n", 1),
        (b"a,b\n", 0),
        (b"", 0),
    ],
)
def test_records_are_counted_as_the_engine_splits_them(data: bytes, records: int) -> None:
    for size in (1, 2, 3, 5, 64, 1 << 20):
        assert count(data, size=size).records == records, size


def test_a_one_column_file_counts_blank_lines_as_empty_values() -> None:
    assert count(b"a\n1\n\n2\n\n", columns=1).records == 4


def test_the_header_is_parsed_with_quotes_and_without_the_byte_order_mark() -> None:
    result = count(b'\xef\xbb\xbf"id","a, b"\r1,2\r')
    assert result.header == ["id", "a, b"]
    assert result.line_breaks == {"CR"}


def test_a_file_without_header_counts_its_first_line() -> None:
    assert count(b"\n1,x\n2,y\n", header=False).records == 2


def test_other_delimiters_quotes_and_escapes_are_honoured() -> None:
    data = b"a;b\n1;'x;\ny'\n2;'it\\'s\n'\n"
    result = count(data, delimiter=";", quote="'", escape="\\")
    assert (result.records, result.header) == (2, ["a", "b"])


def test_unicode_line_separators_inside_a_value_do_not_split_records() -> None:
    data = "a,b\n1,x\u2028y\x0bz\x85w\n2,y\n".encode()
    assert count(data).records == 2


def test_mixed_line_breaks_are_noted() -> None:
    assert count(b"a,b\r\n1,x\n2,y\r\n").line_breaks == {"CRLF", "LF"}


def test_an_over_long_unquoted_record_stops_the_count() -> None:
    data = b"a,b\n1,x\n2," + b"y" * (17 * MIB) + b"\n3,z\n"
    oversize = count(data).oversize
    assert oversize is not None
    assert (oversize.what, oversize.line, oversize.limit) == ("record", 3, 16 * MIB)
    assert "line 3" in oversize.describe()


def test_an_over_long_field_is_named_by_position() -> None:
    data = b"a,b\n1,x\n2," + b"y" * (11 * MIB) + b"\n"
    oversize = count(data).oversize
    assert oversize is not None
    assert (oversize.what, oversize.line, oversize.column) == ("field", 3, 2)
    assert oversize.size == 11 * MIB


def test_an_over_long_quoted_field_with_line_breaks_is_caught() -> None:
    data = b'a,b\n1,"' + b"y\n" * (9 * MIB) + b'"\n'
    oversize = count(data).oversize
    assert oversize is not None
    assert (oversize.what, oversize.line) == ("field", 2)


def test_limits_count_utf8_bytes_not_characters() -> None:
    limits = RecordLimits(max_field_bytes=100, max_record_bytes=1000, max_columns=10)
    fits = "a,b\n1," + "é" * 50 + "\n"  # 100 bytes
    breaks = "a,b\n1," + "é" * 51 + "\n"  # 102 bytes
    assert count(fits.encode(), limits=limits).oversize is None
    oversize = count(breaks.encode(), limits=limits).oversize
    assert oversize is not None
    assert (oversize.what, oversize.size) == ("field", 102)


def test_a_line_without_end_is_not_held_past_the_record_limit() -> None:
    limits = RecordLimits(max_field_bytes=1000, max_record_bytes=1000, max_columns=10)
    data = b"a,b\n1," + b"x" * 5000
    oversize = count(data, size=100, limits=limits).oversize
    assert oversize is not None
    assert oversize.what == "record"
    assert not oversize.exact


def test_a_header_wider_than_max_columns_is_refused() -> None:
    limits = RecordLimits(max_field_bytes=MIB, max_record_bytes=MIB, max_columns=100)
    header = ",".join(f"c{i}" for i in range(101)).encode()
    oversize = count(header + b"\n", limits=limits).oversize
    assert oversize is not None
    assert (oversize.what, oversize.size, oversize.limit) == ("columns", 101, 100)


def test_every_piece_is_read_even_after_a_limit_breaks() -> None:
    seen: list[str] = []

    def texts() -> Iterator[str]:
        for text in pieces(b"a,b\n1," + b"x" * 3000 + b"\n2,y\n" * 100, 256):
            seen.append(text)
            yield text

    limits = RecordLimits(max_field_bytes=100, max_record_bytes=1000, max_columns=10)
    result = count_records(texts(), ParseOptions(), columns=2, limits=limits)
    assert result.oversize is not None
    assert "".join(seen).endswith("2,y\n")


def test_a_short_record_across_a_piece_boundary_is_not_called_large() -> None:
    limits = RecordLimits(max_field_bytes=200, max_record_bytes=200, max_columns=10)
    rows = b'1,"x\ny"\n' + b"2,z\n" * 100  # a quoted line break, then many short rows
    result = count(b"a,b\n" + rows * 20, size=300, limits=limits)
    assert result.oversize is None
    assert result.records == 101 * 20


def sampled(data: str, every: int, *, columns: int = 2) -> RecordCount:
    chunks = [data[i : i + 4096] for i in range(0, len(data), 4096)]
    return count_records(chunks, ParseOptions(), columns=columns, limits=LIMITS, sample_every=every)


def test_the_sample_holds_whole_records_of_every_nth_chunk() -> None:
    rows = [f"{i},v{i % 3}\n" for i in range(20_000)]
    data = "id,v\n" + "".join(rows) + '1,"quoted, value"\n' * 500
    found = sampled(data, 5)
    assert found.records == 20_500
    assert 1 < len(found.sample) <= SAMPLE_PIECES
    kept = "".join(found.sample)
    assert kept.endswith("\n")
    assert set(kept.splitlines()) <= {line.rstrip("\n") for line in rows} | {'1,"quoted, value"'}
    assert sampled(data, 0).sample == []


def test_the_sample_is_bounded_and_leaves_one_column_files_out() -> None:
    data = "id,v\n" + "".join(f"{i},x\n" for i in range(200_000))
    assert len(sampled(data, 1).sample) == SAMPLE_PIECES
    assert sampled("v\n" + "x\n" * 20_000, 1, columns=1).sample == []


def test_the_sample_holds_16_mi_characters_at_most() -> None:
    row = "1," + "x" * 97 + "\n"
    body = row * (30 * MIB // len(row))
    chunks = ["id,v\n", *(body[i : i + 3 * MIB // 2] for i in range(0, len(body), 3 * MIB // 2))]
    found = count_records(chunks, ParseOptions(), columns=2, limits=LIMITS, sample_every=1)
    assert found.records == body.count("\n")
    assert 8 <= len(found.sample) < SAMPLE_PIECES
    assert sum(map(len, found.sample)) <= 16 * MIB


@pytest.mark.parametrize(
    "data",
    [
        b"\xef\xbb\xbfa,b\n" + b"1,x\n" * 3000 + b"2,\xc3\xa9t\xc3\xa9\n" * 3000,
        b"a,b\n" + b"1,x\n" * 2000 + b"\n\n" + b"2,y\n" * 2000,
        b"a,b\r\n" + b"1,x\r\n" * 3000,
        b"a,b\n" + b'1,"x\ny"\n' * 1000 + b"3,z\n" * 3000 + b"4,w",
        b"a,b\n" + b"1,x\n" * 3000 + b"2,\x1cy\n" * 10 + b"3,z\n" * 3000,
    ],
)
@pytest.mark.parametrize("size", [64, 1000, 4096])
def test_the_pre_pass_line_feed_counts_give_the_records_a_count_of_their_own_gives(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, data: bytes, size: int
) -> None:
    monkeypatch.setattr(prescan_module, "CHUNK_SIZE", size)
    path = tmp_path / "data.csv"
    path.write_bytes(data)
    told: list[int | None] = []

    def counter(texts: Iterable[str], feeds: LineFeeds) -> RecordCount:
        def noted() -> int | None:
            told.append(feeds())
            return told[-1]

        return count_records(texts, ParseOptions(), columns=2, limits=LIMITS, line_feeds=noted)

    found = prescan_module.prescan(path, encoding="utf-8", count_records=counter)
    assert found.records is not None
    assert any(feeds is not None for feeds in told)  # the pass did tell the counts
    alone = count(data, size=size)
    assert found.records.records == alone.records
    assert found.records.line_breaks == alone.line_breaks
    assert found.lines == data.count(b"\n") + (not data.endswith(b"\n"))
