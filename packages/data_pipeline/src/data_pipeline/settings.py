"""Settings of the data pipeline runtime: the shared runtime settings plus the engine's."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from etl_core.runtime import RuntimeSettings

__all__ = ["PipelineSettings"]

_MEMORY_LIMIT = re.compile(r"\s*\d+(\.\d+)?\s*(%|[kmgt]i?b|[kmgt]|b|bytes?)\s*", re.IGNORECASE)
"""A memory limit as DuckDB reads it: a number and its unit (``800MB``, ``2GiB``, ``80%``)."""


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
    """How long to wait for a partition another writer holds before skipping it (a
    backfill's unit waits while that writer is alive, up to ``lease_seconds``)."""
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
        self._check_leases()
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.duckdb_threads < 0:
            threads = self.duckdb_threads
            raise ValueError(
                f"duckdb_threads must be 0 (a share of the cores) or more, got {threads}"
            )
        if not _MEMORY_LIMIT.fullmatch(self.duckdb_memory_limit):
            raise ValueError(
                "duckdb_memory_limit: expected a size such as '800MB', '2GiB' or '80%', got "
                f"{self.duckdb_memory_limit!r}"
            )

    def _check_leases(self) -> None:
        """Refuse a lease that expires at once, a negative wait, or a heartbeat too slow to
        keep the lease (each partition's writer would lose it to the next)."""
        if self.lease_seconds < 1:
            raise ValueError(f"lease_seconds must be at least 1, got {self.lease_seconds}")
        if self.lease_wait_seconds < 0:
            raise ValueError(f"lease_wait_seconds must be 0 or more, got {self.lease_wait_seconds}")
        if not 0 <= self.lease_heartbeat_seconds < self.lease_seconds:
            raise ValueError(
                "lease_heartbeat_seconds must be from 0 (a third of the lease) to below "
                f"lease_seconds ({self.lease_seconds}), got {self.lease_heartbeat_seconds}"
            )
