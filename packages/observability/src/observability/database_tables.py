"""The database report as tables for people (``etl-observability database``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from rich.filesize import decimal as human_size
from rich.table import Table
from rich.text import Text

from observability.database_metrics import DatabaseReport
from observability.monitors import human_duration

__all__ = ["database_tables"]


def database_tables(report: DatabaseReport) -> Iterator[Table]:
    """The server, its ETL tables, the runs of the window and the failing API endpoints."""
    yield _server(report)
    yield _tables(report)
    yield _runs(report)
    if report.failing:
        yield _endpoints(report)


def _server(report: DatabaseReport) -> Table:
    stats = report.stats
    table = Table("measure", "value", title=f"database ({stats.vendor})")
    table.add_row("size", human_size(stats.size_bytes))
    if stats.connections is not None:
        shown = ", ".join(f"{n} {state}" for state, n in sorted(stats.connections.items()))
        table.add_row("connections", shown or "0")
    if stats.long_running_queries is not None:
        table.add_row("long-running queries", str(stats.long_running_queries))
    if stats.longest_query_seconds is not None:
        table.add_row("longest query", _seconds(stats.longest_query_seconds))
    if stats.missing_tables:
        table.add_row("missing tables", Text(", ".join(stats.missing_tables), style="yellow"))
    for note in stats.notes:
        table.add_row("note", Text(note))
    return table


def _tables(report: DatabaseReport) -> Table:
    table = Table(
        "table", "datasets", "rows", "size", "dead", "last autovacuum", "last load",
        title="ETL tables",
    )  # fmt: skip
    for stats in report.stats.tables:
        table.add_row(
            Text(stats.table),
            Text(", ".join(report.load_tables.get(stats.table, ())) or "-"),
            f"{stats.rows:,}",
            human_size(stats.size_bytes) if stats.size_bytes is not None else "-",
            f"{stats.dead_tuples:,}" if stats.dead_tuples is not None else "-",
            _when(stats.last_autovacuum) if stats.dead_tuples is not None else "-",
            _when(report.table_last_load(stats.table)),
        )
    return table


def _runs(report: DatabaseReport) -> Table:
    window = human_duration(report.window)
    table = Table(
        "lane", "dataset", "ok", "partial", "failed", "success", "p50", "p90", "p99",
        title=f"runs finished in the last {window}",
    )  # fmt: skip
    for health in report.health:
        table.add_row(
            health.lane,
            Text(health.dataset or "-"),
            str(health.succeeded),
            str(health.partial),
            Text(str(health.failed), style="red" if health.failed else ""),
            f"{health.success_rate:.0%}",
            *(_seconds(v) for v in (health.duration_p50, health.duration_p90)),
            _seconds(health.duration_p99),
        )
    if not report.health:
        table.caption = "no run finished in the window"
    return table


def _endpoints(report: DatabaseReport) -> Table:
    table = Table("source", "endpoint", "failures", "last success", "error", title="failing APIs")
    for endpoint in report.failing:
        table.add_row(
            Text(endpoint.source),
            Text(endpoint.endpoint),
            str(endpoint.consecutive_failures),
            _when(endpoint.last_success_at),
            Text(endpoint.last_error[:120]),
        )
    return table


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment is not None else "never"


def _seconds(value: float) -> str:
    """A duration in seconds for people: ``4.2s`` under a minute, else ``3h 12m``."""
    return f"{value:.1f}s" if value < 60 else human_duration(timedelta(seconds=value))
