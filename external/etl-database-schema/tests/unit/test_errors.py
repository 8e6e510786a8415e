"""The schema's errors: what each says, and that each pickles with its fields."""

from __future__ import annotations

import pickle

import pytest

import etl_database_schema as schema
from etl_database_schema import MigrationsPendingError, SchemaError

ERRORS = [
    SchemaError("plain"),
    schema.DatabaseUrlError("database URL 'mysql://x' is not supported", url="mysql://x"),
    schema.SetupConflictError("already set up"),
    schema.NotConnectedError("not open"),
    schema.DatabaseOperationError("database sqlite:///a failed", url="sqlite:///a"),
    schema.DatabaseUnavailableError("database sqlite:///a is unavailable", url="sqlite:///a"),
    schema.DatabaseRefusedError("database sqlite:///a refused", url="sqlite:///a"),
    MigrationsPendingError("postgresql://etl:***@db/etl", ["etl_ledger.0002_more"], applied=1),
    schema.DatabaseLoginError(
        "database sqlite:///a refused the login", url="sqlite:///a", reason="invalid_password"
    ),
    schema.SchemaBehindError(
        "postgresql://etl:***@db/etl",
        ["etl_ledger.0003_pipelinerun_holder"],
        applied=2,
        met="column etl_pipeline_run.holder does not exist",
    ),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda error: type(error).__name__)
def test_every_error_round_trips_through_pickle_with_its_fields(error: SchemaError) -> None:
    copy = pickle.loads(pickle.dumps(error))

    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)


def test_pending_migrations_error_names_them_and_the_command_to_run() -> None:
    error = MigrationsPendingError(
        "sqlite:///etl.sqlite3", ["etl_ledger.0002", "etl_retail.0002"], applied=2
    )

    assert error.pending == ("etl_ledger.0002", "etl_retail.0002")
    assert str(error) == (
        "database sqlite:///etl.sqlite3 lacks 2 schema migration(s) "
        "(etl_ledger.0002, etl_retail.0002); run `etl-schema migrate`"
    )


def test_a_database_with_none_of_the_schema_is_questioned_before_migrating_it() -> None:
    """A URL naming another application's database was told to run `etl-schema migrate`,
    which would create the platform's tables in it."""
    error = MigrationsPendingError("postgresql://app@db/crm", ["etl_ledger.0001"])

    assert error.applied == 0
    assert str(error) == (
        "database postgresql://app@db/crm holds none of the platform's schema (no migration "
        "applied, 1 pending: etl_ledger.0001): check that the URL names the platform's "
        "database; if it is a new one, run `etl-schema migrate`"
    )


def test_unavailable_and_refused_are_told_apart_by_class_not_by_message() -> None:
    unavailable = schema.DatabaseUnavailableError("x", url="u")

    assert isinstance(unavailable, SchemaError)
    assert not isinstance(unavailable, schema.DatabaseRefusedError)
    assert unavailable.url == "u"
