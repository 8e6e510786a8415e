"""The ETL platform's schema contract: Django apps, ORM models and migrations.

Importing this package has no side effects. Non-web runtimes call :func:`setup` once
(from ``DATABASE_URL`` or an explicit URL), then import models from
``etl_database_schema.ledger.models`` and ``etl_database_schema.retail.models``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from etl_database_schema.bootstrap import (
    DATABASE_URL_ENV,
    DEFAULT_SQLITE_FILE,
    INSTALLED_APPS,
    django_settings,
    is_configured,
    migrate,
    pending_migrations,
    resolve_database_url,
    setup,
)
from etl_database_schema.database_url import parse_database_url, redact_url, sqlite_url
from etl_database_schema.errors import DatabaseUrlError, SchemaError, SetupConflictError

try:
    __version__ = version("etl-database-schema")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = [
    "DATABASE_URL_ENV",
    "DEFAULT_SQLITE_FILE",
    "INSTALLED_APPS",
    "DatabaseUrlError",
    "SchemaError",
    "SetupConflictError",
    "__version__",
    "django_settings",
    "is_configured",
    "migrate",
    "parse_database_url",
    "pending_migrations",
    "redact_url",
    "resolve_database_url",
    "setup",
    "sqlite_url",
]
