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


def test_until_alone_starts_from_an_initial_value_the_source_accepted() -> None:
    from data_pipeline.ingest.windows import plan_units
    from etl_core.contracts.sources import Endpoint, Incremental, Source

    incremental = Incremental(
        "day", "since", type="date", initial_value="20260101", end_param="until"
    )  # read by the source's validation as fromisoformat reads it
    endpoint = Endpoint("orders", "/orders", "orders", incremental=incremental)
    source = Source("https://api.example.test", (endpoint,), source="shop")
    units = plan_units(source, endpoint, until="2026-02-01")
    assert [(u.params["since"], u.params["until"]) for u in units] == [("2026-01-01", "2026-02-01")]
