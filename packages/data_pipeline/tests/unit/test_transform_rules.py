"""The pipeline's contract rules: a transform that cannot run is refused at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from data_pipeline.validate import transform_problems
from etl_core.contracts import ContractError, load_contracts


def test_the_retail_contract_passes(tmp_path: Path, retail: Any) -> None:
    retail.write_contract(tmp_path, "pos", retail.contract())
    contracts = load_contracts(tmp_path, validators=[transform_problems], environ={})
    assert contracts.datasets == ("pos",)


@pytest.mark.parametrize(
    ("transform", "field", "message"),
    [
        ('[transform]\nsql = "DROP TABLE input"\n', "transform.sql", "one SELECT"),
        ('[transform]\nsql = "SELECT nope FROM input"\n', "transform.sql", "nope"),
        ('[transform]\nsql = "SELECT FROM input WHERE"\n', "transform.sql", "not valid SQL"),
        ('[transform]\nsql = "SELECT 1; SELECT 2"\n', "transform.sql", "found 2"),
        (
            '[transform]\nsql = "SELECT store_id FROM input"\ndedupe_on = ["transaction_id"]\n',
            "transform.dedupe_on",
            "'transaction_id' is not a transform output column",
        ),
    ],
)
def test_a_transform_that_cannot_run_is_refused_once_naming_its_field(
    tmp_path: Path, retail: Any, transform: str, field: str, message: str
) -> None:
    retail.write_contract(tmp_path, "pos", retail.contract(transform=transform))
    with pytest.raises(ContractError) as caught:
        load_contracts(tmp_path, validators=[transform_problems], environ={})
    fields = [e.field for e in caught.value.errors]
    assert fields[0] == field
    assert message in caught.value.errors[0].message


def test_a_join_key_the_transform_does_not_output_is_refused(tmp_path: Path, retail: Any) -> None:
    text = retail.contract().replace("store_id AS store_code", "store_id")
    retail.write_contract(tmp_path, "pos", text)
    with pytest.raises(ContractError) as caught:
        load_contracts(tmp_path, validators=[transform_problems], environ={})
    assert [e.field for e in caught.value.errors] == ["enrich.stores.on"]


def test_a_transform_over_a_file_is_bound_at_every_start_not_remembered(
    tmp_path: Path, retail: Any
) -> None:
    """The file may change between runs: a pass that read it proves nothing next time."""
    reference = tmp_path / "regions.csv"
    reference.write_text("store_id,region\nS1,north\n", encoding="utf-8")
    sql = (
        "SELECT i.*, i.store_id AS store_code, i.product_sku AS sku, r.region "
        f"FROM input i JOIN read_csv('{reference}') r USING (store_id)"
    )
    transform = f'[transform]\nsql = "{sql}"\n'
    retail.write_contract(tmp_path, "pos", retail.contract(transform=transform))
    memo = tmp_path / "cache"
    load_contracts(tmp_path, validators=[transform_problems], environ={}, memo_dir=memo)
    reference.write_text("store_id,area\nS1,north\n", encoding="utf-8")
    with pytest.raises(ContractError) as caught:
        load_contracts(tmp_path, validators=[transform_problems], environ={}, memo_dir=memo)
    assert [e.field for e in caught.value.errors] == ["transform.sql"]
    assert "region" in caught.value.errors[0].message


def test_a_transform_over_its_input_alone_is_remembered(tmp_path: Path, retail: Any) -> None:
    retail.write_contract(tmp_path, "pos", retail.contract())
    memo = tmp_path / "cache"
    load_contracts(tmp_path, validators=[transform_problems], environ={}, memo_dir=memo)
    assert len(list((memo / "contract-checks").iterdir())) == 1
