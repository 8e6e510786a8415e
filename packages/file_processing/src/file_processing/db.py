"""File processing's door to the platform database: the outcome mirror and its runs.

The lane's ledger of record lives in the object store (``_state/file_processing/``);
with the ``schema`` extra installed and ``database_url`` set, every outcome is mirrored
into the platform's operations tables too (processed objects, their quality results,
quarantine records and releases, each linked to its recorded run), so SQL dashboards and
``etl-observability database`` see them. The database is never required.

The schema package (``etl-database-schema``) is the door: connection, migration check,
units of work, the run ledger. This is the one module of the runtime that imports it
(import-linter enforces it), lazily; the door's failures are raised as this lane's errors
(:mod:`file_processing.errors`): unreachable as
:class:`~file_processing.errors.DatabaseUnavailableError` (retryable; so is a database
dropped, or recreated without its migrations, under a running process: the schema's
``SchemaBehindError`` names the migrations), a refused write as
:class:`~file_processing.errors.DatabaseRefusedError`, not migrated or a bad URL as
:class:`~file_processing.errors.DatabaseNotReadyError` (exit code 2).
"""

from __future__ import annotations

import importlib.util
from contextlib import AbstractContextManager
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from etl_core.artifacts import SUPERSEDED_BY
from etl_core.runs import RunRecorder
from file_processing import errors
from file_processing.errors import SchemaNotInstalledError

if TYPE_CHECKING:
    from file_processing.ledger import ObjectRecord
    from file_processing.process import Outcome
    from file_processing.quarantine import QuarantineRecord

__all__ = [
    "check_login",
    "connect",
    "record_outcome",
    "record_release",
    "run_recorder",
    "schema_installed",
    "warn_other_stores",
]

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


def schema_installed() -> bool:
    """True when the ``schema`` extra (``etl-database-schema``) is importable."""
    return importlib.util.find_spec("etl_database_schema") is not None


def connect(database_url: str) -> None:
    """Open the database door for this process; its schema must be fully migrated.

    Raises:
        SchemaNotInstalledError: The ``schema`` extra is not installed.
        DatabaseNotReadyError: A bad URL, or a database that lacks migrations.
        DatabaseUnavailableError: The database could not be reached.
    """
    with _door() as schema:
        schema.connect(database_url)


def warn_other_stores(store: str) -> None:
    """Warn, once per process, when the ledger holds rows of object stores other than
    ``store`` (this deployment's, its canonical root URL): the database is shared with
    another deployment (docs/architecture.md section 5). The door must be open."""
    with _door() as schema:
        schema.warn_other_stores(store)


def check_login(database_url: str, *, store: str | None = None) -> None:
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
    with _door() as schema:
        schema.check_login(database_url, require_migrated=True, store=store)


def record_outcome(
    outcome: Outcome, record: ObjectRecord, quarantine: QuarantineRecord | None
) -> None:
    """Mirror one landing object's outcome: its row, its check results, its quarantine."""
    from django.db import transaction

    with _door() as schema, schema.models(schema.LEDGER_APP) as ledger, transaction.atomic():
        run = ledger["PipelineRun"].objects.filter(run_id=record.run_id).first()
        processed, _ = ledger["ProcessedObject"].objects.update_or_create(
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
                "run": run,
            },
        )
        _record_checks(ledger["QualityResult"], processed, outcome, run)
        if quarantine is not None:
            _record_quarantine(ledger["QuarantineRecord"], processed, quarantine, run)
        for closed in outcome.superseded:  # superseded (or revalidated) quarantines, closed
            ledger["QuarantineRecord"].objects.filter(
                quarantine_key=closed["key"], source_etag=closed["etag"], released_at__isnull=True
            ).update(
                released_at=datetime.fromisoformat(closed["closed_at"]),
                released_by=closed.get("closed_by") or SUPERSEDED_BY,
            )


def record_release(quarantine: QuarantineRecord) -> int:
    """Mirror the release of a quarantined object on its database row.

    Returns:
        The rows updated: 1, or 0 when the database's ledger holds no row of that
        quarantine key (quarantined before the database was attached, or its row
        deleted): then nothing was recorded, which the caller says.
    """
    with _door() as schema, schema.models(schema.LEDGER_APP) as ledger:
        updated: int = (
            ledger["QuarantineRecord"]
            .objects.filter(quarantine_key=quarantine.key)
            .update(
                released_at=datetime.fromisoformat(quarantine.released_at or ""),
                released_by=quarantine.released_by or "unknown",
            )
        )
    return updated


def run_recorder(database_url: str) -> RunRecorder:
    """This lane's runs (``scan``, ``process``) in the run ledger, for ``open_session``.

    Raises:
        SchemaNotInstalledError: The ``schema`` extra is not installed (runs go unrecorded).
    """
    with _door() as schema:
        ledger: RunRecorder = schema.RunLedger(database_url, errors=errors)
    return ledger


def _record_checks(model: Any, processed: Any, outcome: Outcome, run: Any) -> None:
    members = {check["member"] for check in outcome.checks}
    model.objects.filter(processed_object=processed).delete()
    model.objects.bulk_create(
        model(
            processed_object=processed,
            run=run,
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


def _record_quarantine(model: Any, processed: Any, quarantine: QuarantineRecord, run: Any) -> None:
    model.objects.update_or_create(
        quarantine_key=quarantine.key,
        defaults={
            "source_key": quarantine.source_key,
            "source_etag": quarantine.source_etag,
            "processed_object": processed,
            "run": run,
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


def _door() -> AbstractContextManager[Any]:
    try:
        import etl_database_schema
    except ImportError as exc:
        raise SchemaNotInstalledError(_FEATURE) from exc
    return etl_database_schema.raising_as(errors, _FEATURE)
