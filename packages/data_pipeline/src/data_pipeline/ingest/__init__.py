"""REST API ingestion: sources' endpoints fetched, archived raw, landed as JSON Lines chunks.

:func:`ingest_unit` runs one endpoint window (a work unit planned by
:func:`plan_units`) through an :class:`IngestContext`: every response body goes to
``raw/api/…`` with a run manifest, the records land under ``landing/api/…`` in
chunks a dataset contract matches, and the endpoint's state is committed after each
chunk, so a crash resumes at the last landed chunk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from data_pipeline.ingest import httpx_slim  # noqa: F401  (first: httpx without its CLI)
from etl_core.exports import lazy_exports

if TYPE_CHECKING:
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

# names imported on first use: the page reader process (:mod:`.reader`) imports a few
# submodules of this package without httpx and the engine
_EXPORTS = {
    "ApiClient": "data_pipeline.ingest.client",
    "Response": "data_pipeline.ingest.client",
    "IngestContext": "data_pipeline.ingest.flow",
    "IngestStoppedError": "data_pipeline.ingest.flow",
    "WindowOutcome": "data_pipeline.ingest.flow",
    "ingest_unit": "data_pipeline.ingest.flow",
    "lease_key": "data_pipeline.ingest.flow",
    "TokenBucket": "data_pipeline.ingest.ratelimit",
    "DatabaseStateStore": "data_pipeline.ingest.state",
    "EndpointState": "data_pipeline.ingest.state",
    "ObjectStateStore": "data_pipeline.ingest.state",
    "StateStore": "data_pipeline.ingest.state",
    "Window": "data_pipeline.ingest.state",
    "plan_units": "data_pipeline.ingest.windows",
    "unit_names": "data_pipeline.ingest.windows",
    "waves": "data_pipeline.ingest.windows",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, {})

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
