"""API ingestion state (``etl_api_ingestion_state``): each endpoint's cursor and high-water mark.

A successful window moves the cursor and resets the failure count; a failed one only
counts, so the next attempt resumes where the last success left off.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from data_pipeline.db.door import door

__all__ = [
    "ApiState",
    "load_api_state",
    "record_api_failure",
    "save_api_checkpoint",
    "save_api_state",
]

_FEATURE = "API ingestion state"


@dataclass(frozen=True)
class ApiState:
    """Where ingestion of one API endpoint stands."""

    source: str
    endpoint: str
    cursor: str
    high_water_mark: datetime | None
    last_success_at: datetime | None
    consecutive_failures: int
    records_total: int
    last_error: str = ""


def load_api_state(source: str, endpoint: str) -> ApiState | None:
    """The saved cursor and high-water mark of an API endpoint; ``None`` before its first run."""
    with door(_FEATURE) as schema, schema.models(schema.LEDGER_APP) as ledger:
        state = ledger["ApiIngestionState"].objects.filter(source=source, endpoint=endpoint).first()
    if state is None:
        return None
    return ApiState(**{field.name: getattr(state, field.name) for field in fields(ApiState)})


def save_api_state(
    source: str,
    endpoint: str,
    *,
    cursor: str = "",
    high_water_mark: datetime | None = None,
    records: int = 0,
    run_id: str | None = None,
) -> None:
    """Record a successful ingestion window: new cursor / high-water mark, failures reset.

    ``run_id`` links the state to the run that moved it, when that run is recorded.
    """
    from django.db.models import F
    from django.utils import timezone

    now = timezone.now()
    with door(_FEATURE) as schema, schema.models(schema.LEDGER_APP) as ledger:
        state, _ = ledger["ApiIngestionState"].objects.get_or_create(
            source=source, endpoint=endpoint
        )
        run = ledger["PipelineRun"].objects.filter(run_id=run_id).first() if run_id else None
        ledger["ApiIngestionState"].objects.filter(pk=state.pk).update(
            cursor=cursor,
            high_water_mark=high_water_mark,
            last_attempt_at=now,
            last_success_at=now,
            last_error="",
            consecutive_failures=0,
            records_total=F("records_total") + records,
            last_run=run,
            updated_at=now,
        )


def save_api_checkpoint(
    source: str,
    endpoint: str,
    *,
    cursor: str,
    high_water_mark: datetime | None = None,
    records: int = 0,
) -> None:
    """Record progress inside a window (a landed chunk): the position moves, ``records`` are
    added; the success time and the failure count are left to the window's end."""
    from django.db.models import F
    from django.utils import timezone

    now = timezone.now()
    with door(_FEATURE) as schema, schema.models(schema.LEDGER_APP) as ledger:
        state, _ = ledger["ApiIngestionState"].objects.get_or_create(
            source=source, endpoint=endpoint
        )
        ledger["ApiIngestionState"].objects.filter(pk=state.pk).update(
            cursor=cursor,
            high_water_mark=high_water_mark,
            last_attempt_at=now,
            records_total=F("records_total") + records,
            updated_at=now,
        )


def record_api_failure(source: str, endpoint: str, error: str) -> None:
    """Record a failed ingestion attempt; the cursor and high-water mark stay where they were."""
    from django.db.models import F
    from django.utils import timezone

    now = timezone.now()
    with door(_FEATURE) as schema, schema.models(schema.LEDGER_APP) as ledger:
        state, _ = ledger["ApiIngestionState"].objects.get_or_create(
            source=source, endpoint=endpoint
        )
        ledger["ApiIngestionState"].objects.filter(pk=state.pk).update(
            last_attempt_at=now,
            last_error=error,
            consecutive_failures=F("consecutive_failures") + 1,
            updated_at=now,
        )
