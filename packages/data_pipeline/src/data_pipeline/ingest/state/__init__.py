"""Endpoint state: the interface and its two stores (object store, database)."""

from __future__ import annotations

from data_pipeline.ingest.state.base import EndpointState, StateStore, Window
from data_pipeline.ingest.state.database import DatabaseStateStore
from data_pipeline.ingest.state.objects import ObjectStateStore, endpoint_state_key

__all__ = [
    "DatabaseStateStore",
    "EndpointState",
    "ObjectStateStore",
    "StateStore",
    "Window",
    "endpoint_state_key",
]
