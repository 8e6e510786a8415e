"""The door's errors raised as a caller's own classes (``raising_as``), no Django set up."""

from __future__ import annotations

import pickle
from types import SimpleNamespace

import pytest

import etl_database_schema as schema


class CallerUnavailableError(Exception):
    """A caller's retryable error, as a runtime's (``retry_after`` of its retry policy)."""

    def __init__(self, message: str) -> None:
        self.retry_after: float | None = None
        super().__init__(message)


CALLER = SimpleNamespace(
    DatabaseNotConfiguredError=RuntimeError,
    DatabaseNotReadyError=lambda feature, problem: ValueError(feature, problem),
    DatabaseUnavailableError=CallerUnavailableError,
    DatabaseRefusedError=PermissionError,
)


def test_a_schema_behind_unit_is_retried_after_a_migrations_time_not_a_second() -> None:
    """A unit meeting a database restored from an older schema (a deploy: `etl-schema
    migrate` about to run) was retried after the task policy's backoff, 1 and 2 s at most:
    all its attempts were spent within 3 s, long before a migration of a minute ended."""
    behind = schema.SchemaBehindError(
        "postgresql://etl:***@db/etl", ["etl_ledger.0007_alert_store"], applied=6, met="x"
    )

    with pytest.raises(CallerUnavailableError) as raised, schema.raising_as(CALLER, "loads"):
        raise behind

    assert schema.SCHEMA_BEHIND_RETRY_AFTER == 45.0
    assert raised.value.retry_after == behind.retry_after
    assert 45.0 <= behind.retry_after <= 45.0 * 1.2
    assert str(raised.value) == str(behind)
    assert raised.value.__cause__ is behind
    assert pickle.loads(pickle.dumps(behind)).retry_after == behind.retry_after


def test_schema_behind_waits_are_jittered_within_45_to_54_seconds() -> None:
    """Units that met one deploy at once do not all retry together: each waits 45 s plus
    0-20 % (SCHEMA_BEHIND_RETRY_JITTER), never less, never more."""
    waits = [
        schema.SchemaBehindError("u", ["etl_ledger.0007_alert_store"], met="x").retry_after
        for _ in range(400)
    ]

    assert schema.SCHEMA_BEHIND_RETRY_JITTER == 0.2
    assert all(45.0 <= wait <= 54.0 for wait in waits)
    assert len(set(waits)) > 300  # spread, not one value
    assert min(waits) < 46.0  # the whole range is used
    assert max(waits) > 53.0


def test_an_outage_keeps_the_callers_own_backoff() -> None:
    with pytest.raises(CallerUnavailableError) as raised, schema.raising_as(CALLER, "loads"):
        raise schema.DatabaseUnavailableError("database u is unavailable", url="u")

    assert raised.value.retry_after is None
