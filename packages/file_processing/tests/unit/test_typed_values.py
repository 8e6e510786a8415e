"""The typed value of a text column: the fast paths give exactly what the plain rules give."""

from __future__ import annotations

import duckdb
import pytest

from etl_core.contracts import Column
from file_processing.checks import sql_text, typed_expr

# The rules as first written: an integer is text of this form that TRY_CAST takes as a
# BIGINT; a boolean is what TRY_CAST makes of the text.
INTEGER_TEXT = r"\s*[+-]?[0-9]+\s*"
PLAIN = {
    "int": (
        f"CASE WHEN regexp_full_match(v, {sql_text(INTEGER_TEXT)}) THEN TRY_CAST(v AS BIGINT) END"
    ),
    "bool": "TRY_CAST(v AS BOOLEAN)",
}
INT_TEXTS = "0|5|-7|1000|+5| 5|5 |05|-0|+0|00|1.5|1.0|1e3|1_000|0x10|| |abc|\u0663|5\n|\t5"
LIMITS = "9223372036854775807|-9223372036854775808|9223372036854775808"
BOOL_TEXTS = "true|false|TRUE|False|t|f|1|0|yes|no| true|true |tru||on"
TEXTS: dict[str, list[str | None]] = {
    "int": [*INT_TEXTS.split("|"), *LIMITS.split("|"), None],
    "bool": [*BOOL_TEXTS.split("|"), None],
}


@pytest.mark.parametrize("kind", ["int", "bool"])
def test_typed_value_matches_the_plain_rule_for_every_text(kind: str) -> None:
    expr = typed_expr(Column(name="c", type=kind), "v")
    with duckdb.connect() as connection:
        rows = connection.execute(
            f"SELECT v, {expr} IS NOT DISTINCT FROM {PLAIN[kind]}, {expr}, {PLAIN[kind]} "
            "FROM (SELECT unnest($1::VARCHAR[]) AS v)",
            [TEXTS[kind]],
        ).fetchall()
    assert [row for row in rows if not row[1]] == []
    assert len(rows) == len(TEXTS[kind])


def test_canonical_integers_skip_the_regular_expression() -> None:
    """The usual text of an integer is typed without a regular expression per row."""
    expr = typed_expr(Column(name="c", type="int"), "v")
    fast, _, slow = expr.partition("WHEN regexp_full_match")
    assert "regexp" not in fast
    assert slow
    with duckdb.connect() as connection:
        ((value,),) = connection.execute(f"SELECT {fast} END FROM (SELECT '42' AS v)").fetchall()
    assert value == 42
