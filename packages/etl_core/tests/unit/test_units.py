"""Behaviour of etl_core.units: durations and byte sizes as people write them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from etl_core.units import (
    ByteSize,
    format_byte_size,
    format_duration,
    parse_byte_size,
    parse_duration,
)

# ------------------------------------------------------------------ durations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("26h", timedelta(hours=26)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h 30m 5s", timedelta(hours=1, minutes=30, seconds=5)),
        ("250ms", timedelta(milliseconds=250)),
        ("15us", timedelta(microseconds=15)),
        ("1.5h", timedelta(minutes=90)),
        ("5M", timedelta(minutes=5)),
        ("90", timedelta(seconds=90)),
        ("0.25", timedelta(milliseconds=250)),
        ("  45s ", timedelta(seconds=45)),
        ("0s", timedelta(0)),
    ],
)
def test_duration_text_is_parsed(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (90, timedelta(seconds=90)),
        (1.5, timedelta(seconds=1.5)),
        (timedelta(minutes=2), timedelta(minutes=2)),
    ],
)
def test_plain_numbers_are_seconds_and_timedeltas_pass(
    value: int | float | timedelta, expected: timedelta
) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize("text", ["", "s", "1x", "1 hour", "h1", "1h30", "abc", "1..5s", "-5s"])
def test_malformed_duration_is_refused_naming_the_value_and_the_units(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration") as caught:
        parse_duration(text)
    assert repr(text) in str(caught.value)
    assert "ms, s, m, h, d, w" in str(caught.value)


@pytest.mark.parametrize("value", [-1, -0.5, timedelta(seconds=-1)])
def test_negative_duration_is_refused(value: int | float | timedelta) -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        parse_duration(value)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_duration_is_refused(value: float) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(value)


def test_boolean_is_not_a_duration() -> None:
    with pytest.raises(ValueError, match="got bool"):
        parse_duration(True)


def test_too_large_duration_is_refused() -> None:
    with pytest.raises(ValueError, match="too large"):
        parse_duration("9999999999d")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(hours=26), "1d2h"),
        (timedelta(days=7), "7d"),
        (timedelta(milliseconds=250), "250ms"),
        (timedelta(seconds=1, microseconds=500_015), "1s500ms15us"),
        (timedelta(seconds=-90), "-1m30s"),
    ],
)
def test_duration_is_formatted_compactly(value: timedelta, expected: str) -> None:
    assert format_duration(value) == expected


@pytest.mark.parametrize(
    "value",
    [timedelta(days=3, hours=4, minutes=5, seconds=6, microseconds=7_008), timedelta(hours=1)],
)
def test_formatted_duration_parses_back_exactly(value: timedelta) -> None:
    assert parse_duration(format_duration(value)) == value


# ----------------------------------------------------------------- byte sizes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("512", 512),
        ("512B", 512),
        ("64MiB", 64 * 1024**2),
        ("1KiB", 1024),
        ("2GiB", 2 * 1024**3),
        ("1TiB", 1024**4),
        ("1.5GB", 1_500_000_000),
        ("10kB", 10_000),
        ("3MB", 3_000_000),
        ("2TB", 2 * 1000**4),
        ("64mib", 64 * 1024**2),
        (" 1 GiB ", 1024**3),
        ("0.5KiB", 512),
        ("0", 0),
    ],
)
def test_byte_size_text_is_parsed(text: str, expected: int) -> None:
    size = parse_byte_size(text)
    assert size == expected
    assert isinstance(size, ByteSize)


def test_integers_and_whole_floats_are_bytes() -> None:
    assert parse_byte_size(4096) == 4096
    assert parse_byte_size(4096.0) == 4096


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("64XB", "unknown unit 'XB'"),
        ("64M", "unknown unit 'M'"),
        ("MiB", "expected bytes"),
        ("", "expected bytes"),
        ("-1", "expected bytes"),
        ("1,5GB", "expected bytes"),
        ("0.1KiB", "not a whole number of bytes"),
        ("1.5B", "not a whole number of bytes"),
        (-1, "must not be negative"),
        (1.5, "not a whole number of bytes"),
        (float("inf"), "finite, non-negative"),
        (True, "got bool"),
    ],
)
def test_bad_byte_size_is_refused_with_the_reason(value: str | int | float, reason: str) -> None:
    with pytest.raises(ValueError, match="invalid byte size") as caught:
        parse_byte_size(value)
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "0B"),
        (512, "512B"),
        (1024, "1KiB"),
        (64 * 1024**2, "64MiB"),
        (1_500_000_000, "1500MB"),
        (3 * 1024**4, "3TiB"),
        (1000, "1kB"),
        (1001, "1001B"),
    ],
)
def test_byte_size_is_formatted_with_the_largest_exact_unit(value: int, expected: str) -> None:
    assert format_byte_size(value) == expected


@pytest.mark.parametrize("value", [1, 1536, 10**12, 7 * 1024**3 + 1])
def test_formatted_byte_size_parses_back_exactly(value: int) -> None:
    assert parse_byte_size(format_byte_size(value)) == value


def test_byte_size_is_an_int_built_from_text_with_a_readable_repr() -> None:
    size = ByteSize("64MiB")
    assert size == 64 * 1024**2
    assert isinstance(size, int)
    assert repr(size) == "ByteSize('64MiB')"
    assert str(size) == str(64 * 1024**2)


def test_negative_byte_size_cannot_be_built() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        ByteSize(-5)
    with pytest.raises(ValueError, match="must not be negative"):
        format_byte_size(-5)
