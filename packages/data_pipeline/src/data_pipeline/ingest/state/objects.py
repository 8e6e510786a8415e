"""Endpoint state as small records in the object store: ``_state/data_pipeline/api/…``.

One JSON document per endpoint, changed by compare-and-put under the endpoint's
lease (:meth:`~etl_core.storage.Lease.fenced_update`): a run whose lease was taken
over can never overwrite what its successor saved.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from data_pipeline.ingest.state.base import EndpointState, StateStore
from etl_core.layout import state_key
from etl_core.storage import Lease, ObjectStore, Records

__all__ = ["ObjectStateStore", "endpoint_state_key"]

LANE = "data_pipeline"


def endpoint_state_key(source: str, endpoint: str) -> str:
    """``_state/data_pipeline/api/<source>/<endpoint>.json``."""
    return state_key(LANE, "api", source, f"{endpoint}.json")


class ObjectStateStore(StateStore):
    """State documents in ``store`` (used when no database is configured)."""

    kind = "objects"
    saves_from_any_thread = True

    def __init__(self, store: ObjectStore) -> None:
        self.records: Records[EndpointState] = Records(
            store, decode=EndpointState.from_json, encode=EndpointState.to_json
        )

    def load(self, source: str, endpoint: str) -> EndpointState:
        """The stored state, or an empty one."""
        found = self.records.read(endpoint_state_key(source, endpoint))
        return found.value if found is not None else EndpointState(source, endpoint)

    def save(self, lease: Lease, state: EndpointState, *, landed: int, finished: bool) -> None:
        """Replace the document under the lease, adding ``landed`` to the total."""

        def change(current: EndpointState | None) -> EndpointState:
            total = (current.records_total if current else 0) + landed
            new = replace(state, records_total=total, token=lease.token)
            if finished:
                now = datetime.now(UTC).isoformat()
                new = replace(new, last_success_at=now, last_error="", consecutive_failures=0)
            elif current is not None:
                new = replace(
                    new,
                    last_success_at=current.last_success_at,
                    last_error=current.last_error,
                    consecutive_failures=current.consecutive_failures,
                )
            return new

        key = endpoint_state_key(state.source, state.endpoint)
        lease.fenced_update(self.records, key, change, token_of=lambda s: s.token)

    def fail(self, source: str, endpoint: str, error: str) -> None:
        """Count the failure and keep its message."""

        def change(current: EndpointState | None) -> EndpointState:
            base = current or EndpointState(source, endpoint)
            return replace(
                base, last_error=error, consecutive_failures=base.consecutive_failures + 1
            )

        self.records.update(endpoint_state_key(source, endpoint), change)
