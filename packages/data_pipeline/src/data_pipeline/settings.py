"""Settings of the data pipeline runtime: the shared runtime settings plus the engine's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from etl_core.runtime import RuntimeSettings

__all__ = ["PipelineSettings"]


@dataclass(frozen=True)
class PipelineSettings(RuntimeSettings):
    """Everything ``etl-data-pipeline`` reads from flags, ``ETL_*`` and ``etl.toml``."""

    duckdb_memory_limit: str = "800MB"
    """DuckDB's memory limit per partition; beyond it DuckDB spills to the work directory."""
    duckdb_threads: int = 0
    """DuckDB worker threads per partition; 0 shares the host's cores among the partitions
    run at once (``backfill --concurrency``, a worker's processes)."""
    lease_seconds: int = 3600
    """How long a partition lease lasts before another writer may take it over."""
    lease_wait_seconds: int = 0
    """How long to wait for a partition another writer holds before skipping it."""
    lease_heartbeat_seconds: int = 0
    """How often a held partition lease is renewed; 0 means a third of ``lease_seconds``."""
    load_analyze: bool = False
    """``ANALYZE`` each day partition a load attaches (PostgreSQL), before it is swapped in:
    for servers without autovacuum, which otherwise never gather its statistics."""
    max_attempts: int = 3
    """Attempts per partition in a backfill before it is marked failed."""
    schedule_run_interval: timedelta = timedelta(minutes=5)
    """``schedule``: how often the pending partitions of every dataset are enqueued (what
    ``run`` would process); API sources follow their own ``schedule`` cron."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._positive_interval("schedule_run_interval", self.schedule_run_interval)
