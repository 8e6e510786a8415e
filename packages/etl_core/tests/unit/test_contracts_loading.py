"""Dataset contracts: loading, matching landing keys, and every refusal with file, line, field."""

from __future__ import annotations

import os
import time
from datetime import date
from pathlib import Path

import pytest

from etl_core.contracts import (
    Check,
    ContractError,
    RejectLimit,
    declared_datasets,
    load_contract,
    load_contracts,
    load_sources,
)

EXAMPLE_CONFIG = Path(__file__).resolve().parents[4] / "examples" / "retail" / "config"
SECRET_VALUE = "-----BEGIN PGP PRIVATE KEY BLOCK----- s3cr3t"

MINIMAL = """\
dataset = "{dataset}"
source = "{source}"
pattern = "{pattern}"

[[columns]]
name = "id"
type = "int"
required = true

[[columns]]
name = "amount"
type = "decimal"
"""


def minimal(
    dataset: str = "sales", source: str = "vendor", pattern: str = "s_{date:%Y%m%d}.csv"
) -> str:
    return MINIMAL.format(dataset=dataset, source=source, pattern=pattern)


def write(config: Path, name: str, text: str) -> Path:
    path = config / "datasets" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def refusal(tmp_path: Path, text: str) -> tuple[Path, list[tuple[str, str, str]]]:
    path = write(tmp_path, "bad.toml", text)
    with pytest.raises(ContractError) as caught:
        load_contract(path, environ={})
    return path, [(e.field, e.message, e.source) for e in caught.value.errors]


# ------------------------------------------------------------------ loading


def test_example_retail_contract_loads_and_matches_its_landing_files() -> None:
    contracts = load_contracts(EXAMPLE_CONFIG, environ={})
    matched = contracts.match("landing/pos/pos_20261101.csv")
    assert matched is not None
    contract, day = matched
    assert (contract.dataset, day) == ("pos_transactions", date(2026, 11, 1))
    assert [c.name for c in contract.columns][:3] == ["transaction_id", "store_id", "register_id"]
    assert contract.max_rejected_fraction == RejectLimit(percent=0.5)
    assert contract.origin.endswith("pos_transactions.toml")


def test_match_refuses_keys_outside_landing_or_of_another_source(tmp_path: Path) -> None:
    write(tmp_path, "sales.toml", minimal())
    contracts = load_contracts(tmp_path, environ={})
    assert contracts.match("landing/vendor/s_20240131.csv") is not None
    assert contracts.match("validated/vendor/s_20240131.csv") is None
    assert contracts.match("landing/other/s_20240131.csv") is None
    assert contracts.match("landing/vendor/s_20240132.csv") is None
    assert contracts.match("landing/s_20240131.csv") is None


def test_nested_source_prefix_matches_only_its_own_level(tmp_path: Path) -> None:
    write(tmp_path, "eu.toml", minimal(source="vendor/eu"))
    contracts = load_contracts(tmp_path, environ={})
    assert contracts.match("landing/vendor/eu/s_20240131.csv") is not None
    assert contracts.match("landing/vendor/s_20240131.csv") is None


def test_a_misspelt_section_is_refused_not_ignored(tmp_path: Path) -> None:
    path, errors = refusal(tmp_path, minimal() + '\n[laod]\ntable = "sales"\n')
    ((name, message, source),) = errors
    assert name == "laod"
    assert "did you mean 'load'?" in message
    assert source == f"{path}:14: key laod"


def test_required_column_gets_an_implicit_not_null_check(tmp_path: Path) -> None:
    contract = load_contract(write(tmp_path, "a.toml", minimal()), environ={})
    assert contract.all_checks() == [Check(kind="not_null", column="id")]


def test_key_is_a_secret_reference_resolved_on_use(tmp_path: Path) -> None:
    text = minimal().replace("pattern", 'encryption = "pgp"\nkey = "env:SALES_KEY"\npattern', 1)
    environ = {"SALES_KEY": SECRET_VALUE}
    contract = load_contract(write(tmp_path, "a.toml", text), environ=environ)
    assert contract.key is not None
    assert contract.key.reveal() == SECRET_VALUE
    assert SECRET_VALUE not in repr(contract)


def test_sidecar_key_is_recognised_with_its_data_key(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", minimal() + '\n[control]\nchecksum = "sha256"\n')
    contracts = load_contracts(tmp_path, environ={})
    found = contracts.sidecar_of("landing/vendor/s_20240131.csv.sha256")
    assert found is not None
    assert found[1] == "landing/vendor/s_20240131.csv"
    assert contracts.sidecar_of("landing/vendor/s_20240131.csv.md5") is None


def test_empty_datasets_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "datasets").mkdir()
    with pytest.raises(ContractError, match="no dataset contracts") as caught:
        load_contracts(tmp_path, environ={})
    assert caught.value.fields == ("config_dir",)


def test_missing_datasets_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="is not a directory"):
        load_contracts(tmp_path, environ={})


@pytest.mark.parametrize(
    ("value", "limit", "allowed", "refused"),
    [
        (0, RejectLimit(rows=0), (0, 10), (1, 10)),
        (3, RejectLimit(rows=3), (3, 10), (4, 1000)),
        ("0.5%", RejectLimit(percent=0.5), (5, 1000), (6, 1000)),
        ("100%", RejectLimit(percent=100.0), (10, 10), (11, 10)),
    ],
)
def test_reject_limit_is_a_row_count_or_a_percent(
    value: object, limit: RejectLimit, allowed: tuple[int, int], refused: tuple[int, int]
) -> None:
    parsed = RejectLimit.from_config(value)
    assert parsed == limit
    assert parsed.allows(*allowed)
    assert not parsed.allows(*refused)


# ------------------------------------------------------------------ refusals


def test_bad_toml_syntax_is_refused_with_its_line(tmp_path: Path) -> None:
    path, errors = refusal(tmp_path, 'dataset = "a"\nsource = \n')
    ((name, message, source),) = errors
    assert name == "(syntax)"
    assert message.startswith("not valid TOML")
    assert source == f"{path}:2"


def test_unknown_top_level_key_is_refused_with_its_line(tmp_path: Path) -> None:
    path, errors = refusal(tmp_path, minimal().replace("pattern", 'packign = "zip"\npattern', 1))
    ((name, message, source),) = errors
    assert name == "packign"
    assert "did you mean 'packing'?" in message
    assert source == f"{path}:3: key packign"


def test_unknown_key_in_a_check_is_refused_with_its_line(tmp_path: Path) -> None:
    text = minimal() + '\n[[checks]]\nkind = "range"\ncolumn = "id"\nminimum = 1\n'
    path, errors = refusal(tmp_path, text)
    ((name, _, source),) = errors
    assert name == "checks[0].minimum"
    assert source == f"{path}:17: key checks[0].minimum"


def test_bad_column_type_is_refused(tmp_path: Path) -> None:
    path, errors = refusal(tmp_path, minimal().replace('type = "decimal"', 'type = "money"'))
    ((name, message, source),) = errors
    assert name == "columns[1].type"
    assert "expected one of 'string', 'int'" in message
    assert source == f"{path}:12: key columns[1].type"


def test_bad_severity_is_refused(tmp_path: Path) -> None:
    text = minimal() + '\n[[checks]]\nkind = "unique"\ncolumn = "id"\nseverity = "fatal"\n'
    path, errors = refusal(tmp_path, text)
    ((name, message, source),) = errors
    assert name == "checks[0].severity"
    assert message == "expected one of 'warn', 'error', got 'fatal'"
    assert source == f"{path}:17: key checks[0].severity"


def test_bad_pattern_is_refused_with_its_line(tmp_path: Path) -> None:
    path, errors = refusal(tmp_path, minimal(pattern="s_{date:%Y%m}.csv"))
    ((name, message, source),) = errors
    assert name == "pattern"
    assert "must name a day" in message
    assert source == f"{path}:3: key pattern"


def test_inline_secret_is_refused_without_repeating_it(tmp_path: Path) -> None:
    text = minimal().replace("pattern", f'key = "{SECRET_VALUE}"\npattern', 1)
    path, errors = refusal(tmp_path, text)
    ((name, message, source),) = errors
    assert name == "key"
    assert "'env:NAME'" in message
    assert source == f"{path}:3: key key"
    assert SECRET_VALUE not in str(errors)


def test_pgp_without_key_is_refused(tmp_path: Path) -> None:
    _, errors = refusal(tmp_path, minimal().replace("pattern", 'encryption = "pgp"\npattern', 1))
    assert [name for name, _, _ in errors] == ["key"]


@pytest.mark.parametrize(
    ("check", "field", "message"),
    [
        ('kind = "range"\ncolumn = "nope"\nmin = 1', "checks[0].column", "no column 'nope'"),
        ('kind = "range"\ncolumn = "id"', "checks[0]", "needs min, max or both"),
        ('kind = "range"\ncolumn = "id"\nmin = "low"', "checks[0].min", "expected an integer"),
        ('kind = "unique"', "checks[0].column", "needs column"),
        ('kind = "allowed"\ncolumn = "id"', "checks[0].values", "needs values"),
        ('kind = "unique"\ncolumn = "id"\npattern = "x"', "checks[0].pattern", "does not apply"),
        ('kind = "regex"\ncolumn = "id"', "checks[0].pattern", "needs pattern"),
        ('kind = "sql"', "checks[0].expression", "needs expression"),
        ('kind = "row_count"\nmin = -1', "checks[0].min", "expected a row count"),
        ('kind = "row_count"\ncolumn = "id"\nmin = 1', "checks[0].column", "takes no column"),
    ],
)
def test_invalid_check_is_refused_naming_its_field(
    tmp_path: Path, check: str, field: str, message: str
) -> None:
    path, errors = refusal(tmp_path, minimal() + f"\n[[checks]]\n{check}\n")
    assert [name for name, _, _ in errors] == [field]
    assert message in errors[0][1]
    assert errors[0][2].startswith(f"{path}:1")  # checks start on line 14


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        (minimal(dataset="Sales Data"), "dataset", "lower-case name"),
        (minimal(source="../up"), "source", "landing prefix"),
        (
            'max_rejected_fraction = "lots"\n' + minimal(),
            "max_rejected_fraction",
            "row count",
        ),
        (minimal() + '[parse]\ndelimiter = ";;"\n', "parse.delimiter", "one character"),
        (minimal() + '[parse]\nencoding = "klingon"\n', "parse.encoding", "unknown text encoding"),
        (
            minimal() + '[control]\ntrailer_pattern = "^T,(\\\\d+)$"\n',
            "control.trailer_pattern",
            "named group",
        ),
        (minimal().replace('name = "amount"', 'name = "id"'), "columns[1].name", "declared twice"),
    ],
)
def test_invalid_field_is_refused(tmp_path: Path, text: str, field: str, message: str) -> None:
    _, errors = refusal(tmp_path, text)
    assert [name for name, _, _ in errors] == [field]
    assert message in errors[0][1]


def test_missing_required_field_is_refused(tmp_path: Path) -> None:
    _, errors = refusal(tmp_path, 'dataset = "a"\nsource = "b"\n')
    assert [name for name, _, _ in errors] == ["pattern"]


def test_a_missing_required_key_names_the_file_it_is_missing_from(tmp_path: Path) -> None:
    """In a directory of contracts, "pattern: is required (from no source)" does not say
    which one to fix: a key no file set is located in the file that lacks it."""
    write(tmp_path, "good.toml", minimal())
    lacking = write(tmp_path, "lacking.toml", 'dataset = "a"\nsource = "b"\n')
    with pytest.raises(ContractError) as caught:
        load_contracts(tmp_path, environ={})
    ((error),) = caught.value.errors
    assert (error.field, error.source) == ("pattern", str(lacking))
    assert "1 error in 1 file" in str(caught.value)


def test_contract_without_columns_is_refused_unless_its_schema_is_open(tmp_path: Path) -> None:
    _, errors = refusal(tmp_path, 'dataset = "a"\nsource = "b"\npattern = "b_{date:%Y%m%d}.csv"\n')
    assert [(name, "schema.mode = 'open'" in message) for name, message, _ in errors] == [
        ("columns", True)
    ]


def test_every_bad_file_of_a_directory_is_reported_at_once(tmp_path: Path) -> None:
    write(tmp_path, "good.toml", minimal())
    first = write(tmp_path, "one.toml", minimal(dataset="one").replace('"int"', '"integer"'))
    second = write(tmp_path, "two.toml", 'dataset = "two"\n[[[\n')
    third = write(tmp_path, "three.toml", minimal(dataset="three", pattern="t.csv"))
    with pytest.raises(ContractError) as caught:
        load_contracts(tmp_path, environ={})
    sources = [e.source.split(":")[0] for e in caught.value.errors]
    assert sorted(sources) == sorted([str(first), str(second), str(third)])
    assert "3 errors in 3 files" in str(caught.value)


def test_overlapping_contracts_are_refused(tmp_path: Path) -> None:
    first = write(tmp_path, "a.toml", minimal(dataset="a", pattern="s_{date:%Y%m%d}.csv*"))
    second = write(tmp_path, "b.toml", minimal(dataset="b", pattern="s_{date:%Y%m%d}.csv.gz"))
    write(tmp_path, "c.toml", minimal(dataset="c", source="other", pattern="s_{date:%Y%m%d}.csv"))
    with pytest.raises(ContractError) as caught:
        load_contracts(tmp_path, environ={})
    ((error,),) = [caught.value.errors]
    assert error.field == "pattern"
    assert error.source == str(second)
    assert str(first) in error.message
    assert "could match both" in error.message


def test_duplicate_dataset_names_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", minimal(dataset="same", pattern="a_{date:%Y%m%d}.csv"))
    write(tmp_path, "b.toml", minimal(dataset="same", pattern="b_{date:%Y%m%d}.csv"))
    with pytest.raises(ContractError, match="dataset 'same' is already declared"):
        load_contracts(tmp_path, environ={})


@pytest.mark.parametrize(
    ("key", "said"),
    [
        ("landing/vendor/s_20240231.csv", "'20240231' is not a calendar date"),
        ("landing/vendor/other.csv", "no contract of source 'vendor' has a pattern"),
        ("landing/nobody/s_20240131.csv", "no dataset contract has the source 'nobody'"),
        ("elsewhere/s_20240131.csv", "is not a landing key"),
    ],
)
def test_why_a_key_matches_no_contract_is_said_plainly(tmp_path: Path, key: str, said: str) -> None:
    write(tmp_path, "sales.toml", minimal())
    contracts = load_contracts(tmp_path, environ={})
    assert contracts.match(key) is None
    assert said in contracts.why_unmatched(key)


@pytest.mark.parametrize("name", ["orders.TOML", "orders.Toml"])
def test_a_contract_file_whose_suffix_is_not_lower_case_is_refused_not_skipped(
    tmp_path: Path, name: str
) -> None:
    write(tmp_path, "sales.toml", minimal())
    path = write(tmp_path, name, minimal(dataset="orders", pattern="o_{date:%Y%m%d}.csv"))
    with pytest.raises(ContractError) as caught:
        load_contracts(tmp_path)
    ((error),) = caught.value.errors
    assert error.source == str(path)
    assert "only *.toml files are read: rename it" in error.message


def test_a_source_file_whose_suffix_is_not_lower_case_is_refused_not_skipped(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sources" / "shop.TOML"
    path.parent.mkdir(parents=True)
    path.write_text('base_url = "https://shop.example"\n')
    with pytest.raises(ContractError) as caught:
        load_sources(tmp_path)
    ((error),) = caught.value.errors
    assert error.source == str(path)


def settled(config: Path) -> None:
    """``config``'s datasets directory as left a minute ago: no file added, removed or
    renamed in it since."""
    then = time.time() - 60
    os.utime(config / "datasets", (then, then))


def test_declared_datasets_are_the_dataset_names_the_files_hold_now(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", minimal("sales"))
    write(tmp_path, "renamed-file.toml", minimal("stock", pattern="t_{date:%Y%m%d}.csv"))
    write(tmp_path, "notes.txt", "not a contract")
    settled(tmp_path)

    assert declared_datasets(tmp_path) == frozenset({"sales", "stock"})


@pytest.mark.parametrize(
    "text", ['dataset = "sal', 'source = "vendor"\n', "dataset = 3\n"], ids=["torn", "none", "int"]
)
def test_declared_datasets_are_unknown_while_a_file_cannot_name_its_dataset(
    tmp_path: Path, text: str
) -> None:
    write(tmp_path, "a.toml", minimal("sales"))
    write(tmp_path, "b.toml", text)  # a file being written, say
    settled(tmp_path)

    assert declared_datasets(tmp_path) is None


def test_declared_datasets_are_unknown_without_a_datasets_directory(tmp_path: Path) -> None:
    assert declared_datasets(tmp_path / "nowhere") is None
    (tmp_path / "datasets").mkdir()
    settled(tmp_path)
    assert declared_datasets(tmp_path) is None  # no contract at all: mounted wrong, say


@pytest.mark.parametrize(
    "data",
    ['dataset = "stock"\ndescription = "caf\xe9"\n'.encode("latin-1"), b'dataset = "stock" # \xc3'],
    ids=["latin-1", "torn-mid-character"],
)
def test_declared_datasets_are_unknown_while_a_file_is_not_utf8_text(
    tmp_path: Path, data: bytes
) -> None:
    write(tmp_path, "a.toml", minimal("sales"))
    (tmp_path / "datasets" / "b.toml").write_bytes(data)  # saved by another editor, or torn
    settled(tmp_path)

    assert declared_datasets(tmp_path) is None


def test_declared_datasets_are_unknown_while_a_contract_file_is_misnamed(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", minimal("sales"))
    write(tmp_path, "b.TOML", minimal("stock", source="other"))  # load_contracts refuses it
    settled(tmp_path)

    assert declared_datasets(tmp_path) is None


def test_declared_datasets_are_unknown_while_files_were_added_removed_or_renamed_moments_ago(
    tmp_path: Path,
) -> None:
    write(tmp_path, "a.toml", minimal("sales"))
    write(tmp_path, "b.toml", minimal("stock", source="other"))
    settled(tmp_path)
    # a deploy replacing the files one by one (rm, then cp), or an editor saving by
    # renaming the old file away first: stock's file is not there for a moment
    os.rename(tmp_path / "datasets" / "b.toml", tmp_path / "datasets" / "b.toml~")

    assert declared_datasets(tmp_path) is None

    (tmp_path / "datasets" / "b.toml~").unlink()  # a minute later, stock's file still gone
    settled(tmp_path)
    assert declared_datasets(tmp_path) == frozenset({"sales"})
