"""The check kinds' contract: every kind of ``etl_core.contracts.CHECK_KINDS`` is implemented
by the quality engine (a row rule in ``ROW_CHECKS`` or a file-level kind), none more, and a
kind without one fails naming the field, the value and the kinds that exist."""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path

import pytest

from etl_core.contracts import (
    CHECK_KINDS,
    COLUMNLESS_CHECK_KINDS,
    Check,
    Contract,
    load_contract,
)
from etl_core.errors import UnknownKindError
from file_processing.checks import FILE_CHECKS, ROW_CHECKS, row_rules
from file_processing.quality import analyze_file

CONTRACT = """\
dataset = "sales"
source = "vendor"
pattern = "s_{date:%Y%m%d}.csv"
columns = [{ name = "id", type = "int", required = true }, { name = "note" }]
"""


@pytest.fixture
def contract(tmp_path: Path) -> Contract:
    path = tmp_path / "sales.toml"
    path.write_text(CONTRACT)
    return load_contract(path, environ={})


def every_parameter(kind: str) -> Check:
    """A check of ``kind`` with every parameter a kind may read set."""
    column = None if kind in COLUMNLESS_CHECK_KINDS else "note"
    return Check(
        kind=kind,  # type: ignore[arg-type]
        column=column,
        min=1,
        max=5,
        values=["a"],
        pattern="[a-z]+",
        expression="id > 0",
    )


def test_the_engine_implements_exactly_the_kinds_the_contract_model_names() -> None:
    assert set(ROW_CHECKS) | FILE_CHECKS == set(CHECK_KINDS)
    assert not set(ROW_CHECKS) & FILE_CHECKS


@pytest.mark.parametrize("kind", CHECK_KINDS)
def test_a_row_level_kind_renders_one_rule_named_after_the_check(
    contract: Contract, kind: str
) -> None:
    check = every_parameter(kind)

    rules = [r for r in row_rules(replace(contract, checks=(check,))) if r.name == check.label]

    if kind in FILE_CHECKS:
        assert rules == []
    else:
        (rule,) = rules
        assert (rule.kind, rule.column, rule.severity) == (kind, check.column, "error")
        assert rule.fails.strip()


def test_a_kind_without_an_implementation_names_its_declared_field_value_and_kinds(
    contract: Contract,
) -> None:
    checks = (Check(kind="regex", column="note", pattern="x"), every_parameter("no_such_kind"))

    with pytest.raises(UnknownKindError) as caught:
        row_rules(replace(contract, checks=checks))

    error = pickle.loads(pickle.dumps(caught.value))
    assert error.field == "checks[1].kind"
    assert error.value == "no_such_kind"
    assert set(error.known) == set(CHECK_KINDS)
    assert "dataset 'sales'" in str(error)


@pytest.mark.parametrize("kind", CHECK_KINDS)
def test_the_engine_judges_each_kind_on_a_file_with_a_null_and_every_row_is_counted(
    contract: Contract, kind: str, tmp_path: Path
) -> None:
    check = replace(every_parameter(kind), severity="warn")
    data = tmp_path / "s_20260101.csv"
    data.write_text("id,note\n1,abc\n2,\n3,=cmd\n4,toolongvalue\n")

    report = analyze_file(data, replace(contract, checks=(check,)))

    (result,) = [c for c in report.checks if c.name == check.label]
    assert result.kind == kind
    assert result.passed == (result.failed_count == 0)
    assert report.rows.total == 4
