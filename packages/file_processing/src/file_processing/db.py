"""File processing's only door to the database (Django models of ``etl-database-schema``).

The lane's ledger of record lives in the object store (``_state/file_processing/``);
when the ``schema`` extra is installed and a database URL is given, every outcome
is mirrored into the platform's operations tables too — processed objects, their
quality results, quarantine records and releases — so SQL dashboards and
``etl-observability database`` see them. The database is never required: without
the extra or a URL the lane works the same.

This is the one module of the runtime allowed to import ``django`` or
``etl_database_schema`` (import-linter enforces it), lazily, inside functions.
Database failures are translated at the boundary: a lost or refused connection
becomes :class:`~etl_core.errors.RetryableError`, anything else
:class:`~etl_core.errors.FatalError`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any

from etl_core.errors import ConfigError, FatalError, FieldError, RetryableError
from file_processing.errors import SchemaNotInstalledError

if TYPE_CHECKING:
    from file_processing.ledger import ObjectRecord
    from file_processing.process import Outcome
    from file_processing.quarantine import QuarantineRecord

__all__ = ["connect", "record_outcome", "record_release", "schema_installed"]

logger = logging.getLogger(__name__)

_FEATURE = "the file-processing ledger in the database"
_OBJECT_STATES = {
    "processing": "processing",
    "validated": "succeeded",
    "duplicate": "succeeded",
    "quarantined": "quarantined",
    "waiting": "processing",
    "failed": "failed",
    "released": "processing",
}
_lock = threading.Lock()
_connected_url: str | None = None


def schema_installed() -> bool:
    """True when the ``schema`` extra (``etl-database-schema``) is importable."""
    try:
        import etl_database_schema  # noqa: F401
    except ImportError:
        return False
    return True


def connect(database_url: str) -> None:
    """Configure the database for this process and check that its schema is up to date.

    Raises:
        SchemaNotInstalledError: the ``schema`` extra is not installed.
        ConfigError: the URL is invalid or the database lacks migrations.
        RetryableError: the database could not be reached.
    """
    global _connected_url
    schema = _schema()
    with _lock:
        if _connected_url == database_url:
            return
        try:
            schema.setup(database_url)
        except schema.SchemaError as exc:
            raise ConfigError(
                f"{_FEATURE}: cannot use the database", [FieldError("DATABASE_URL", str(exc))]
            ) from exc
        shown = schema.redact_url(database_url)
        with _translated(shown):
            pending = schema.pending_migrations()
        if pending:
            raise ConfigError(
                f"{_FEATURE}: database {shown} lacks {len(pending)} schema migration(s) "
                f"({', '.join(pending)}); run `etl-schema migrate`",
                [FieldError("DATABASE_URL", "schema not migrated")],
            )
        _connected_url = database_url


def record_outcome(
    outcome: Outcome, record: ObjectRecord, quarantine: QuarantineRecord | None
) -> None:
    """Mirror one landing object's outcome: its row, its check results, its quarantine."""
    with _models() as models, _atomic():
        processed, _ = models["ProcessedObject"].objects.update_or_create(
            key=record.key,
            etag=record.etag,
            defaults={
                "state": _OBJECT_STATES[record.state],
                "dataset": record.dataset or "",
                "partition_date": _date(record.partition),
                "content_hash": record.content_sha256 or "",
                "size_bytes": outcome.bytes_in or None,
                "output_keys": list(record.outputs),
                "quality_outcome": _quality_outcome(outcome),
                "attempts": record.attempts,
                "error": record.message if record.state == "failed" else "",
            },
        )
        _record_checks(models["QualityResult"], processed, outcome)
        if quarantine is not None:
            _record_quarantine(models["QuarantineRecord"], processed, quarantine)


def record_release(quarantine: QuarantineRecord) -> None:
    """Mirror the release of a quarantined object."""
    with _models() as models:
        models["QuarantineRecord"].objects.filter(quarantine_key=quarantine.key).update(
            released_at=datetime.fromisoformat(quarantine.released_at or ""),
            released_by=quarantine.released_by or "unknown",
        )


def _record_checks(model: Any, processed: Any, outcome: Outcome) -> None:
    members = {check["member"] for check in outcome.checks}
    model.objects.filter(processed_object=processed).delete()
    model.objects.bulk_create(
        model(
            processed_object=processed,
            dataset=outcome.dataset or "",
            partition_date=_date(outcome.partition),
            check_name=_check_name(check, several=len(members) > 1),
            column_name=check["column"] or "",
            severity="warning" if check["severity"] == "warn" else "error",
            outcome="passed" if check["passed"] else "failed",
            failed_count=check["failed_count"],
            observed={"kind": check["kind"], "member": check["member"]},
            message=check["detail"],
        )
        for check in outcome.checks
    )


def _record_quarantine(model: Any, processed: Any, quarantine: QuarantineRecord) -> None:
    model.objects.update_or_create(
        quarantine_key=quarantine.key,
        defaults={
            "source_key": quarantine.source_key,
            "source_etag": quarantine.source_etag,
            "processed_object": processed,
            "dataset": quarantine.dataset,
            "partition_date": _date(quarantine.partition),
            "reason_code": quarantine.reason,
            "message": quarantine.message,
            "failed_checks": list(quarantine.failed_checks),
            "quarantined_at": datetime.fromisoformat(quarantine.quarantined_at),
            "released_at": None,
            "released_by": "",
        },
    )


def _check_name(check: dict[str, Any], *, several: bool) -> str:
    name = str(check["name"])
    if several and check["member"]:
        name = f"{check['member']} :: {name}"
    return name[-200:]


def _quality_outcome(outcome: Outcome) -> str:
    if not outcome.checks:
        return "not_checked"
    errors = [c for c in outcome.checks if not c["passed"] and c["severity"] == "error"]
    if errors and outcome.status != "validated":
        return "failed"
    return "warned" if any(not c["passed"] for c in outcome.checks) else "passed"


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _schema() -> ModuleType:
    try:
        import etl_database_schema
    except ImportError as exc:
        raise SchemaNotInstalledError(_FEATURE) from exc
    return etl_database_schema


@contextmanager
def _atomic() -> Iterator[None]:
    from django.db import transaction

    with transaction.atomic():
        yield


@contextmanager
def _models() -> Iterator[dict[str, Any]]:
    """The ledger's model classes by name, with connections tidied around the use."""
    if _connected_url is None:
        raise ConfigError(f"{_FEATURE}: not connected; call db.connect(url) first")
    from django.apps import apps
    from django.db import close_old_connections

    close_old_connections()
    try:
        with _translated(_schema().redact_url(_connected_url)):
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
