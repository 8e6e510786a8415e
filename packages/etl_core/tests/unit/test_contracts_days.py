"""A date given on a command line is exactly YYYY-MM-DD: the other ISO 8601 spellings
``date.fromisoformat`` reads (a run of digits, a week date) are refused, naming the option."""

from __future__ import annotations

import pickle
from datetime import date

import pytest

from etl_core.contracts import parse_day
from etl_core.errors import ConfigError


def test_a_day_spelled_yyyy_mm_dd_is_read() -> None:
    assert parse_day("2026-11-01", "--from") == date(2026, 11, 1)


@pytest.mark.parametrize(
    "text", ["20261101", "2026-W44-1", "2026W441", "2026-11-01T00:00", " 2026-11-01", "2026-02-30"]
)
def test_a_day_in_another_spelling_is_refused_naming_the_option_and_format(text: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_day(text, "--from")
    assert raised.value.fields == ("--from",)
    assert f"--from {text!r} is not a date; expected YYYY-MM-DD" in str(raised.value)
    assert str(pickle.loads(pickle.dumps(raised.value))) == str(raised.value)
