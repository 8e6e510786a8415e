"""Observability's door to the platform database: ledger health signals and its runs.

The schema package (``etl-database-schema``, the ``schema`` extra) is the platform's one
database door: connection, migration check, units of work, the ledger's queries. This is
the one module of the runtime that imports it (import-linter enforces it), lazily, so the
runtime works without the extra and a database feature then names the extra to install.
The door's failures are raised as observability's errors (:mod:`observability.errors`):
unreachable as :class:`~observability.errors.DatabaseUnavailableError` (retryable; so is
a database dropped, or recreated without its migrations, under a running process: the
schema's ``SchemaBehindError`` names the migrations),
refused as :class:`~observability.errors.DatabaseRefusedError`, not migrated or a bad URL
as :class:`~observability.errors.DatabaseNotReadyError` (exit code 2).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from etl_core.runs import RunRecorder
from observability import errors
from observability.errors import SchemaNotInstalledError

if TYPE_CHECKING:
    from etl_database_schema import (
        AlertRecord,
        DatabaseStats,
        EndpointFailure,
        JobSuccess,
        RunHealth,
        RunRecord,
    )
    from observability.alerts.model import Alert
    from observability.alerts.store import AlertChange, OwedChange
    from observability.evaluation import DatasetStatus

__all__ = [
    "alerts",
    "change_alerts",
    "check_login",
    "connect",
    "connected_url",
    "database_stats",
    "failing_endpoints",
    "job_last_successes",
    "last_loads",
    "last_successes",
    "ledger_gauges",
    "ledger_tables",
    "owed_alerts",
    "record_freshness",
    "run_health",
    "run_recorder",
    "schema_installed",
    "settle_alerts",
    "warn_other_stores",
]

_LEDGER_LEVEL = {"ok": "ok", "warn": "warning", "critical": "critical", "unknown": "unknown"}


def schema_installed() -> bool:
    """True when the ``schema`` extra (``etl-database-schema``) is importable."""
    return importlib.util.find_spec("etl_database_schema") is not None


def connect(
    database_url: str | None = None, *, feature: str = "database monitoring", migrate: bool = False
) -> None:
    """Open the database door for this process; its schema must be fully migrated.

    Args:
        database_url: The ``database_url`` setting; ``None`` when none is configured.
        feature: What needs the database, named in errors.
        migrate: Apply pending migrations instead of refusing them (embedded SQLite, tests).

    Raises:
        DatabaseNotConfiguredError: No database URL.
        SchemaNotInstalledError: The ``schema`` extra is not installed.
        DatabaseNotReadyError: A bad URL, or a database that lacks migrations.
        DatabaseUnavailableError: The database could not be reached.
    """
    with _door(feature) as schema:
        schema.connect(database_url, apply_migrations=migrate)


def warn_other_stores(store: str) -> None:
    """Warn, once per process, when the ledger holds rows of object stores other than
    ``store`` (this deployment's, its canonical root URL): the database is shared with
    another deployment (docs/architecture.md section 5). The door must be open."""
    with _door("one database per deployment") as schema:
        schema.warn_other_stores(store)


def ledger_gauges() -> dict[str, int]:
    """Running runs, open quarantine, failing API endpoints, backfill partitions by state."""
    with _door("ledger metrics") as schema:
        gauges: dict[str, int] = schema.ledger_gauges()
    return gauges


def last_successes() -> dict[str, RunRecord]:
    """The latest successful (or partial) run of each lane that has recorded one, by lane."""
    with _door("run history") as schema:
        latest: dict[str, RunRecord] = schema.last_successes()
    return latest


def job_last_successes() -> list[JobSuccess]:
    """The latest successful (or partial) run of every lane, job and dataset."""
    with _door("job history") as schema:
        latest: list[JobSuccess] = schema.job_last_successes()
    return latest


def run_health(since: datetime) -> list[RunHealth]:
    """Outcomes and duration percentiles per lane and dataset of the runs finished since."""
    with _door("run health") as schema:
        health: list[RunHealth] = schema.run_health(since)
    return health


def failing_endpoints() -> list[EndpointFailure]:
    """The API endpoints whose latest ingestion attempts failed."""
    with _door("API ingestion health") as schema:
        failing: list[EndpointFailure] = schema.failing_endpoints()
    return failing


def last_loads() -> dict[str, datetime]:
    """When each dataset's latest load that wrote rows finished, by dataset."""
    with _door("load history") as schema:
        loads: dict[str, datetime] = schema.last_loads()
    return loads


def ledger_tables() -> tuple[str, ...]:
    """The ledger's table names."""
    with _door("database metrics") as schema:
        tables: tuple[str, ...] = schema.ledger_tables()
    return tables


def database_stats(tables: Iterable[str], *, long_query_after: timedelta) -> DatabaseStats:
    """Size and health of ``tables`` and of the database (catalog statistics)."""
    with _door("database metrics") as schema:
        stats: DatabaseStats = schema.database_stats(tables, long_query_after=long_query_after)
    return stats


def record_freshness(status: DatasetStatus, *, store: str) -> bool:
    """Record a dataset's level in the freshness history (``etl_freshness_status``) of the
    object store ``store`` (its canonical root URL): two deployments sharing the database
    keep their histories of a dataset of one name apart.

    The history grows only when the level changes from the one ``store`` recorded last
    (the schema's rule).

    Returns:
        Whether a new history row was written.
    """
    with _door("freshness history") as schema:
        changed: bool = schema.record_freshness(
            status.dataset,
            _LEDGER_LEVEL[status.level],
            status.age_seconds,
            latest_partition=status.latest_partition,
            store=store,
            message=status.message[:2000],
        )
    return changed


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
    with _door(feature) as schema:
        schema.check_login(database_url, require_migrated=True, store=store)


def connected_url() -> str | None:
    """The database the door is open to, password redacted; ``None`` when closed."""
    with _door("alerts") as schema:
        url: str | None = schema.connected_url()
    return url


def alerts(*, store: str, include_resolved: bool = False, limit: int = 1000) -> list[Alert]:
    """The active alerts of the object store ``store`` (its canonical root URL) in the
    ledger (``etl_alert``), with the resolved ones if asked."""
    with _door("alerts") as schema:
        records = schema.alerts(store=store, include_resolved=include_resolved, limit=limit)
    return [_alert(record) for record in records]


def change_alerts(change: AlertChange, *, store: str) -> list[Alert]:
    """Change ``store``'s active alerts of the ledger in one transaction (see
    ``AlertStore.change``)."""
    from etl_database_schema import AlertRecord

    def on_records(records: list[AlertRecord]) -> list[AlertRecord]:
        active = {record.fingerprint: _alert(record) for record in records}
        return [AlertRecord(**vars(alert)) for alert in change(active)]

    with _door("alerts") as schema:
        written = schema.change_alerts(on_records, store=store)
    return [_alert(record) for record in written]


def owed_alerts(*, store: str) -> list[Alert]:
    """``store``'s alerts of the ledger, active or resolved, that still owe a channel a
    notification."""
    with _door("alerts") as schema:
        records = schema.owed_alerts(store=store)
    return [_alert(record) for record in records]


def settle_alerts(change: OwedChange, *, store: str) -> list[Alert]:
    """Change ``store``'s owing alerts' outbox in one transaction (see
    ``AlertStore.settle``)."""
    from etl_database_schema import AlertRecord

    def on_records(records: list[AlertRecord]) -> list[AlertRecord]:
        return [AlertRecord(**vars(alert)) for alert in change([_alert(r) for r in records])]

    with _door("alerts") as schema:
        written = schema.settle_alerts(on_records, store=store)
    return [_alert(record) for record in written]


def _alert(record: AlertRecord) -> Alert:
    """The alert of a ledger row, its outbox checked (a hand-edited row could hold an event
    no channel can word, which would stop the deliveries, or one owed for good).

    Raises:
        AlertRowError: naming the row's fingerprint and the field.
    """
    from observability.alerts.errors import AlertRowError
    from observability.alerts.model import OUTBOX_FIELDS, Alert, outbox_from_dict

    fields = vars(record)
    try:
        outbox = outbox_from_dict({name: fields[name] for name in OUTBOX_FIELDS})
    except ValueError as exc:
        raise AlertRowError(record.fingerprint, str(exc)) from exc
    return Alert(**{**fields, **outbox})


def run_recorder(database_url: str) -> RunRecorder:
    """Observability's runs in the run ledger: the ``recorder`` of ``open_session``.

    Raises:
        SchemaNotInstalledError: The ``schema`` extra is not installed (runs go unrecorded).
    """
    with _door("run recording") as schema:
        ledger: RunRecorder = schema.RunLedger(database_url, errors=errors)
    return ledger


def _door(feature: str) -> AbstractContextManager[Any]:
    try:
        import etl_database_schema
    except ImportError as exc:
        raise SchemaNotInstalledError(feature) from exc
    return etl_database_schema.raising_as(errors, feature)
