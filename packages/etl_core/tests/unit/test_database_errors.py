"""The platform's database errors: what they say, how they exit, that they pickle."""

from __future__ import annotations

import pickle

import pytest

from etl_core.errors import (
    ConfigError,
    DatabaseNotConfiguredError,
    DatabaseNotReadyError,
    DatabaseRefusedError,
    DatabaseUnavailableError,
    EtlError,
    FatalError,
    RetryableError,
)
from etl_core.runs import exit_code_of

ERRORS = [
    DatabaseNotConfiguredError("curated loads"),
    DatabaseNotReadyError("curated loads", "database sqlite:///x lacks 2 schema migration(s)"),
    DatabaseUnavailableError("database postgresql://etl:***@db/etl is unavailable"),
    DatabaseRefusedError("database sqlite:///x refused the operation: UNIQUE"),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda error: type(error).__name__)
def test_each_database_error_round_trips_through_pickle_with_its_fields(error: EtlError) -> None:
    copy = pickle.loads(pickle.dumps(error))

    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)


def test_configuration_problems_exit_2_an_unreachable_database_is_retried() -> None:
    not_configured, not_ready, unavailable, refused = ERRORS

    assert [exit_code_of(error) for error in ERRORS] == [2, 2, 1, 1]
    assert isinstance(not_configured, ConfigError)
    assert isinstance(not_ready, ConfigError)
    assert isinstance(unavailable, RetryableError)
    assert isinstance(refused, FatalError)
    assert not isinstance(refused, RetryableError)


def test_the_configuration_errors_say_what_to_set_and_what_is_wrong() -> None:
    not_configured, not_ready = ERRORS[:2]

    assert str(not_configured).startswith("curated loads needs a database: set DATABASE_URL")
    assert "ETL_DATABASE_URL" in str(not_configured)
    assert not_ready.fields == ("DATABASE_URL",)
    assert "lacks 2 schema migration(s)" in str(not_ready)
