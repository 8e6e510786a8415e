"""etl_core.config for declarative files: arrays of tables, free tables, raw values, no env."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from etl_core import config
from etl_core.config import load_settings, load_settings_with_sources, redacted_dict
from etl_core.errors import ConfigError
from etl_core.secrets import Secret


@dataclass(frozen=True)
class Check:
    kind: Literal["not_null", "range"]
    column: str
    severity: Literal["warn", "error"] = "error"
    min: Any = None

    def __post_init__(self) -> None:
        if self.kind == "range" and self.min is None:
            raise ValueError("a range check needs min")


@dataclass(frozen=True)
class Contract:
    dataset: str
    key: Secret | None = None
    checks: list[Check] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    transform: dict[str, Any] | None = None
    tags: tuple[Check, ...] = ()


@dataclass(frozen=True)
class Inner:
    size: int = 1


@dataclass(frozen=True)
class Item:
    inner: Inner = field(default_factory=Inner)


@dataclass(frozen=True)
class Outer:
    items: list[Item] = field(default_factory=list)


@dataclass(frozen=True)
class SheetColumn:
    name: str
    type: str = "text"


@dataclass(frozen=True)
class Sheet:
    name: str
    columns: list[SheetColumn] = field(default_factory=list)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "contract.toml"
    path.write_text(text)
    return path


def errors_of(path: Path) -> list[tuple[str, str, str]]:
    with pytest.raises(ConfigError) as caught:
        load_settings(Contract, toml_path=path, env={}, env_prefix=None)
    return [(e.field, e.message, e.source) for e in caught.value.errors]


def test_array_of_tables_builds_one_dataclass_per_item(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'dataset = "pos"\n'
        "[[checks]]\n"
        'kind = "not_null"\n'
        'column = "a"\n'
        "[[checks]]\n"
        'kind = "range"\n'
        'column = "b"\n'
        "min = 1.5\n",
    )
    contract, sources = load_settings_with_sources(
        Contract, toml_path=path, env={}, env_prefix=None
    )
    assert contract.checks == [
        Check(kind="not_null", column="a"),
        Check(kind="range", column="b", min=1.5),
    ]
    assert sources["checks[1].min"] == f"{path}:8: key checks[1].min"
    assert sources["checks[0].severity"] == "default"


def test_field_types_are_resolved_once_per_class(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every table of an array, and every load, reuses its class's resolved annotations."""
    resolved: list[str] = []
    real = config.get_type_hints

    def counting(cls: type[Any]) -> dict[str, Any]:
        resolved.append(cls.__name__)
        return real(cls)

    monkeypatch.setattr(config, "get_type_hints", counting)
    columns = "".join(f'[[columns]]\nname = "{name}"\n' for name in "abc")
    path = write(tmp_path, f'name = "s"\n{columns}')
    for _ in range(2):
        sheet = load_settings(Sheet, toml_path=path, env={}, env_prefix=None)
    assert [c.name for c in sheet.columns] == ["a", "b", "c"]
    assert sorted(resolved) == ["Sheet", "SheetColumn"]


def test_inline_array_of_tables_is_accepted_as_a_tuple(tmp_path: Path) -> None:
    path = write(tmp_path, 'dataset = "d"\ntags = [{kind = "not_null", column = "x"}]\n')
    contract = load_settings(Contract, toml_path=path, env={}, env_prefix=None)
    assert contract.tags == (Check(kind="not_null", column="x"),)


def test_bad_value_in_an_item_names_the_item_and_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'dataset = "d"\n[[checks]]\nkind = "not_null"\ncolumn = "a"\n'
        '[[checks]]\nkind = "not_null"\ncolumn = "b"\nseverity = "fatal"\n',
    )
    ((name, message, source),) = errors_of(path)
    assert name == "checks[1].severity"
    assert message == "expected one of 'warn', 'error', got 'fatal'"
    assert source == f"{path}:8: key checks[1].severity"


def test_unknown_key_in_an_item_is_refused_with_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path, 'dataset = "d"\n[[checks]]\nkind = "not_null"\ncolumn = "a"\nsevrity = 1\n'
    )
    ((name, message, source),) = errors_of(path)
    assert name == "checks[0].sevrity"
    assert "did you mean 'severity'?" in message
    assert source == f"{path}:5: key checks[0].sevrity"


def test_missing_field_in_an_item_says_which_table(tmp_path: Path) -> None:
    path = write(tmp_path, 'dataset = "d"\n[[checks]]\nkind = "not_null"\n')
    ((name, message, _),) = errors_of(path)
    assert name == "checks[0].column"
    assert message == "is required: set `column = ...` in the table [checks[0]] of the TOML file"


def test_item_validation_error_points_at_the_item(tmp_path: Path) -> None:
    path = write(tmp_path, 'dataset = "d"\n\n[[checks]]\nkind = "range"\ncolumn = "a"\n')
    ((name, message, source),) = errors_of(path)
    assert (name, message) == ("checks[0]", "a range check needs min")
    assert source == f"{path}:3: key checks[0]"


def test_errors_in_several_items_are_all_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'dataset = "d"\n[[checks]]\nkind = "nope"\ncolumn = "a"\n[[checks]]\ncolumn = 3\n'
        'kind = "not_null"\n',
    )
    fields = [name for name, _, _ in errors_of(path)]
    assert fields == ["checks[0].kind", "checks[1].column"]


def test_item_that_is_not_a_table_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, 'dataset = "d"\nchecks = ["not_null"]\n')
    ((name, message, source),) = errors_of(path)
    assert (name, message) == ("checks[0]", "expected a table, got 'not_null'")
    assert source == f"{path}:2: key checks[0]"


def test_array_of_tables_field_refuses_a_scalar(tmp_path: Path) -> None:
    path = write(tmp_path, 'dataset = "d"\nchecks = "x"\n')
    ((name, message, _),) = errors_of(path)
    assert name == "checks"
    assert message.startswith("expected an array of tables ([[checks]])")


def test_dict_field_coerces_each_value(tmp_path: Path) -> None:
    path = write(tmp_path, 'dataset = "d"\n[labels]\nteam = 3\n"cost center" = "7"\n')
    contract = load_settings(Contract, toml_path=path, env={}, env_prefix=None)
    assert contract.labels == {"team": 3, "cost center": 7}


def test_dict_field_names_the_bad_key(tmp_path: Path) -> None:
    path = write(tmp_path, 'dataset = "d"\n[labels]\nteam = "x"\n')
    ((name, message, source),) = errors_of(path)
    assert name == "labels"
    assert message == "key 'team': expected an integer, got 'x'"
    assert source == f"{path}:2: key labels"


def test_any_field_keeps_the_raw_table(tmp_path: Path) -> None:
    path = write(
        tmp_path, 'dataset = "d"\n[transform]\nsql = "select 1"\n[transform.opts]\nn = 2\n'
    )
    contract = load_settings(Contract, toml_path=path, env={}, env_prefix=None)
    assert contract.transform == {"sql": "select 1", "opts": {"n": 2}}
    assert redacted_dict(contract)["transform"] == {"sql": "select 1", "opts": {"n": 2}}


def test_no_env_prefix_reads_no_field_from_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, 'dataset = "d"\nkey = "env:POS_KEY"\n')
    environ = {"ETL_DATASET": "other", "POS_KEY": "s3cret"}
    contract = load_settings(Contract, toml_path=path, env=environ, env_prefix=None)
    assert contract.dataset == "d"
    assert contract.key is not None
    assert contract.key.reveal() == "s3cret"


def test_nested_table_inside_an_item_is_located_at_its_item(tmp_path: Path) -> None:
    path = write(tmp_path, '[[items]]\n[[items]]\n[items.inner]\nsize = "big"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(Outer, toml_path=path, env={}, env_prefix=None)
    (error,) = caught.value.errors
    assert error.field == "items[1].inner.size"
    assert error.source == f"{path}:4: key items[1].inner.size"
