"""``ingest --since/--until`` of a date cursor are dates spelled YYYY-MM-DD, as every other
command's dates: a week date or a run of digits is a usage error naming the option."""

from __future__ import annotations

from datetime import date

import pytest

from data_pipeline.ingest.windows import _bound
from etl_core.errors import ConfigError


def test_a_date_cursor_bound_spelled_yyyy_mm_dd_is_read() -> None:
    assert _bound("date", "2026-11-01", "--since") == date(2026, 11, 1)


@pytest.mark.parametrize("text", ["20261101", "2026-W44-1"])
def test_a_date_cursor_bound_in_another_spelling_is_refused_naming_the_option(text: str) -> None:
    with pytest.raises(ConfigError) as raised:
        _bound("date", text, "--until")
    assert raised.value.fields == ("--until",)
    assert "expected YYYY-MM-DD" in str(raised.value)
