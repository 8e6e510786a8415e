"""The lane's contract rules: regular expressions and SQL checks DuckDB refuses, at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl_core.contracts import ContractError, load_contract
from file_processing.checks import expression_problems

CONTRACT = """\
dataset = "sales"
source = "vendor"
pattern = "s_{date:%Y%m%d}.csv"

[[columns]]
name = "id"
type = "int"

[[checks]]
"""


@pytest.mark.parametrize(
    ("check", "field", "message"),
    [
        ('kind = "regex"\ncolumn = "id"\npattern = "(a"', "checks[0].pattern", "not a valid"),
        ('kind = "sql"\nexpression = "id +"', "checks[0].expression", "not a valid row predicate"),
        ('kind = "sql"\nexpression = "nope > 1"', "checks[0].expression", "not a valid row"),
        ('kind = "sql"\nexpression = "id + 1"', "checks[0].expression", "expected a boolean"),
        ('kind = "sql"\nexpression = "sum(id) > 1"', "checks[0].expression", "not a valid row"),
        (
            'kind = "sql"\nexpression = "true); DROP TABLE t; SELECT (true"',
            "checks[0].expression",
            "found several statements",
        ),
        (
            'kind = "sql"\nexpression = "(SELECT count(*) FROM read_text(\'/etc/passwd\')) > 0"',
            "checks[0].expression",
            "not a valid row predicate",
        ),
    ],
)
def test_an_expression_duckdb_refuses_is_named_with_its_line(
    tmp_path: Path, check: str, field: str, message: str
) -> None:
    path = tmp_path / "sales.toml"
    path.write_text(CONTRACT + check + "\n")
    with pytest.raises(ContractError) as caught:
        load_contract(path, validators=[expression_problems], environ={})
    assert [e.field for e in caught.value.errors] == [field]
    assert message in caught.value.errors[0].message
    assert caught.value.errors[0].source.startswith(f"{path}:1")  # the check's own line


def test_valid_expressions_pass(tmp_path: Path) -> None:
    path = tmp_path / "sales.toml"
    path.write_text(
        CONTRACT
        + 'kind = "regex"\ncolumn = "id"\npattern = "\\\\d+"\n'
        + '[[checks]]\nkind = "sql"\nexpression = "id > 0"\n'
    )
    contract = load_contract(path, validators=[expression_problems], environ={})
    assert [c.kind for c in contract.checks] == ["regex", "sql"]
