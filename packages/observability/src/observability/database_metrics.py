"""Database metrics: the ETL tables, the server's health and the ledger's, as one report.

:func:`collect_database` gathers, through the database adapter (:mod:`observability.db`),
per ETL table (each contract's ``[load]`` table and the ledger's tables) its row estimate,
size, vacuum health and last load; connections by state, long-running queries and the
database size (PostgreSQL; on SQLite what applies); and the ledger's health: run outcomes
and duration percentiles per lane and dataset over a window, the latest success of every
job, backfill partitions by state, failing API endpoints. :func:`record_database_metrics`
turns the :class:`DatabaseReport` into gauges (see the README's metrics table) and
:meth:`DatabaseReport.to_dict` into the ``database`` key of ``/api/status``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from etl_core.contracts import Contract
from etl_core.metrics import Registry
from observability import db

if TYPE_CHECKING:
    from observability.db import DatabaseStats, EndpointFailure, JobSuccess, RunHealth

__all__ = [
    "DURATION_QUANTILES",
    "DatabaseReport",
    "collect_database",
    "load_tables",
    "record_database_metrics",
    "record_job_successes",
]

DURATION_QUANTILES = (("0.5", "duration_p50"), ("0.9", "duration_p90"), ("0.99", "duration_p99"))
"""The run-duration quantiles exported, and the :class:`RunHealth` field of each."""


@dataclass(frozen=True)
class DatabaseReport:
    """What the database and its ledger say at :attr:`collected_at`.

    Attributes:
        collected_at: When it was collected.
        window: How far back the run health looks.
        signals: The ledger's health counts (running runs, open quarantine, backfill
            partitions by state, failing endpoints).
        stats: The server's catalog statistics of the ETL tables and itself.
        load_tables: Each contract ``[load]`` table and the datasets loaded into it.
        last_loads: When each dataset's latest load that wrote rows finished.
        health: Run outcomes and durations per lane and dataset over :attr:`window`.
        jobs: The latest success of every lane, job and dataset.
        failing: The API endpoints whose latest attempts failed.
    """

    collected_at: datetime
    window: timedelta
    signals: dict[str, int]
    stats: DatabaseStats
    load_tables: dict[str, tuple[str, ...]]
    last_loads: dict[str, datetime]
    health: tuple[RunHealth, ...]
    jobs: tuple[JobSuccess, ...]
    failing: tuple[EndpointFailure, ...]

    def table_last_load(self, table: str) -> datetime | None:
        """When the latest load into ``table`` finished (any of its datasets)."""
        loads = [
            self.last_loads[d] for d in self.load_tables.get(table, ()) if d in self.last_loads
        ]
        return max(loads, default=None)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON data (``/api/status``'s ``database``, ``database --json``)."""
        stats = self.stats
        return {
            "collected_at": self.collected_at.isoformat(),
            "vendor": stats.vendor,
            "size_bytes": stats.size_bytes,
            "connections": stats.connections,
            "long_running_queries": stats.long_running_queries,
            "longest_query_seconds": stats.longest_query_seconds,
            "tables": [self._table(t.table) for t in stats.tables],
            "missing_tables": list(stats.missing_tables),
            "notes": list(stats.notes),
            "signals": self.signals,
            "window_seconds": self.window.total_seconds(),
            "runs": [_run_health(h) for h in self.health],
            "last_success": [
                {"lane": j.lane, "job": j.job, "dataset": j.dataset, "at": _iso(j.finished_at)}
                for j in self.jobs
            ],
            "failing_endpoints": [
                {
                    "source": f.source,
                    "endpoint": f.endpoint,
                    "consecutive_failures": f.consecutive_failures,
                    "last_success_at": _iso(f.last_success_at),
                    "last_error": f.last_error[:500],
                }
                for f in self.failing
            ],
        }

    def _table(self, name: str) -> dict[str, Any]:
        table = next(t for t in self.stats.tables if t.table == name)
        return {
            "table": name,
            "datasets": list(self.load_tables.get(name, ())),
            "rows": table.rows,
            "size_bytes": table.size_bytes,
            "dead_tuples": table.dead_tuples,
            "last_autovacuum": _iso(table.last_autovacuum),
            "last_autoanalyze": _iso(table.last_autoanalyze),
            "last_load": _iso(self.table_last_load(name)),
        }


def load_tables(contracts: Iterable[Contract]) -> dict[str, tuple[str, ...]]:
    """Each contract ``[load]`` table and the datasets loaded into it."""
    tables: dict[str, tuple[str, ...]] = {}
    for contract in contracts:
        if contract.load is not None:
            tables[contract.load.table] = (*tables.get(contract.load.table, ()), contract.dataset)
    return tables


def collect_database(
    contracts: Iterable[Contract],
    *,
    now: datetime,
    window: timedelta,
    long_query_after: timedelta,
) -> DatabaseReport:
    """Collect the report; the database door must be open (:func:`observability.db.connect`).

    Raises:
        DatabaseUnavailableError: The database could not be reached.
        DatabaseRefusedError: It refused a query (a catalog view it may not read).
    """
    loaded = load_tables(contracts)
    tables = (*loaded, *db.ledger_tables())
    return DatabaseReport(
        collected_at=now,
        window=window,
        signals=db.ledger_gauges(),
        stats=db.database_stats(tables, long_query_after=long_query_after),
        load_tables=loaded,
        last_loads=db.last_loads(),
        health=tuple(db.run_health(now - window)),
        jobs=tuple(db.job_last_successes()),
        failing=tuple(db.failing_endpoints()),
    )


def record_database_metrics(report: DatabaseReport, registry: Registry) -> None:
    """Set the database, table and ledger gauges of ``report`` in ``registry``."""
    _record_server(report, registry)
    _record_tables(report, registry)
    _record_ledger(report, registry)
    record_job_successes(report.jobs, registry)


def record_job_successes(jobs: Iterable[JobSuccess], registry: Registry) -> None:
    """``etl_observability_last_success_timestamp_seconds{lane,job,dataset}``."""
    succeeded = registry.gauge(
        "etl_observability_last_success_timestamp_seconds",
        "When the latest successful (or partial) run of each lane, job and dataset "
        "finished (Unix time).",
        ("lane", "job", "dataset"),
    )
    for job in jobs:
        succeeded.labels(lane=job.lane, job=job.job, dataset=job.dataset).set(
            job.finished_at.timestamp()
        )


def _record_server(report: DatabaseReport, registry: Registry) -> None:
    """The server's gauges; on SQLite connections are declared without series, the query
    gauges not at all (an unlabelled gauge would read 0, which SQLite cannot tell)."""
    stats = report.stats
    registry.gauge(
        "etl_observability_database_size_bytes", "Size of the platform database on disk."
    ).set(stats.size_bytes)
    connections = registry.gauge(
        "etl_observability_database_connections",
        "Client connections to the platform database by state (PostgreSQL).",
        ("state",),
    )
    for state, count in (stats.connections or {}).items():
        connections.labels(state=state).set(count)
    if stats.long_running_queries is not None:  # unlabelled: declared only where measured
        registry.gauge(
            "etl_observability_database_long_running_queries",
            "Queries running longer than long_query_after (PostgreSQL).",
        ).set(stats.long_running_queries)
    if stats.longest_query_seconds is not None:
        registry.gauge(
            "etl_observability_database_longest_query_seconds",
            "Age of the oldest query still running, 0 with none (PostgreSQL).",
        ).set(stats.longest_query_seconds)


def _record_tables(report: DatabaseReport, registry: Registry) -> None:
    labels = ("table",)
    rows = registry.gauge(
        "etl_observability_table_rows",
        "Rows per ETL table: the planner's estimate on PostgreSQL, a count on SQLite.",
        labels,
    )
    size = registry.gauge(
        "etl_observability_table_size_bytes", "Size per ETL table, with its indexes.", labels
    )
    dead = registry.gauge(
        "etl_observability_table_dead_tuples", "Dead tuples per ETL table (PostgreSQL).", labels
    )
    vacuumed = registry.gauge(
        "etl_observability_table_last_autovacuum_timestamp_seconds",
        "When autovacuum last vacuumed each ETL table (PostgreSQL, Unix time).",
        labels,
    )
    analyzed = registry.gauge(
        "etl_observability_table_last_autoanalyze_timestamp_seconds",
        "When autoanalyze last analyzed each ETL table (PostgreSQL, Unix time).",
        labels,
    )
    loaded = registry.gauge(
        "etl_observability_table_last_load_timestamp_seconds",
        "When the latest load that wrote rows into each contract table finished (Unix time).",
        labels,
    )
    for table in report.stats.tables:
        rows.labels(table=table.table).set(table.rows)
        if table.size_bytes is not None:
            size.labels(table=table.table).set(table.size_bytes)
        if table.dead_tuples is not None:
            dead.labels(table=table.table).set(table.dead_tuples)
        if table.last_autovacuum is not None:
            vacuumed.labels(table=table.table).set(table.last_autovacuum.timestamp())
        if table.last_autoanalyze is not None:
            analyzed.labels(table=table.table).set(table.last_autoanalyze.timestamp())
        if (last := report.table_last_load(table.table)) is not None:
            loaded.labels(table=table.table).set(last.timestamp())


def _record_ledger(report: DatabaseReport, registry: Registry) -> None:
    signals = registry.gauge(
        "etl_observability_ledger_entries",
        "Ledger entries per health signal (running runs, open quarantine, ...).",
        ("signal",),
    )
    for signal, count in report.signals.items():
        signals.labels(signal=signal).set(count)
    registry.gauge(
        "etl_observability_run_window_seconds",
        "How far back the run outcome and duration gauges look.",
    ).set(report.window.total_seconds())
    runs = registry.gauge(
        "etl_observability_runs",
        "Runs finished in the window per lane, dataset and outcome.",
        ("lane", "dataset", "outcome"),
    )
    rate = registry.gauge(
        "etl_observability_run_success_ratio",
        "Share of the runs finished in the window that succeeded (or were partial), 0 to 1.",
        ("lane", "dataset"),
    )
    duration = registry.summary(
        "etl_observability_run_duration_seconds",
        "Run duration quantiles over the runs finished in the window.",
        ("lane", "dataset", "quantile"),
    )
    for health in report.health:
        key = {"lane": health.lane, "dataset": health.dataset}
        for outcome in ("succeeded", "partial", "failed"):
            runs.labels(**key, outcome=outcome).set(getattr(health, outcome))
        rate.labels(**key).set(health.success_rate)
        for quantile, attribute in DURATION_QUANTILES:
            duration.labels(**key, quantile=quantile).set(getattr(health, attribute))
    failures = registry.gauge(
        "etl_observability_api_endpoint_consecutive_failures",
        "Consecutive failed ingestion attempts of each failing API endpoint.",
        ("source", "endpoint"),
    )
    for endpoint in report.failing:
        failures.labels(source=endpoint.source, endpoint=endpoint.endpoint).set(
            endpoint.consecutive_failures
        )


def _run_health(health: RunHealth) -> dict[str, Any]:
    return {
        "lane": health.lane,
        "dataset": health.dataset,
        "succeeded": health.succeeded,
        "partial": health.partial,
        "failed": health.failed,
        "success_rate": health.success_rate,
        "duration_p50": health.duration_p50,
        "duration_p90": health.duration_p90,
        "duration_p99": health.duration_p99,
        "duration_max": health.duration_max,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
