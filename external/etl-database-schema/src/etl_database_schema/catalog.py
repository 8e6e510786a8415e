"""Database statistics from the server's catalog: table sizes and health, connections, size.

:func:`database_stats` reads, in one unit of work through the door, what a monitoring
runtime exports about the database itself: per table its row estimate, size and vacuum
health (``pg_class``, ``pg_stat_user_tables``), connections by state and long-running
queries (``pg_stat_activity``), and the database size. On SQLite what applies: exact row
counts, table sizes where the ``dbstat`` table is compiled in, and the file's size;
connections and queries do not exist there and are ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from etl_database_schema.door import LEDGER_APP, models

__all__ = ["DatabaseStats", "TableStats", "database_stats", "ledger_tables"]


@dataclass(frozen=True)
class TableStats:
    """One table's size and health.

    Attributes:
        table: The table's name.
        rows: Rows: the planner's estimate on PostgreSQL (``reltuples``, else live tuples
            before the first analyze), an exact count on SQLite. A partitioned table's
            (PostgreSQL) are its partitions', summed, as are its bytes and dead tuples.
        size_bytes: Table, indexes and TOAST on PostgreSQL; the table's pages on SQLite
            (``None`` when SQLite lacks ``dbstat``).
        dead_tuples: Dead tuples waiting for vacuum (PostgreSQL only).
        last_autovacuum: When autovacuum last vacuumed it (PostgreSQL only).
        last_autoanalyze: When autoanalyze last analyzed it (PostgreSQL only).
        last_vacuum: When it was last vacuumed by hand (PostgreSQL only).
        last_analyze: When it was last analyzed by hand (PostgreSQL only).
    """

    table: str
    rows: int
    size_bytes: int | None
    dead_tuples: int | None = None
    last_autovacuum: datetime | None = None
    last_autoanalyze: datetime | None = None
    last_vacuum: datetime | None = None
    last_analyze: datetime | None = None


@dataclass(frozen=True)
class DatabaseStats:
    """What the database says about itself at one instant.

    Attributes:
        vendor: ``postgresql`` or ``sqlite``.
        size_bytes: The database's size on disk.
        tables: The requested tables that exist, in the order asked.
        missing_tables: The requested tables that do not exist.
        connections: Client connections to this database by state (PostgreSQL only).
        long_running_queries: Queries running for longer than the threshold (PostgreSQL).
        longest_query_seconds: Age of the oldest query still running, ``0`` with none
            (PostgreSQL only).
        notes: What could not be measured, and why.
    """

    vendor: str
    size_bytes: int
    tables: tuple[TableStats, ...]
    missing_tables: tuple[str, ...] = ()
    connections: dict[str, int] | None = None
    long_running_queries: int | None = None
    longest_query_seconds: float | None = None
    notes: tuple[str, ...] = ()


def ledger_tables() -> tuple[str, ...]:
    """The ledger's table names (``etl_pipeline_run``, …), from its models."""
    with models(LEDGER_APP) as ledger:
        return tuple(sorted(model._meta.db_table for model in ledger.values()))


def database_stats(tables: Iterable[str], *, long_query_after: timedelta) -> DatabaseStats:
    """Size and health of ``tables`` and of the database, in one unit of work.

    Args:
        tables: Table names (a contract's ``[load]`` table, the ledger's tables).
        long_query_after: A query running longer than this counts as long-running.

    Raises:
        DatabaseUnavailableError: The database could not be reached.
        DatabaseRefusedError: It refused a catalog query (permissions).
    """
    wanted = tuple(dict.fromkeys(tables))
    from django.db import connection

    with models(LEDGER_APP), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            return _postgres(cursor, wanted, long_query_after)
        if connection.vendor == "sqlite":
            return _sqlite(cursor, wanted)
        return DatabaseStats(connection.vendor, 0, (), wanted, notes=("unsupported vendor",))


_PG_TABLES = """
SELECT c.relname, l.reltuples::bigint, pg_total_relation_size(l.oid), s.n_live_tup,
       s.n_dead_tup, s.last_autovacuum, s.last_autoanalyze, s.last_vacuum, s.last_analyze
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN LATERAL (
    SELECT c.oid AS relid WHERE c.relkind = 'r'
    UNION ALL
    SELECT t.relid FROM pg_partition_tree(c.oid) t WHERE c.relkind = 'p' AND t.isleaf
) leaf ON true
LEFT JOIN pg_class l ON l.oid = leaf.relid
LEFT JOIN pg_stat_user_tables s ON s.relid = l.oid
WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY (current_schemas(false))
  AND c.relname = ANY (%s)
"""
"""One row per table and leaf: a partitioned table (the curated tables on PostgreSQL)
holds no rows or storage of its own, its partitions do (:func:`_pg_tables`)."""
_PG_CONNECTIONS = """
SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'client backend'
GROUP BY 1
"""
_PG_QUERIES = """
SELECT count(*) FILTER (WHERE clock_timestamp() - query_start > %s),
       coalesce(max(extract(epoch FROM clock_timestamp() - query_start)), 0)
FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'client backend'
  AND state NOT IN ('idle') AND pid <> pg_backend_pid()
"""


def _postgres(cursor: Any, wanted: tuple[str, ...], long_query_after: timedelta) -> DatabaseStats:
    cursor.execute("SELECT pg_database_size(current_database())")
    (size,) = cursor.fetchone()
    cursor.execute(_PG_TABLES, [list(wanted)])
    found = _pg_tables(cursor.fetchall())
    cursor.execute(_PG_CONNECTIONS)
    connections = {state: int(n) for state, n in cursor.fetchall()}
    cursor.execute(_PG_QUERIES, [long_query_after])
    long_running, longest = cursor.fetchone()
    return DatabaseStats(
        vendor="postgresql",
        size_bytes=int(size),
        tables=tuple(found[name] for name in wanted if name in found),
        missing_tables=tuple(name for name in wanted if name not in found),
        connections=connections,
        long_running_queries=int(long_running),
        longest_query_seconds=float(longest),
    )


def _pg_tables(rows: Iterable[tuple[Any, ...]]) -> dict[str, TableStats]:
    """Each table's stats from its leaves' rows: rows, bytes and dead tuples summed, the
    latest vacuum and analyze of any leaf (a partitioned table with no partition: 0)."""
    leaves: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        leaves.setdefault(row[0], []).append(row)
    return {name: _pg_table(name, found) for name, found in leaves.items()}


def _pg_table(name: str, leaves: list[tuple[Any, ...]]) -> TableStats:
    rows = size = 0
    dead: int | None = None
    latest: list[Any] = [None, None, None, None]
    for _, reltuples, leaf_size, live, leaf_dead, *when in leaves:
        rows += reltuples if reltuples is not None and reltuples >= 0 else (live or 0)
        size += leaf_size or 0
        if leaf_dead is not None:
            dead = (dead or 0) + int(leaf_dead)
        latest = [max((a for a in (old, new) if a is not None), default=None)
                  for old, new in zip(latest, when, strict=True)]  # fmt: skip
    autovacuum, autoanalyze, vacuum, analyze = latest
    return TableStats(
        table=name,
        rows=int(rows),
        size_bytes=int(size),
        dead_tuples=dead,
        last_autovacuum=autovacuum,
        last_autoanalyze=autoanalyze,
        last_vacuum=vacuum,
        last_analyze=analyze,
    )


def _sqlite(cursor: Any, wanted: tuple[str, ...]) -> DatabaseStats:
    cursor.execute("PRAGMA page_count")
    (pages,) = cursor.fetchone()
    cursor.execute("PRAGMA page_size")
    (page_size,) = cursor.fetchone()
    cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    present = {row[0] for row in cursor.fetchall()}
    sizes, notes = _sqlite_sizes(cursor)
    tables = []
    for name in wanted:
        if name in present:
            cursor.execute(f"SELECT count(*) FROM {_quoted(name)}")
            tables.append(TableStats(name, int(cursor.fetchone()[0]), sizes.get(name)))
    return DatabaseStats(
        vendor="sqlite",
        size_bytes=int(pages) * int(page_size),
        tables=tuple(tables),
        missing_tables=tuple(name for name in wanted if name not in present),
        notes=notes,
    )


def _sqlite_sizes(cursor: Any) -> tuple[dict[str, int], tuple[str, ...]]:
    """Bytes per table from ``dbstat`` (its indexes not included); empty when not compiled in."""
    from django.db import DatabaseError

    try:
        cursor.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name")
    except DatabaseError:
        return {}, ("table sizes need SQLite's dbstat virtual table",)
    return {name: int(size) for name, size in cursor.fetchall()}, ()


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
