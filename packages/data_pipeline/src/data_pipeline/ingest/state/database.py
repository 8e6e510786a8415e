"""Endpoint state in the database's API ingestion table (``etl_api_ingestion_state``).

The table's ``cursor`` column holds the state document (high-water mark, window and
position, as JSON: opaque to the table), ``high_water_mark`` the mark when it is a
timestamp; success time, last error, failure count and record total are the table's
own columns. Every save checks the endpoint's lease first.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

from data_pipeline import db
from data_pipeline.ingest.state.base import EndpointState, StateStore, Window
from etl_core.contracts import CursorValueError, parse_cursor
from etl_core.storage import Lease

__all__ = ["DatabaseStateStore"]


class DatabaseStateStore(StateStore):
    """State rows in the platform database (connect it first: :func:`data_pipeline.db.connect`)."""

    kind = "database"

    def load(self, source: str, endpoint: str) -> EndpointState:
        """The row's state, or an empty one."""
        row = db.load_api_state(source, endpoint)
        if row is None:
            return EndpointState(source, endpoint)
        state = EndpointState(
            source,
            endpoint,
            last_success_at=row.last_success_at.isoformat() if row.last_success_at else None,
            last_error=row.last_error,
            consecutive_failures=row.consecutive_failures,
            records_total=row.records_total,
        )
        try:
            document = json.loads(row.cursor) if row.cursor else {}
        except ValueError:
            document = {"cursor": row.cursor}  # a cursor another tool wrote: plain text
        if not isinstance(document, dict):
            document = {"cursor": row.cursor}
        window = document.get("window")
        return replace(
            state,
            cursor=document.get("cursor"),
            boundary=list(document.get("boundary") or []),
            windows_done=list(document.get("windows_done") or []),
            window=Window.from_dict(window) if window else None,
            last_run=document.get("last_run"),
            token=int(document.get("token", 0)),
        )

    def save(self, lease: Lease, state: EndpointState, *, landed: int, finished: bool) -> None:
        """Write the row after checking the lease."""
        token = lease.check()
        document = {
            "cursor": state.cursor,
            "boundary": state.boundary,
            "windows_done": state.windows_done,
            "window": state.window.to_dict() if state.window else None,
            "last_run": state.last_run,
            "token": token,
        }
        cursor = json.dumps(document, sort_keys=True)
        mark = _timestamp(state.cursor)
        if finished:
            db.save_api_state(
                state.source, state.endpoint, cursor=cursor, high_water_mark=mark, records=landed
            )
        else:
            db.save_api_checkpoint(
                state.source, state.endpoint, cursor=cursor, high_water_mark=mark, records=landed
            )

    def fail(self, source: str, endpoint: str, error: str) -> None:
        """Count the failure in the row."""
        db.record_api_failure(source, endpoint, error)


def _timestamp(cursor: str | None) -> datetime | None:
    if cursor is None:
        return None
    try:
        value = parse_cursor("timestamp", cursor)
    except CursorValueError:
        return None
    return value if isinstance(value, datetime) else None
