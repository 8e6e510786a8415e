"""The data pipeline's door to the platform database: connection and run recording.

The schema package (``etl-database-schema``, the ``schema`` extra) is the platform's one
database door: connection, migration check, units of work, the ledger's queries. The
modules of :mod:`data_pipeline.db` are the only ones of the runtime that import it
(import-linter enforces it), lazily, so the runtime works without the extra and a
database feature then names the extra to install. The door's failures are raised as this
runtime's errors (:mod:`data_pipeline.errors`): unreachable as
:class:`~data_pipeline.errors.DatabaseUnavailableError` (retryable; so is a database
dropped, or recreated without its migrations, under a running process: the schema's
``SchemaBehindError`` names the migrations), refused as
:class:`~data_pipeline.errors.DatabaseRefusedError`, not migrated or a bad URL as
:class:`~data_pipeline.errors.DatabaseNotReadyError` (exit code 2), none configured as
:class:`~data_pipeline.errors.DatabaseNotConfiguredError`.
"""

from __future__ import annotations

import importlib.util
from contextlib import AbstractContextManager
from typing import Any

from data_pipeline import errors
from data_pipeline.errors import SchemaNotInstalledError
from etl_core.runs import RunRecorder

__all__ = [
    "check_login",
    "connect",
    "door",
    "run_recorder",
    "schema_installed",
    "warn_other_stores",
]


def connect(
    database_url: str | None = None, *, feature: str = "the database ledger", migrate: bool = False
) -> None:
    """Open the door for this process: loads, reference tables, the backfill ledger.

    Without a URL it raises :class:`~data_pipeline.errors.DatabaseNotConfiguredError`,
    for a bad URL or missing migrations :class:`~data_pipeline.errors.DatabaseNotReadyError`
    (both exit code 2), when the database cannot be reached the retryable
    :class:`~data_pipeline.errors.DatabaseUnavailableError`. ``migrate`` applies pending
    migrations instead of refusing them (embedded SQLite, tests).
    """
    with door(feature) as schema:
        schema.connect(database_url, apply_migrations=migrate)


def warn_other_stores(store: str) -> None:
    """Warn, once per process, when the ledger holds rows of object stores other than
    ``store`` (this deployment's, its canonical root URL): the database is shared with
    another deployment (docs/architecture.md section 5). The door must be open."""
    with door("one database per deployment") as schema:
        schema.warn_other_stores(store)


def check_login(database_url: str, *, feature: str, store: str | None = None) -> None:
    """Log in to ``database_url`` once, check its migrations and close the connection:
    what ``worker`` checks before it forks its processes, so a URL the server refuses or a
    database lacking migrations (``etl-schema migrate`` not run yet) stops it at start
    (exit 2, the setting named, the migrations listed) instead of failing every unit it
    takes. With ``store`` (the deployment's store identity) it also warns, once, when the
    ledger holds rows of other stores (:func:`warn_other_stores`): the processes it forks
    inherit that it did, so they do not say it again, one by one.

    Raises:
        SchemaNotInstalledError: The ``schema`` extra is not installed.
        DatabaseNotReadyError: The server refused the login (no such database or role, a
            wrong password), the URL is bad, or the database lacks migrations.
        DatabaseUnavailableError: The database could not be reached (an outage: the
            worker starts anyway, its units connect again).
    """
    with door(feature) as schema:
        schema.check_login(database_url, require_migrated=True, store=store)


def door(feature: str) -> AbstractContextManager[Any]:
    """``with door("curated loads") as schema:`` the schema package, its errors as ours.

    Raises:
        SchemaNotInstalledError: The ``schema`` extra is not installed.
    """
    try:
        import etl_database_schema
    except ImportError as exc:
        raise SchemaNotInstalledError(feature) from exc
    return etl_database_schema.raising_as(errors, feature)


def run_recorder(database_url: str) -> RunRecorder:
    """The runs of ``transform``, ``load``, ``run`` and ``backfill`` in the run ledger.

    What ``open_session(recorder=…)`` is given; without the extra it raises
    :class:`~data_pipeline.errors.SchemaNotInstalledError` and runs go unrecorded.
    """
    with door("run recording") as schema:
        ledger: RunRecorder = schema.RunLedger(database_url, errors=errors)
    return ledger


def schema_installed() -> bool:
    """True when the ``schema`` extra (``etl-database-schema``) is importable."""
    return importlib.util.find_spec("etl_database_schema") is not None
