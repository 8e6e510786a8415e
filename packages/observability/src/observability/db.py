"""Observability's only door to the database (Django models of ``etl-database-schema``).

This is the one module of the runtime allowed to import ``django`` or
``etl_database_schema`` (import-linter enforces it), and it does so lazily inside
functions: without the ``schema`` extra the rest of the runtime works, and using a
database feature raises :class:`~observability.errors.SchemaNotInstalledError` naming
the extra. There is no silent SQLite default: a database feature without
``--database-url`` / ``DATABASE_URL`` raises
:class:`~observability.errors.DatabaseNotConfiguredError`.

What it offers: the freshness history (latest level per dataset, and recording a level
only when it changes), the time of a dataset's latest successful run, and ledger
gauges for database metrics. Functions return plain values, never Django objects; a
lost or refused connection becomes :class:`~etl_core.errors.RetryableError`, any other
database failure :class:`~etl_core.errors.FatalError`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from types import ModuleType
from typing import Any

from etl_core.errors import ConfigError, FatalError, FieldError, RetryableError
from observability.errors import DatabaseNotConfiguredError, SchemaNotInstalledError

__all__ = [
    "FRESHNESS_LEVELS",
    "FreshnessRecord",
    "connect",
    "last_success",
    "latest_freshness",
    "ledger_gauges",
    "record_freshness",
    "schema_installed",
]

logger = logging.getLogger(__name__)

FRESHNESS_LEVELS = ("ok", "warning", "critical", "unknown")

_lock = threading.Lock()
_connected_url: str | None = None


@dataclass(frozen=True)
class FreshnessRecord:
    """A dataset's freshness level since ``changed_at``; age ``None`` means no data seen."""

    dataset: str
    level: str
    observed_age_seconds: float | None
    latest_partition: date | None
    message: str
    changed_at: datetime


def schema_installed() -> bool:
    """True when the ``schema`` extra (``etl-database-schema``) is importable."""
    try:
        import etl_database_schema  # noqa: F401
    except ImportError:
        return False
    return True


def connect(
    database_url: str | None = None, *, feature: str = "database monitoring", migrate: bool = False
) -> None:
    """Configure the database for this process and check that its schema is up to date.

    Args:
        database_url: the URL; ``None`` reads ``DATABASE_URL``.
        feature: what needs the database, named in errors.
        migrate: apply pending migrations instead of refusing them (embedded SQLite use).

    Raises:
        SchemaNotInstalledError: the ``schema`` extra is not installed.
        DatabaseNotConfiguredError: no URL given and ``DATABASE_URL`` unset.
        ConfigError: the URL is invalid, another database is already connected, or the
            database lacks migrations (run ``etl-schema migrate``).
        RetryableError: the database could not be reached.
    """
    global _connected_url
    schema = _schema(feature)
    source = "argument" if database_url else "environment"
    url = (database_url or os.environ.get("DATABASE_URL", "")).strip()
    if not url:
        raise DatabaseNotConfiguredError(feature)
    with _lock:
        if _connected_url == url:
            return
        try:
            schema.setup(url)
        except schema.SchemaError as exc:
            raise ConfigError(
                f"{feature}: cannot use the database",
                [FieldError("DATABASE_URL", str(exc), source)],
            ) from exc
        shown = schema.redact_url(url)
        with _translated(shown):
            if migrate:
                applied = schema.migrate()
                logger.info("database migrated", extra={"database": shown, "applied": applied})
            pending = schema.pending_migrations()
        if pending:
            raise ConfigError(
                f"{feature}: database {shown} lacks {len(pending)} schema migration(s) "
                f"({', '.join(pending)}); run `etl-schema migrate`",
                [FieldError("DATABASE_URL", "schema not migrated", source)],
            )
        _connected_url = url


def latest_freshness(dataset: str) -> FreshnessRecord | None:
    """The dataset's current freshness (its latest history row); ``None`` if never checked."""
    with _models("freshness history") as models:
        row = (
            models["FreshnessStatus"]
            .objects.filter(dataset=dataset)
            .order_by("-changed_at", "-id")
            .first()
        )
    return None if row is None else _freshness_record(row)


def record_freshness(
    dataset: str,
    level: str,
    observed_age_seconds: float | None,
    *,
    latest_partition: date | None = None,
    message: str = "",
) -> bool:
    """Record a freshness observation; appends to the history only when the level changed.

    Returns:
        True when a new history row was written (the level changed, or first observation).

    Raises:
        ValueError: ``level`` is not one of :data:`FRESHNESS_LEVELS`, or the age is negative.
    """
    if level not in FRESHNESS_LEVELS:
        raise ValueError(f"freshness level {level!r} is not one of {', '.join(FRESHNESS_LEVELS)}")
    if observed_age_seconds is not None and observed_age_seconds < 0:
        raise ValueError(f"observed age of {dataset} is negative: {observed_age_seconds}s")
    from django.db import transaction

    age = None if observed_age_seconds is None else timedelta(seconds=observed_age_seconds)
    with _models("freshness history") as models, transaction.atomic():
        history = models["FreshnessStatus"].objects.filter(dataset=dataset)
        current = history.order_by("-changed_at", "-id").values_list("level", flat=True).first()
        if current == level:
            return False
        history.create(
            dataset=dataset,
            level=level,
            observed_age=age,
            latest_partition=latest_partition,
            message=message,
        )
    logger.info(
        "freshness level changed",
        extra={"dataset": dataset, "level": level, "previous": current},
    )
    return True


def last_success(dataset: str) -> datetime | None:
    """When the latest successful (or partial) run of ``dataset`` finished, in any lane."""
    with _models("run ledger") as models:
        finished: datetime | None = (
            models["PipelineRun"]
            .objects.filter(dataset=dataset, status__in=("succeeded", "partial"))
            .order_by("-finished_at")
            .values_list("finished_at", flat=True)
            .first()
        )
    return finished


def ledger_gauges() -> dict[str, int]:
    """Counts for database metrics: running runs, open quarantine, backfill partitions by state."""
    from django.db.models import Count

    with _models("ledger metrics") as models:
        gauges = {
            "runs_running": models["PipelineRun"].objects.filter(status="running").count(),
            "quarantine_open": models["QuarantineRecord"]
            .objects.filter(released_at__isnull=True)
            .count(),
            "api_endpoints_failing": models["ApiIngestionState"]
            .objects.filter(consecutive_failures__gt=0)
            .count(),
        }
        states = {"pending": 0, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 0}
        for row in models["BackfillPartition"].objects.values("state").annotate(n=Count("id")):
            states[row["state"]] = row["n"]
    gauges.update({f"backfill_partitions_{state}": n for state, n in states.items()})
    return gauges


# --------------------------------------------------------------------------- internals


def _schema(feature: str) -> ModuleType:
    try:
        import etl_database_schema
    except ImportError as exc:
        raise SchemaNotInstalledError(feature) from exc
    return etl_database_schema


@contextmanager
def _models(feature: str) -> Iterator[dict[str, Any]]:
    """Connect if needed (from ``DATABASE_URL``) and yield the ledger's model classes by name."""
    if _connected_url is None:
        connect(feature=feature)
    from django.apps import apps
    from django.db import close_old_connections

    close_old_connections()
    try:
        with _translated(_schema(feature).redact_url(_connected_url or "")):
            yield {
                model.__name__: model for model in apps.get_app_config("etl_ledger").get_models()
            }
    finally:
        close_old_connections()


@contextmanager
def _translated(shown: str) -> Iterator[None]:
    """Translate Django database errors into the platform's retry semantics."""
    from django.db import Error, OperationalError

    try:
        yield
    except OperationalError as exc:
        raise RetryableError(f"database {shown} is unavailable: {exc}") from exc
    except Error as exc:
        raise FatalError(f"database {shown} refused the operation: {exc}") from exc


def _freshness_record(row: Any) -> FreshnessRecord:
    age = row.observed_age
    return FreshnessRecord(
        dataset=row.dataset,
        level=row.level,
        observed_age_seconds=None if age is None else age.total_seconds(),
        latest_partition=row.latest_partition,
        message=row.message,
        changed_at=row.changed_at,
    )
