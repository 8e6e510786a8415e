"""A DuckDB query interrupted by Ctrl-C or SIGTERM is told apart from a failed partition,
wherever the interruption sits in the error's chain (cause or context)."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from data_pipeline.errors import PartitionError
from data_pipeline.work import _interrupted_query

DAY = date(2026, 11, 1)


def _wrapped(*, via_other_cause: bool) -> PartitionError:
    try:
        try:
            raise duckdb.InterruptException("Query interrupted")
        except duckdb.Error as exc:
            if via_other_cause:  # raised "from" another error: the interruption is the context
                raise PartitionError("sales", DAY, "bad input") from ValueError("described")
            raise PartitionError("sales", DAY, str(exc)) from exc
    except PartitionError as error:
        return error
    raise AssertionError("unreachable")


@pytest.mark.parametrize("via_other_cause", [False, True])
def test_an_interruption_in_the_chain_is_found(via_other_cause: bool) -> None:
    assert _interrupted_query(_wrapped(via_other_cause=via_other_cause))


def test_a_failed_query_is_not_an_interruption() -> None:
    with pytest.raises(duckdb.Error) as failed:
        duckdb.connect().execute("SELECT * FROM no_such_table")
    error = PartitionError("sales", DAY, str(failed.value))
    error.__cause__ = failed.value
    assert not _interrupted_query(error)
