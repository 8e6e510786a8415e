"""A contract naming a kind that does not exist is refused at load, naming the field, the
value and the kinds that exist (docs/extending.md: every extension point)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from etl_core.contracts import (
    AUTH_TYPES,
    CHECK_KINDS,
    PAGINATION_TYPES,
    ContractError,
    load_contract,
    load_source,
)
from etl_core.errors import ConfigError, UnknownKindError

DATASET = """\
dataset = "sales"
source = "vendor"
pattern = "s_{{date:%Y%m%d}}.csv"
packing = "{packing}"
columns = [{{ name = "note" }}]

[[checks]]
kind = "{kind}"
column = "note"
"""

SOURCE = """\
base_url = "https://api.example.com/v1"

[auth]
type = "{auth}"

[[endpoints]]
name = "orders"
path = "/orders"
dataset = "shop_orders"

[endpoints.pagination]
type = "{pagination}"
"""


def refused(load: object, path: Path) -> list[tuple[str, str]]:
    with pytest.raises(ContractError) as caught:
        load(path, environ={})  # type: ignore[operator]
    return [(error.field, error.message) for error in caught.value.errors]


def refused_dataset(tmp_path: Path, *, kind: str, packing: str) -> tuple[str, str]:
    """The one (field, message) the :data:`DATASET` contract with check ``kind`` and
    ``packing`` is refused with at load."""
    path = tmp_path / "sales.toml"
    path.write_text(DATASET.format(kind=kind, packing=packing))
    ((field, message),) = refused(load_contract, path)
    return field, message


def test_an_unknown_check_kind_names_the_field_the_value_and_every_kind(tmp_path: Path) -> None:
    field, message = refused_dataset(tmp_path, kind="no_such_kind", packing="none")

    assert field == "checks[0].kind"
    assert "'no_such_kind'" in message
    assert all(repr(kind) in message for kind in CHECK_KINDS)


def test_an_unknown_packing_names_the_field_the_value_and_every_packing(tmp_path: Path) -> None:
    field, message = refused_dataset(tmp_path, kind="not_null", packing="7z")

    assert field == "packing"
    assert "'7z'" in message
    assert all(repr(name) in message for name in ("none", "zip", "gzip", "tar", "auto"))


@pytest.mark.parametrize(
    ("auth", "pagination", "field", "known"),
    [
        ("no_such_kind", "none", "auth.type", AUTH_TYPES),
        ("none", "no_such_style", "endpoints[0].pagination.type", PAGINATION_TYPES),
    ],
)
def test_an_unknown_auth_or_pagination_type_names_the_field_the_value_and_every_type(
    tmp_path: Path, auth: str, pagination: str, field: str, known: tuple[str, ...]
) -> None:
    path = tmp_path / "sources" / "shop.toml"
    path.parent.mkdir()
    path.write_text(SOURCE.format(auth=auth, pagination=pagination))

    ((found, message),) = refused(load_source, path)

    assert found == field
    assert f"'{auth if field == 'auth.type' else pagination}'" in message
    assert all(repr(kind) in message for kind in known)


def test_an_unknown_kind_error_names_field_value_and_kinds_and_pickles() -> None:
    error = UnknownKindError("checks[2].kind", "max_length", ["not_null", "regex"], where="x")

    copy = pickle.loads(pickle.dumps(error))

    assert isinstance(copy, ConfigError)
    assert (copy.field, copy.value, copy.known) == ("checks[2].kind", "max_length", error.known)
    assert str(copy) == str(error)
    assert "checks[2].kind" in str(error)
    assert "'max_length'" in str(error)
    assert "not_null, regex" in str(error)
