"""REST API ingestion: sources' endpoints fetched, archived raw, landed as JSON Lines chunks.

:func:`ingest_unit` runs one endpoint window (a work unit planned by
:func:`plan_units`) through an :class:`IngestContext`: every response body goes to
``raw/api/…`` with a run manifest, the records land under ``landing/api/…`` in
chunks a dataset contract matches, and the endpoint's state is committed after each
chunk, so a crash resumes at the last landed chunk.
"""

from __future__ import annotations

from data_pipeline.ingest import httpx_slim  # noqa: F401  (first: httpx without its CLI)
from data_pipeline.ingest.client import ApiClient, Response
from data_pipeline.ingest.flow import (
    IngestContext,
    IngestStoppedError,
    WindowOutcome,
    ingest_unit,
    lease_key,
)
from data_pipeline.ingest.ratelimit import TokenBucket
from data_pipeline.ingest.state import (
    DatabaseStateStore,
    EndpointState,
    ObjectStateStore,
    StateStore,
    Window,
)
from data_pipeline.ingest.windows import plan_units, unit_names, waves

__all__ = [
    "ApiClient",
    "DatabaseStateStore",
    "EndpointState",
    "IngestContext",
    "IngestStoppedError",
    "ObjectStateStore",
    "Response",
    "StateStore",
    "TokenBucket",
    "Window",
    "WindowOutcome",
    "ingest_unit",
    "lease_key",
    "plan_units",
    "unit_names",
    "waves",
]
