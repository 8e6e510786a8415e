"""Dataset contracts: the pipeline's sections are typed, and bad ones are refused precisely."""

from __future__ import annotations

import json
import pickle
from datetime import timedelta
from pathlib import Path

import pytest

from etl_core.contracts import (
    Column,
    ContractError,
    check_contracts,
    error_location,
    load_contract,
    load_contracts,
)

HEAD = 'dataset = "pos"\nsource = "pos"\npattern = "pos_{date:%Y%m%d}.csv"\n'
COLUMNS = (
    '[[columns]]\nname = "store_id"\n'
    '[[columns]]\nname = "quantity"\ntype = "decimal(12,3)"\n'
    '[[columns]]\nname = "member"\ntype = "bool"\n'
)
JOINS = """
[transform]
sql = "SELECT store_id AS store_code, quantity FROM input;"
dedupe_on = "store_code"

[enrich.stores]
file = "reference/stores.csv"
on = { store_code = "store_id" }
columns = { region = "country", store_name = "name" }
unmatched = "%s"

[enrich.products]
table = "retail_product"
on = ["sku"]
columns = ["category"]
unmatched = "fail"
"""


def write(config: Path, text: str, name: str = "pos.toml") -> Path:
    path = config / "datasets" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def refused(tmp_path: Path, text: str) -> list[tuple[str, str, str]]:
    path = write(tmp_path, text)
    with pytest.raises(ContractError) as caught:
        load_contract(path, environ={})
    return [(e.field, e.message, e.source) for e in caught.value.errors]


def test_pipeline_sections_are_typed(tmp_path: Path) -> None:
    text = (
        HEAD
        + COLUMNS
        + JOINS % "keep"
        + '[output]\nmax_file_size = "64MiB"\n[load]\ntable = "retail_sales"\n'
        + '[freshness]\nwarn_after = "26h"\ncritical_after = "2d"\n'
    )
    contract = load_contract(write(tmp_path, text), environ={})
    assert contract.transform.sql.endswith("FROM input")
    assert contract.transform.dedupe_on == ("store_code",)
    stores, products = contract.enrich
    assert (stores.name, stores.on) == ("stores", (("store_code", "store_id"),))
    assert stores.columns == (("region", "country"), ("store_name", "name"))
    assert (products.name, products.on, products.columns) == (
        "products",
        (("sku", "sku"),),
        (("category", "category"),),
    )
    assert products.source == "table retail_product"
    assert contract.output.max_file_size == 64 * 1024 * 1024
    assert contract.load is not None
    assert contract.load.table == "retail_sales"
    assert contract.freshness.warn_after == timedelta(hours=26)
    assert contract.freshness.critical_after == timedelta(days=2)


def test_decimal_short_form_sets_precision_and_scale() -> None:
    column = Column("price", "decimal(12, 2)")
    assert (column.type, column.precision, column.scale) == ("decimal", 12, 2)
    assert column.sql_type == "DECIMAL(12,2)"
    assert Column("amount", "decimal").sql_type == "DECIMAL(18,4)"


def test_bad_unmatched_policy_names_file_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + COLUMNS + JOINS % "ignore")
    with pytest.raises(ContractError) as caught:
        load_contract(path, environ={})
    (error,) = caught.value.errors
    assert error.field == "enrich.stores.unmatched"
    line = path.read_text().splitlines().index('unmatched = "ignore"') + 1
    assert error_location(error) == (str(path), line)
    assert "'keep', 'drop', 'fail'" in error.message


def test_join_with_two_sources_is_refused(tmp_path: Path) -> None:
    text = HEAD + COLUMNS + (JOINS % "keep").replace('unmatched = "keep"', 'table = "t"')
    assert [f for f, _, _ in refused(tmp_path, text)] == ["enrich.stores"]


@pytest.mark.parametrize(
    ("section", "field", "message"),
    [
        ('[transform]\nsqll = "SELECT 1"\n', "transform.sqll", "did you mean 'sql'"),
        ('[output]\ncompression = "lz4"\n', "output.compression", "expected one of"),
        ("[output]\nrow_group_size = 10\n", "output.row_group_size", "from 1000"),
        ('[load]\ntable = "curated sales"\n', "load.table", "a table name"),
        ("[load]\n", "load.table", "is required"),
        ('[freshness]\nwarn_afer = "1h"\n', "freshness.warn_afer", "did you mean 'warn_after'"),
        (
            '[freshness]\nwarn_after = "2d"\ncritical_after = "1d"\n',
            "freshness.critical_after",
            "longer than warn_after",
        ),
        ('[enrich.x]\nfile = "r.xlsx"\non = ["a"]\ncolumns = ["b"]\n', "enrich.x.file", ".csv"),
        ('[enrich.x]\nfile = "r.csv"\ncolumns = ["b"]\n', "enrich.x.on", "at least one key"),
        ('[enrich.x]\nfile = "r.csv"\non = 3\ncolumns = ["b"]\n', "enrich.x.on", "column names"),
    ],
)
def test_a_bad_pipeline_key_is_refused_naming_its_field(
    tmp_path: Path, section: str, field: str, message: str
) -> None:
    errors = refused(tmp_path, HEAD + COLUMNS + section)
    assert [f for f, _, _ in errors] == [field]
    assert message in errors[0][1]


@pytest.mark.parametrize(
    ("kind", "hint"),
    [
        ("integer", "did you mean 'int'?"),
        ("timestamptz", "did you mean 'timestamp'?"),
        ("boolean", "did you mean 'bool'?"),
        ("money", "expected one of 'string', 'int'"),
    ],
)
def test_a_type_outside_the_vocabulary_is_refused_with_a_hint(
    tmp_path: Path, kind: str, hint: str
) -> None:
    errors = refused(tmp_path, HEAD + f'[[columns]]\nname = "a"\ntype = "{kind}"\n')
    assert [f for f, _, _ in errors] == ["columns[0].type"]
    assert hint in errors[0][1]


@pytest.mark.parametrize("name", ["pos-eu", "Sales", "1pos", "pos.eu", "a" * 64])
def test_a_dataset_name_is_one_rule_for_every_lane(tmp_path: Path, name: str) -> None:
    errors = refused(tmp_path, HEAD.replace('"pos"', f'"{name}"', 1) + COLUMNS)
    assert [f for f, _, _ in errors] == ["dataset"]


def test_column_names_may_hold_what_vendor_headers_hold(tmp_path: Path) -> None:
    text = HEAD + '[[columns]]\nname = "store-id"\n[[columns]]\nname = "Unit Price"\n'
    contract = load_contract(write(tmp_path, text), environ={})
    assert contract.column_names == ("store-id", "Unit Price")
    errors = refused(tmp_path, HEAD + '[[columns]]\nname = " padded"\n')
    assert [f for f, _, _ in errors] == ["columns[0].name"]


def test_a_lane_validator_runs_only_on_a_contract_the_platform_accepts(tmp_path: Path) -> None:
    seen: list[str] = []

    def lane_rule(contract: object) -> list[tuple[str, str]]:
        seen.append("called")
        return [("transform.sql", "the engine refuses it")]

    path = write(tmp_path, HEAD + COLUMNS)
    with pytest.raises(ContractError) as caught:
        load_contract(path, validators=[lane_rule], environ={})
    assert caught.value.fields == ("transform.sql",)
    assert caught.value.errors[0].source == str(path)
    write(tmp_path, HEAD + '[[columns]]\nname = "a"\ntype = "money"\n')
    with pytest.raises(ContractError):
        load_contract(path, validators=[lane_rule], environ={})
    assert seen == ["called"]


def test_check_reports_every_error_as_json_with_file_and_line(tmp_path: Path) -> None:
    bad = write(tmp_path, HEAD + COLUMNS + '[laod]\ntable = "x"\n')
    write(tmp_path, HEAD.replace('"pos"', '"returns"') + COLUMNS, "returns.toml")
    report = check_contracts(tmp_path, environ={})
    assert not report.valid
    assert report.exit_code == 2
    document = json.loads(report.render(as_json=True))
    assert document["valid"] is False
    assert document["errors"] == [
        {
            "file": str(bad),
            "line": 12,
            "field": "laod",
            "message": "unknown TOML key; did you mean 'load'?",
        }
    ]
    assert f"{bad}:12: laod: unknown TOML key" in report.render()


def test_check_of_a_valid_directory_names_its_datasets(tmp_path: Path) -> None:
    write(tmp_path, HEAD + COLUMNS)
    report = check_contracts(tmp_path, environ={})
    assert (report.valid, report.exit_code, report.datasets) == (True, 0, ("pos",))
    assert report.render() == "1 contract valid: pos"


def test_contract_error_survives_pickling(tmp_path: Path) -> None:
    write(tmp_path, HEAD + '[[columns]]\nname = "a"\ntype = "money"\n')
    with pytest.raises(ContractError) as caught:
        load_contracts(tmp_path, environ={})
    copy = pickle.loads(pickle.dumps(caught.value))
    assert copy.errors == caught.value.errors
    assert str(copy) == str(caught.value)


def test_parse_limits_and_the_nul_policy_are_typed(tmp_path: Path) -> None:
    text = HEAD + '[parse]\nmax_field_bytes = "2MiB"\nmax_record_bytes = 4096\nnul_bytes = "flag"\n'
    contract = load_contract(write(tmp_path, text + COLUMNS), environ={})
    assert contract.parse.max_field_bytes == 2 * 1024 * 1024
    assert contract.parse.max_record_bytes == 4096
    assert contract.parse.nul_bytes == "flag"
    defaults = load_contract(write(tmp_path, HEAD + COLUMNS, "d.toml"), environ={})
    assert (defaults.parse.max_field_bytes, defaults.parse.nul_bytes) == (None, "refuse")


def test_a_nul_policy_outside_the_vocabulary_is_refused(tmp_path: Path) -> None:
    errors = refused(tmp_path, HEAD + '[parse]\nnul_bytes = "strip"\n' + COLUMNS)
    assert [field for field, _, _ in errors] == ["parse.nul_bytes"]


def test_a_formula_injection_check_needs_a_string_column(tmp_path: Path) -> None:
    check = '[[checks]]\nkind = "formula_injection"\ncolumn = "quantity"\n'
    errors = refused(tmp_path, HEAD + COLUMNS + check)
    assert errors[0][0] == "checks[0].column"
    assert "string columns" in errors[0][1]
    fine = '[[checks]]\nkind = "formula_injection"\ncolumn = "store_id"\nseverity = "warn"\n'
    assert load_contract(write(tmp_path, HEAD + COLUMNS + fine, "ok.toml"), environ={}).checks
