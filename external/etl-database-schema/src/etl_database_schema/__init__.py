"""The ETL platform's schema contract: Django apps, ORM models and migrations.

It is also the runtimes' one database door: :func:`connect` once per process, then each
unit of work inside :func:`models` (connections tidied around it, errors translated into
:class:`DatabaseUnavailableError`, :class:`DatabaseRefusedError`,
:class:`MigrationsPendingError`, :class:`SchemaBehindError`), and the ledger's queries (run
history, freshness, gauges) returning plain dataclasses. Importing this package has no side
effects: neither Django nor a driver is imported, no environment variable is read.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from etl_database_schema import load_fences, partitions
from etl_database_schema.bootstrap import (
    DATABASE_URL_ENV,
    DATABASE_URL_VARIABLES,
    DEFAULT_SQLITE_FILE,
    INSTALLED_APPS,
    applied_migrations,
    django_settings,
    is_configured,
    migrate,
    pending_migrations,
    resolve_database_url,
    setup,
)
from etl_database_schema.catalog import DatabaseStats, TableStats, database_stats, ledger_tables
from etl_database_schema.database_url import (
    parse_database_url,
    redact_message,
    redact_url,
    sqlite_url,
)
from etl_database_schema.door import (
    LEDGER_APP,
    RETAIL_APP,
    CallerErrors,
    check_login,
    connect,
    connected_url,
    is_connected,
    models,
    raising_as,
)
from etl_database_schema.errors import (
    SCHEMA_BEHIND_RETRY_AFTER,
    SCHEMA_BEHIND_RETRY_JITTER,
    DatabaseLoginError,
    DatabaseOperationError,
    DatabaseRefusedError,
    DatabaseUnavailableError,
    DatabaseUrlError,
    MigrationsPendingError,
    NotConnectedError,
    SchemaBehindError,
    SchemaError,
    SetupConflictError,
)
from etl_database_schema.ledger.queries import (
    ALERT_STATES,
    FRESHNESS_LEVELS,
    LANES,
    RUN_OUTCOMES,
    AlertRecord,
    EndpointFailure,
    FreshnessRecord,
    JobSuccess,
    RunHealth,
    RunRecord,
    abandon_runs,
    alerts,
    change_alerts,
    failing_endpoints,
    finish_run,
    get_run,
    job_last_successes,
    last_loads,
    last_success,
    last_successes,
    latest_freshness,
    ledger_gauges,
    other_stores,
    owed_alerts,
    record_freshness,
    run_health,
    settle_alerts,
    start_run,
    warn_other_stores,
)
from etl_database_schema.ledger.recorder import RunLedger

try:
    __version__ = version("etl-database-schema")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = [
    "ALERT_STATES",
    "DATABASE_URL_ENV",
    "DATABASE_URL_VARIABLES",
    "DEFAULT_SQLITE_FILE",
    "FRESHNESS_LEVELS",
    "INSTALLED_APPS",
    "LANES",
    "LEDGER_APP",
    "RETAIL_APP",
    "RUN_OUTCOMES",
    "SCHEMA_BEHIND_RETRY_AFTER",
    "SCHEMA_BEHIND_RETRY_JITTER",
    "AlertRecord",
    "CallerErrors",
    "DatabaseLoginError",
    "DatabaseOperationError",
    "DatabaseRefusedError",
    "DatabaseStats",
    "DatabaseUnavailableError",
    "DatabaseUrlError",
    "EndpointFailure",
    "FreshnessRecord",
    "JobSuccess",
    "MigrationsPendingError",
    "NotConnectedError",
    "RunHealth",
    "RunLedger",
    "RunRecord",
    "SchemaBehindError",
    "SchemaError",
    "SetupConflictError",
    "TableStats",
    "__version__",
    "abandon_runs",
    "alerts",
    "applied_migrations",
    "change_alerts",
    "check_login",
    "connect",
    "connected_url",
    "database_stats",
    "django_settings",
    "failing_endpoints",
    "finish_run",
    "get_run",
    "is_configured",
    "is_connected",
    "job_last_successes",
    "last_loads",
    "last_success",
    "last_successes",
    "latest_freshness",
    "ledger_gauges",
    "ledger_tables",
    "load_fences",
    "migrate",
    "models",
    "other_stores",
    "owed_alerts",
    "parse_database_url",
    "partitions",
    "pending_migrations",
    "raising_as",
    "record_freshness",
    "redact_message",
    "redact_url",
    "resolve_database_url",
    "run_health",
    "settle_alerts",
    "setup",
    "sqlite_url",
    "start_run",
    "warn_other_stores",
]
