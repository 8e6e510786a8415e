"""One-call Django set-up for non-web runtimes, and the migration helpers built on it.

A web project that already has Django settings does not call :func:`setup`: it adds
:data:`INSTALLED_APPS` to its own ``INSTALLED_APPS`` and runs ``manage.py migrate``.
"""

from __future__ import annotations

import io
import os
import threading
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from etl_database_schema.database_url import parse_database_url, redact_url, sqlite_url
from etl_database_schema.errors import SchemaError, SetupConflictError

__all__ = [
    "DATABASE_URL_ENV",
    "DATABASE_URL_VARIABLES",
    "DEFAULT_SQLITE_FILE",
    "INSTALLED_APPS",
    "applied_migrations",
    "django_settings",
    "is_configured",
    "migrate",
    "pending_migrations",
    "resolve_database_url",
    "setup",
]

DATABASE_URL_ENV = "DATABASE_URL"
DATABASE_URL_VARIABLES = ("ETL_DATABASE_URL", DATABASE_URL_ENV)
"""Where the database URL is read from, first found wins (the runtimes' order)."""
DEFAULT_SQLITE_FILE = "etl.sqlite3"
INSTALLED_APPS = ("etl_database_schema.ledger", "etl_database_schema.retail")

# Key of the PostgreSQL advisory lock that serialises concurrent `migrate` calls.
_MIGRATE_LOCK_KEY = zlib.crc32(b"etl_database_schema.migrate")

_lock = threading.Lock()
_configured: tuple[str, dict[str, Any]] | None = None


def resolve_database_url(database_url: str | None = None) -> str:
    """The URL :func:`setup` uses: the argument, else the environment, else the SQLite default.

    The environment is the platform runtimes' ``ETL_DATABASE_URL``, else ``DATABASE_URL``
    (so ``etl-schema migrate`` migrates the database the runtimes are configured with);
    an empty variable counts as unset. The default is ``etl.sqlite3`` in the working
    directory, as an absolute ``sqlite:`` URL.
    """
    if database_url is not None:
        return database_url
    for variable in DATABASE_URL_VARIABLES:
        from_env = os.environ.get(variable, "").strip()
        if from_env:
            return from_env
    return sqlite_url(Path.cwd() / DEFAULT_SQLITE_FILE)


def django_settings(database: Mapping[str, Any]) -> dict[str, Any]:
    """The Django settings of a non-web runtime using ``database`` as its default connection."""
    return {
        "DATABASES": {"default": dict(database)},
        "INSTALLED_APPS": list(INSTALLED_APPS),
        "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
        "USE_TZ": True,
        "TIME_ZONE": "UTC",
        # Libraries never configure logging: keep Django's dictConfig away from the root logger.
        "LOGGING_CONFIG": None,
    }


def setup(database_url: str | None = None) -> None:
    """Configure Django for this process and load the schema's apps.

    Uses ``database_url``, else ``ETL_DATABASE_URL`` or ``DATABASE_URL``, else
    ``sqlite:///etl.sqlite3`` in the
    working directory. Calling it again for the same database is a no-op.

    Raises:
        DatabaseUrlError: the URL cannot be parsed (the message shows it redacted).
        SetupConflictError: Django is already configured for another database, or by
            someone else's settings, in this process.
    """
    global _configured
    url = resolve_database_url(database_url)
    with _lock:  # the URL set up already: the same database, whatever its service file
        if _configured is not None and _configured[0] == url:  # says now (edited since)
            return
    database = parse_database_url(url)
    with _lock:
        if _configured is not None:
            if _configured[1] == database:
                return
            raise SetupConflictError(
                f"Django is already set up for {redact_url(_configured[0])}; "
                f"one process cannot switch to {redact_url(url)}"
            )
        import django
        from django.conf import settings

        if settings.configured:
            raise SetupConflictError(
                "Django settings are already configured by another part of this process; "
                f"add {', '.join(INSTALLED_APPS)} to its INSTALLED_APPS instead of calling setup()"
            )
        settings.configure(**django_settings(database))
        django.setup()
        _configured = (url, database)


def is_configured() -> bool:
    """True once :func:`setup` has configured Django in this process."""
    return _configured is not None


def pending_migrations(*, connection: Any = None) -> list[str]:
    """Names (``app_label.migration``) of the migrations not yet applied to the database.

    Asked on ``connection`` (a Django connection) when given, else on the default one.

    Raises:
        SchemaError: :func:`setup` has not been called.
    """
    _require_setup()
    from django.db import DEFAULT_DB_ALIAS, connections
    from django.db.migrations.executor import MigrationExecutor

    if connection is None:
        connection = connections[DEFAULT_DB_ALIAS]
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [
        f"{migration.app_label}.{migration.name}" for migration, backwards in plan if not backwards
    ]


def applied_migrations(*, connection: Any = None) -> list[str]:
    """Names of the platform's migrations applied to the database: none on a database
    that never held the schema (a new one, or a URL naming another application's).
    Asked on ``connection`` (a Django connection) when given, else on the default one.

    Raises:
        SchemaError: :func:`setup` has not been called.
    """
    _require_setup()
    from django.db import DEFAULT_DB_ALIAS, connections
    from django.db.migrations.executor import MigrationExecutor

    if connection is None:
        connection = connections[DEFAULT_DB_ALIAS]
    loader = MigrationExecutor(connection).loader
    ours = loader.graph.nodes
    return sorted(
        f"{app}.{name}" for app, name in loader.applied_migrations or {} if (app, name) in ours
    )


def migrate(
    app_label: str | None = None,
    migration_name: str | None = None,
    *,
    plan: bool = False,
    verbosity: int = 0,
    stdout: TextIO | None = None,
) -> list[str]:
    """Apply pending migrations (Django's ``migrate``); returns the names it applied.

    On PostgreSQL an advisory lock serialises concurrent callers, so several workers
    starting at once apply each migration exactly once.

    Raises:
        SchemaError: :func:`setup` has not been called.
        django.core.management.CommandError: Django refused (unknown app or migration).
    """
    _require_setup()
    from django.core.management import call_command
    from django.db import DEFAULT_DB_ALIAS, connections

    connection = connections[DEFAULT_DB_ALIAS]
    arguments = [a for a in (app_label, migration_name) if a]
    locked = connection.vendor == "postgresql"
    if locked:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [_MIGRATE_LOCK_KEY])
    try:
        before = [] if plan else pending_migrations()
        call_command(
            "migrate",
            *arguments,
            plan=plan,
            interactive=False,
            verbosity=verbosity,
            stdout=stdout or io.StringIO(),
        )
        after = set() if plan else set(pending_migrations())
    finally:
        if locked:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [_MIGRATE_LOCK_KEY])
    return [name for name in before if name not in after]


def _require_setup() -> None:
    if _configured is None:
        raise SchemaError("etl_database_schema.setup() has not been called in this process")
