"""The ingest registries (``PAGINATORS``, ``AUTHENTICATORS``) match the contract model's
types one for one, and a type without a class fails naming the field, the value and the
types that exist (not a ``KeyError``)."""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path
from typing import get_args, get_type_hints

import pytest

from data_pipeline.ingest.auth import AUTHENTICATORS, authenticator_for
from data_pipeline.ingest.pagination import PAGINATORS, paginator_for
from etl_core.contracts import AUTH_TYPES, PAGINATION_TYPES, Auth, Pagination, Source, load_source
from etl_core.errors import ConfigError, UnknownKindError

SOURCE = """\
base_url = "https://api.example.com/v1"

[[endpoints]]
name = "stores"
path = "/stores"
dataset = "shop_stores"

[[endpoints]]
name = "orders"
path = "/orders"
dataset = "shop_orders"
"""


@pytest.fixture
def source(tmp_path: Path) -> Source:
    path = tmp_path / "sources" / "shop.toml"
    path.parent.mkdir()
    path.write_text(SOURCE)
    return load_source(path, environ={})


@pytest.mark.parametrize(
    ("registry", "names", "model", "field"),
    [
        (PAGINATORS, PAGINATION_TYPES, Pagination, "type"),
        (AUTHENTICATORS, AUTH_TYPES, Auth, "type"),
    ],
    ids=["pagination", "auth"],
)
def test_every_type_the_contract_model_accepts_has_exactly_one_class(
    registry: dict[str, type], names: tuple[str, ...], model: type, field: str
) -> None:
    accepted = get_args(get_type_hints(model)[field])

    assert set(registry) == set(names) == set(accepted)


def test_a_pagination_type_without_a_paginator_names_the_field_value_and_styles(
    source: Source,
) -> None:
    endpoint = replace(source.endpoints[1], pagination=Pagination(type="no_such_style"))  # type: ignore[arg-type]

    with pytest.raises(UnknownKindError) as caught:
        paginator_for(source, endpoint)

    error = pickle.loads(pickle.dumps(caught.value))
    assert isinstance(error, ConfigError)
    assert error.field == "endpoints[1].pagination.type"
    assert error.value == "no_such_style"
    assert error.known == tuple(sorted(PAGINATORS))
    assert "source 'shop'" in str(error)
    assert "link_header" in str(error)


def test_an_auth_type_without_an_authenticator_names_the_field_value_and_kinds(
    source: Source,
) -> None:
    broken = replace(source, auth=Auth(type="no_such_kind"))  # type: ignore[arg-type]

    with pytest.raises(UnknownKindError) as caught:
        authenticator_for(broken)

    assert caught.value.field == "auth.type"
    assert caught.value.value == "no_such_kind"
    assert caught.value.known == tuple(sorted(AUTHENTICATORS))
