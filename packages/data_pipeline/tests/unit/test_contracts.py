"""Dataset contracts: the pipeline's sections parse, and bad ones are refused precisely."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from data_pipeline.contracts import load_contract
from data_pipeline.errors import ContractError


def test_pos_contract_parses_with_its_joins_and_load(tmp_path: Path, retail: Any) -> None:
    retail.write_contract(
        tmp_path, "pos", retail.contract() + '\n[freshness]\nwarn_after = "26h"\n'
    )
    contract = load_contract(tmp_path, "pos")
    assert contract.column_names[:2] == ("transaction_id", "store_id")
    assert {c.name: c.type for c in contract.columns}["quantity"] == "DECIMAL(12,3)"
    assert contract.transform.dedupe_on == ("transaction_id", "line_number")
    stores, products = contract.enrich
    assert stores.on == (("store_code", "store_id"),)
    assert stores.columns == (("region", "country"), ("store_name", "name"))
    assert products.columns == (("category", "category"),)
    assert products.unmatched == "fail"
    assert contract.output.compression == "zstd"
    assert contract.load is not None
    assert contract.load.table == "retail_sales_transaction"
    assert contract.freshness.warn_after == timedelta(hours=26)


def test_bad_unmatched_policy_names_file_line_and_field(tmp_path: Path, retail: Any) -> None:
    path = retail.write_contract(tmp_path, "pos", retail.contract(stores="ignore"))
    with pytest.raises(ContractError) as caught:
        load_contract(tmp_path, "pos")
    (error,) = caught.value.errors
    assert error.field == "enrich.stores.unmatched"
    line = path.read_text().splitlines().index('unmatched = "ignore"') + 1
    assert error.source == f"{path}:{line}"
    assert "keep, drop, fail" in error.message


def test_unknown_key_and_bad_type_are_all_reported(tmp_path: Path, retail: Any) -> None:
    text = 'dataset = "pos"\n[[columns]]\nname = "a"\ntype = "money"\n[transform]\nsqll = "x"\n'
    retail.write_contract(tmp_path, "pos", text)
    with pytest.raises(ContractError) as caught:
        load_contract(tmp_path, "pos")
    assert set(caught.value.fields) == {"columns[0].type", "transform.sqll"}


def test_join_with_two_sources_is_refused(tmp_path: Path, retail: Any) -> None:
    text = retail.contract().replace(
        'file = "reference/stores.csv"', 'file = "reference/stores.csv"\ntable = "retail_store"'
    )
    retail.write_contract(tmp_path, "pos", text)
    with pytest.raises(ContractError) as caught:
        load_contract(tmp_path, "pos")
    assert caught.value.fields == ("enrich.stores",)


def test_transform_that_is_not_a_select_is_refused(tmp_path: Path, retail: Any) -> None:
    text = retail.contract(transform='[transform]\nsql = "DROP TABLE input"\n')
    retail.write_contract(tmp_path, "pos", text)
    with pytest.raises(ContractError) as caught:
        load_contract(tmp_path, "pos")
    assert caught.value.fields == ("transform.sql",)


def test_missing_contract_lists_the_known_ones(tmp_path: Path, retail: Any) -> None:
    retail.write_contract(tmp_path, "pos", retail.contract())
    with pytest.raises(ContractError, match=r"no contract for dataset 'sales'.*found: pos"):
        load_contract(tmp_path, "sales")


def test_invalid_toml_names_the_file(tmp_path: Path, retail: Any) -> None:
    path = retail.write_contract(tmp_path, "pos", "dataset = \n")
    with pytest.raises(ContractError, match="not valid TOML") as caught:
        load_contract(tmp_path, "pos")
    assert caught.value.errors[0].source == str(path)


def test_parse_options_and_column_formats_are_read_as_file_processing_reads_them(
    tmp_path: Path, retail: Any
) -> None:
    text = (
        'dataset = "pos"\n[parse]\ndelimiter = ";"\nquote = "\'"\nescape = "\\\\"\n'
        'header = false\nnull_values = ["NA", ""]\nencoding = "latin-1"\n'
        '[[columns]]\nname = "day"\ntype = "date"\nformat = "%d/%m/%Y"\n'
        '[[columns]]\nname = "price"\ntype = "decimal"\n'
        '[[columns]]\nname = "rate"\ntype = "decimal"\nprecision = 6\n'
    )
    retail.write_contract(tmp_path, "pos", text)
    contract = load_contract(tmp_path, "pos")
    parse = contract.parse
    assert (parse.delimiter, parse.quote, parse.escape, parse.header) == (";", "'", "\\", False)
    assert parse.null_values == ("NA", "")
    day, price, rate = contract.columns
    assert (day.type, day.format) == ("DATE", "%d/%m/%Y")
    assert (price.type, rate.type) == ("DECIMAL(18,4)", "DECIMAL(6,4)")


def test_bad_parse_options_and_formats_are_each_named(tmp_path: Path, retail: Any) -> None:
    text = (
        'dataset = "pos"\n[parse]\ndelimiter = ";;"\nheader = "yes"\nnull_values = "NA"\n'
        '[[columns]]\nname = "qty"\ntype = "int"\nformat = "%d"\n'
        '[[columns]]\nname = "day"\ntype = "date"\nformat = "dd/mm/yyyy"\n'
    )
    retail.write_contract(tmp_path, "pos", text)
    with pytest.raises(ContractError) as caught:
        load_contract(tmp_path, "pos")
    assert set(caught.value.fields) == {
        "parse.delimiter",
        "parse.header",
        "parse.null_values",
        "columns[0].format",
        "columns[1].format",
    }


def test_a_quote_equal_to_the_delimiter_and_a_scale_above_precision_are_named(
    tmp_path: Path, retail: Any
) -> None:
    text = (
        'dataset = "pos"\n[parse]\ndelimiter = "|"\nquote = "|"\n'
        '[[columns]]\nname = "rate"\ntype = "decimal"\nprecision = 3\n'
    )
    retail.write_contract(tmp_path, "pos", text)
    with pytest.raises(ContractError) as caught:
        load_contract(tmp_path, "pos")
    assert set(caught.value.fields) == {"parse.quote", "columns[0].type"}
    assert "scale defaults to 4" in str(caught.value)
