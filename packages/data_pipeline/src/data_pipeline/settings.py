"""Settings of the data pipeline runtime: the shared runtime settings plus the engine's."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from etl_core.runtime import RuntimeSettings
from etl_core.setting_checks import SettingChecks

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

    def _check(self, checks: SettingChecks) -> None:
        """The pipeline's own: its schedule, leases, attempts and DuckDB's resources."""
        super()._check(checks)
        checks.positive_interval("schedule_run_interval")
        self._check_leases(checks)
        checks.require(self.max_attempts >= 1, "max_attempts", "at least 1")
        checks.require(
            self.duckdb_threads >= 0, "duckdb_threads", "0 (a share of the cores) or more"
        )
        checks.require(
            _MEMORY_LIMIT.fullmatch(self.duckdb_memory_limit) is not None,
            "duckdb_memory_limit",
            "a size such as '800MB', '2GiB' or '80%'",
        )

    def _check_leases(self, checks: SettingChecks) -> None:
        """Refuse a lease that expires at once, a negative wait, or a heartbeat too slow to
        keep the lease (each partition's writer would lose it to the next)."""
        checks.require(self.lease_seconds >= 1, "lease_seconds", "at least 1")
        checks.require(self.lease_wait_seconds >= 0, "lease_wait_seconds", "0 or more")
        if checks.refuses("lease_seconds"):  # the heartbeat on its own, not against that lease
            checks.require(
                self.lease_heartbeat_seconds >= 0,
                "lease_heartbeat_seconds",
                "0 (a third of the lease) or more",
            )
        else:
            checks.require(
                0 <= self.lease_heartbeat_seconds < self.lease_seconds,
                "lease_heartbeat_seconds",
                f"from 0 (a third of the lease) to below lease_seconds ({self.lease_seconds})",
            )
