"""Curated tables as PostgreSQL declaratively partitioned tables, one partition per day of ``dt``.

A curated table ``T`` (migration ``etl_retail.0003_partitioned_curated``) is partitioned
``BY RANGE (dt)``: a partition ``T_p<YYYYMMDD>`` per loaded day, ``FOR VALUES FROM (day)
TO (day + 1)``, and ``T_default`` for rows written some other way (an ORM save of a day
without a partition). Its primary key is ``(id, dt)`` (a partitioned table's unique keys
include the partition key); ``id`` takes its values from the sequence ``T_id_seq``.

A load replaces a day without readers ever seeing a mix of old and new rows or none:

1. :func:`drop_leftover_staging` drops, by name, staging tables a cut-short load of the
   same day left behind (``T_p<YYYYMMDD>_load_<token>``);
2. :func:`create_staging` creates ``T_p<YYYYMMDD>_load_<token>`` shaped like a partition
   (columns, defaults, ``CHECK`` constraints) with the day's ``CHECK`` constraint, so
   that attaching it needs no scan; the caller fills it with ``COPY … (FREEZE)`` in the
   same transaction and commits (with ids from a block :func:`reserve_ids` took, the
   server evaluates no ``nextval`` per row);
3. :func:`build_staging_indexes` builds the parent's indexes and unique constraints on it,
   in bulk, after the data (or :func:`staging_index_builds` on several connections at
   once, then :func:`finish_staging_indexes`);
4. :func:`swap_partition`, in one short transaction: detach and drop the day's partition,
   rename the staging table to it and attach it.

Until step 4 commits the old partition is untouched, so a crash at any step leaves it in
place and a re-run completes the load. Statements use this module's SQL on a DB-API cursor
(Django's, over psycopg 3); identifiers are built from table names the caller vetted.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

__all__ = [
    "INDEX_SETTINGS",
    "PARTITION_COLUMN",
    "IndexDefinition",
    "build_staging_indexes",
    "create_staging",
    "drop_leftover_staging",
    "finish_staging_indexes",
    "index_definitions",
    "is_partitioned",
    "partition_name",
    "partition_table",
    "reserve_ids",
    "staging_index_builds",
    "staging_tables",
    "swap_partition",
    "unpartition_table",
]

PARTITION_COLUMN = "dt"
"""The partition key of every partitioned curated table."""
_MAX_IDENTIFIER = 63
_INDEX_MEMORY = "256MB"
"""``maintenance_work_mem`` while a staging table's indexes are built (sorts stay in memory)."""
_INDEX_WORKERS = 4
_INDEX_FILL = 100
_INDEX_DEF = re.compile(r"^CREATE (UNIQUE )?INDEX \S+ ON (?:ONLY )?\S+ (USING .*)$")


@dataclass(frozen=True)
class IndexDefinition:
    """An index of a table: a ``PRIMARY KEY``/``UNIQUE`` constraint or a plain index."""

    name: str
    constraint: str
    """The constraint's definition (``PRIMARY KEY (id, dt)``), or '' for a plain index."""
    using: str
    """What follows ``USING`` in the index definition (``btree (store_code, dt)``)."""
    unique: bool


def partition_name(table: str, dt: date) -> str:
    """The name of partition ``dt`` of ``table``: ``<table>_p<YYYYMMDD>``."""
    return _checked(f"{table}_p{dt:%Y%m%d}")


def _staging_prefix(table: str, dt: date) -> str:
    return f"{partition_name(table, dt)}_load_"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _day(dt: date) -> str:
    return f"DATE '{dt.isoformat()}'"


def _checked(name: str) -> str:
    room = _MAX_IDENTIFIER - len("_load_123456_99")  # a staging table's index names
    if len(name) > room:
        raise ValueError(
            f"partition name {name!r} is too long: PostgreSQL identifiers have at most "
            f"{_MAX_IDENTIFIER} characters; expected a table name of at most "
            f"{room - len('_p20260101')}"
        )
    return name


def is_partitioned(cursor: Any, table: str) -> bool:
    """True when ``table`` is a partitioned table of the current schema (PostgreSQL)."""
    cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [_quoted(table)])
    row = cursor.fetchone()
    return row is not None and row[0] == "p"


def staging_tables(cursor: Any, table: str, dt: date) -> list[str]:
    """The staging tables of partition ``dt`` of ``table`` that exist (left by a crash)."""
    pattern = _staging_prefix(table, dt).replace("_", r"\_") + "%"
    cursor.execute(
        "SELECT relname FROM pg_class WHERE relname LIKE %s AND relkind = 'r' "
        "AND relnamespace = current_schema()::regnamespace ORDER BY relname",
        [pattern],
    )
    return [row[0] for row in cursor.fetchall()]


def drop_leftover_staging(cursor: Any, table: str, dt: date) -> list[str]:
    """Drop the staging tables a cut-short load of ``dt`` left; returns their names.

    Run it under the partition's lease: a load of the same day still filling its staging
    table (a writer whose lease was taken over) is waited for, then its table is dropped,
    so that writer fails instead of attaching it.
    """
    names = staging_tables(cursor, table, dt)
    for name in names:
        cursor.execute(f"DROP TABLE IF EXISTS {_quoted(name)}")
    return names


def create_staging(cursor: Any, table: str, dt: date) -> str:
    """Create an empty table shaped like partition ``dt`` of ``table``; returns its name.

    It has the parent's columns, defaults and ``CHECK`` constraints and one more, the
    partition's bound, so that the rows are checked as they arrive and attaching needs no
    scan. Call it inside the transaction that fills it (``COPY … (FREEZE)`` needs that).
    """
    name = _staging_prefix(table, dt) + secrets.token_hex(3)
    bound = f"{PARTITION_COLUMN} >= {_day(dt)} AND {PARTITION_COLUMN} < {_day(dt + timedelta(1))}"
    cursor.execute(
        f"CREATE TABLE {_quoted(name)} (LIKE {_quoted(table)} INCLUDING DEFAULTS "
        f"INCLUDING CONSTRAINTS, CONSTRAINT {_quoted(_bound_check(name))} CHECK ({bound}))"
    )
    return name


def reserve_ids(cursor: Any, table: str, count: int, *, lock_timeout_ms: int = 1000) -> int | None:
    """Take ``count`` consecutive values of the sequence behind ``table``'s ``id`` at once;
    returns the first, or ``None`` when ``id`` has no sequence of its own stepping by 1
    without a cache, or the block would pass the sequence's maximum.

    A load that numbers its rows from the block spares the server a ``nextval`` per row
    (about a quarter of a ``COPY``'s cost). Run it in a short transaction of its own: the
    sequence is locked against other ``nextval`` calls until it commits, so no other
    writer takes a value inside the block. Waiting for that lock (a transaction that
    called ``nextval`` holds it until it ends) is bounded by ``lock_timeout_ms``
    (SQLSTATE ``55P03`` past it; the caller may go on without a block).
    """
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [_quoted(table)])
    row = cursor.fetchone()
    sequence = row[0] if row else None
    if sequence is None or count < 1:
        return None
    cursor.execute(
        "SELECT seqincrement, seqcache, seqmax FROM pg_sequence WHERE seqrelid = %s::regclass",
        [sequence],
    )
    found = cursor.fetchone()
    if found is None or tuple(found[:2]) != (1, 1):  # a cache would burn a block per session
        return None
    cursor.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
    cursor.execute(f"ALTER SEQUENCE {sequence} INCREMENT BY 1")  # the lock, before any value
    cursor.execute("SELECT nextval(%s)", [sequence])
    (first,) = cursor.fetchone()
    if int(first) + count - 1 > int(found[2]):  # past its maximum (or round, if it cycles)
        return None
    if count > 1:
        cursor.execute(f"ALTER SEQUENCE {sequence} INCREMENT BY {int(count) - 1}")
        cursor.execute("SELECT nextval(%s)", [sequence])
        cursor.execute(f"ALTER SEQUENCE {sequence} INCREMENT BY 1")
    return int(first)


def _bound_check(staging: str) -> str:
    return f"{staging}_bound"


def index_definitions(cursor: Any, table: str) -> list[IndexDefinition]:
    """The indexes of ``table``: constraints (primary key, unique) and plain indexes."""
    cursor.execute(
        """
        SELECT ic.relname, coalesce(pg_get_constraintdef(c.oid), ''),
               pg_get_indexdef(i.indexrelid), i.indisunique
        FROM pg_index i
        JOIN pg_class ic ON ic.oid = i.indexrelid
        LEFT JOIN pg_constraint c
               ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u')
        WHERE i.indrelid = to_regclass(%s)
        ORDER BY i.indisprimary DESC, ic.relname
        """,
        [_quoted(table)],
    )
    definitions = []
    for name, constraint, indexdef, unique in cursor.fetchall():
        matched = _INDEX_DEF.match(indexdef)
        if matched is None:
            raise ValueError(f"index {name} of {table}: cannot read its definition {indexdef!r}")
        definitions.append(IndexDefinition(name, constraint, matched.group(2), bool(unique)))
    return definitions


def staging_index_builds(cursor: Any, table: str, staging: str) -> list[str]:
    """``CREATE INDEX`` statements for every index of ``table``, on ``staging``, the
    likely longest builds first.

    Each becomes ``<staging>_<n>`` (renamed to ``<partition>_<n>`` by :func:`swap_partition`).
    They may run at the same time on several connections (each takes a ``SHARE`` lock);
    run each in a transaction that began with the :data:`INDEX_SETTINGS`, then
    :func:`finish_staging_indexes`. Plain indexes come first (on a curated table they key a
    code with few distinct values, whose sort compares most rows in full), the primary key
    last (its ids arrive in order, so its sort finds them sorted): builders taking them in
    this order finish together. A B-tree without storage parameters of its own is packed
    full (``fillfactor`` 100, not 90): a day partition is written once, by its load.
    """
    definitions = list(enumerate(index_definitions(cursor, table)))
    order = sorted(definitions, key=lambda pair: (_build_rank(pair[1]), pair[0]))
    return [
        f"CREATE {'UNIQUE ' if index.unique else ''}INDEX {_quoted(f'{staging}_{number}')} "
        f"ON {_quoted(staging)} {index.using}{_packed(index.using)}"
        for number, index in order
    ]


def _build_rank(index: IndexDefinition) -> int:
    """0 for a plain index, 1 for a unique one, 2 for the primary key."""
    if index.constraint.startswith("PRIMARY KEY"):
        return 2
    return 1 if index.unique else 0


def _packed(using: str) -> str:
    """The storage parameter that fills a B-tree's pages, unless it sets its own."""
    plain = using.startswith("USING btree ") and " WITH (" not in using and " WHERE " not in using
    return f" WITH (fillfactor = {_INDEX_FILL})" if plain else ""


INDEX_SETTINGS = (
    f"SET LOCAL maintenance_work_mem = '{_INDEX_MEMORY}'",
    f"SET LOCAL max_parallel_maintenance_workers = {_INDEX_WORKERS}",
)
"""Run first in the transaction of an index build: its sort stays in memory and is shared
by up to that many parallel workers (still bounded by the server's ``max_parallel_workers``)."""


def finish_staging_indexes(cursor: Any, table: str, staging: str) -> int:
    """Turn the staging indexes that back a primary key or unique constraint of ``table``
    into those constraints (no scan: the index is there).

    Attaching then adopts every index instead of building its own. Returns how many
    indexes ``staging`` has for ``table``'s. The new partition is not analysed here (the
    index builds record its row count; autovacuum analyses a table this many rows were
    written to within ``autovacuum_naptime``), which keeps the load short.
    """
    definitions = index_definitions(cursor, table)
    for number, index in enumerate(definitions):
        if index.constraint:
            kind = "PRIMARY KEY" if index.constraint.startswith("PRIMARY KEY") else "UNIQUE"
            name = _quoted(f"{staging}_{number}")
            cursor.execute(
                f"ALTER TABLE {_quoted(staging)} ADD CONSTRAINT {name} {kind} USING INDEX {name}"
            )
    return len(definitions)


def build_staging_indexes(cursor: Any, table: str, staging: str) -> int:
    """Build every index and unique constraint of ``table`` on ``staging``, one after the
    other in the cursor's transaction; returns how many (see :func:`staging_index_builds`)."""
    for setting in INDEX_SETTINGS:
        cursor.execute(setting)
    for statement in staging_index_builds(cursor, table, staging):
        cursor.execute(statement)
    return finish_staging_indexes(cursor, table, staging)


def _attached_partitions(cursor: Any, table: str) -> dict[str, str]:
    """Partitions of ``table``: name → bound expression (``DEFAULT``, ``FOR VALUES …``)."""
    cursor.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(%s)",
        [_quoted(table)],
    )
    return dict(cursor.fetchall())


def swap_partition(
    cursor: Any,
    table: str,
    dt: date,
    staging: str,
    *,
    indexes: int,
    lock_timeout_ms: int = 2000,
    before_attach: Callable[[], None] | None = None,
) -> bool:
    """Replace partition ``dt`` of ``table`` with ``staging``; returns whether one was replaced.

    Call it inside one transaction: the day's partition is detached and dropped, rows of
    the day in the default partition are deleted, ``staging`` (with ``indexes`` indexes
    built by :func:`build_staging_indexes`) is renamed to the partition and attached.
    Readers wait for the commit (detaching locks the table) and then see the new rows;
    until it they see the old ones. ``before_attach`` runs between the drop and the
    attach (fault injection in tests). Waiting for a lock is bounded by
    ``lock_timeout_ms`` (SQLSTATE ``55P03`` past it): a query that holds the table for
    long must not make every other reader queue behind the swap; retry later.

    Raises:
        ValueError: a table with the partition's name exists but is not a partition of
            ``table`` (it is left alone).
    """
    name = partition_name(table, dt)
    cursor.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
    partitions = _attached_partitions(cursor, table)
    replaced = name in partitions
    if replaced:
        cursor.execute(f"LOCK TABLE {_quoted(table)} IN ACCESS EXCLUSIVE MODE")
        cursor.execute(f"ALTER TABLE {_quoted(table)} DETACH PARTITION {_quoted(name)}")
        cursor.execute(f"DROP TABLE {_quoted(name)}")
    elif is_partitioned(cursor, name) or _exists(cursor, name):
        raise ValueError(
            f"{name} exists but is not a partition of {table}; expected the partition of "
            f"{dt} or no table of that name (rename or drop it)"
        )
    for default in (n for n, bound in partitions.items() if bound == "DEFAULT"):
        cursor.execute(f"DELETE FROM {_quoted(default)} WHERE {PARTITION_COLUMN} = {_day(dt)}")
    if before_attach is not None:
        before_attach()
    cursor.execute(f"ALTER TABLE {_quoted(staging)} RENAME TO {_quoted(name)}")
    for number in range(indexes):
        cursor.execute(
            f"ALTER INDEX {_quoted(f'{staging}_{number}')} RENAME TO {_quoted(f'{name}_{number}')}"
        )
    cursor.execute(
        f"ALTER TABLE {_quoted(table)} ATTACH PARTITION {_quoted(name)} "
        f"FOR VALUES FROM ({_day(dt)}) TO ({_day(dt + timedelta(1))})"
    )
    cursor.execute(f"ALTER TABLE {_quoted(name)} DROP CONSTRAINT {_quoted(_bound_check(staging))}")
    return replaced


def _exists(cursor: Any, name: str) -> bool:
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [_quoted(name)])
    row = cursor.fetchone()
    return bool(row and row[0])


# --------------------------------------------------------------------------- migration


def partition_table(cursor: Any, table: str) -> int:
    """Turn plain table ``table`` into one partitioned by day of ``dt``, keeping every row.

    The rows are moved into a partition per day they hold (plus an empty default
    partition), ``id`` keeps its values and continues from the sequence ``<table>_id_seq``,
    the primary key becomes ``(id, dt)`` and the other indexes and unique constraints are
    recreated on the partitioned table. Run it in one transaction (a migration): a failure
    leaves the table as it was. A table that is already partitioned is left alone.

    Returns:
        The number of day partitions created.

    Raises:
        ValueError: a unique constraint or index of the table lacks ``dt`` (a partitioned
            table cannot enforce it).
    """
    if is_partitioned(cursor, table):
        return 0
    old = f"{table}_unpartitioned"
    definitions = index_definitions(cursor, table)
    for index in definitions:
        primary = index.constraint.startswith("PRIMARY KEY")
        keyed = re.search(rf"\b{PARTITION_COLUMN}\b", index.using + index.constraint)
        if index.unique and not primary and not keyed:
            raise ValueError(
                f"{table}: unique index {index.name} lacks {PARTITION_COLUMN}; expected "
                f"every unique key of a partitioned table to include it"
            )
    cursor.execute(f"ALTER TABLE {_quoted(table)} RENAME TO {_quoted(old)}")
    _drop_indexes(cursor, old, definitions)
    cursor.execute(f"SELECT coalesce(max(id), 0) FROM {_quoted(old)}")
    (top,) = cursor.fetchone()
    cursor.execute(f"ALTER TABLE {_quoted(old)} ALTER COLUMN id DROP IDENTITY IF EXISTS")
    cursor.execute(
        f"CREATE TABLE {_quoted(table)} (LIKE {_quoted(old)} INCLUDING DEFAULTS "
        f"INCLUDING CONSTRAINTS INCLUDING COMMENTS) PARTITION BY RANGE ({PARTITION_COLUMN})"
    )
    sequence = f"{table}_id_seq"
    cursor.execute(f"CREATE SEQUENCE {_quoted(sequence)} OWNED BY {_quoted(table)}.id")
    cursor.execute("SELECT setval(%s, %s, false)", [_quoted(sequence), int(top) + 1])
    cursor.execute(
        f"ALTER TABLE {_quoted(table)} ALTER COLUMN id SET DEFAULT nextval('{sequence}')"
    )
    for index in definitions:
        _create_index(cursor, table, index, primary=("id", PARTITION_COLUMN))
    cursor.execute(
        f"CREATE TABLE {_quoted(table + '_default')} PARTITION OF {_quoted(table)} DEFAULT"
    )
    cursor.execute(f"SELECT DISTINCT {PARTITION_COLUMN} FROM {_quoted(old)} ORDER BY 1")
    days = [row[0] for row in cursor.fetchall()]
    for day in days:
        cursor.execute(
            f"CREATE TABLE {_quoted(partition_name(table, day))} PARTITION OF {_quoted(table)} "
            f"FOR VALUES FROM ({_day(day)}) TO ({_day(day + timedelta(1))})"
        )
    _move_rows(cursor, old, table)
    cursor.execute(f"DROP TABLE {_quoted(old)}")
    return len(days)


def unpartition_table(cursor: Any, table: str) -> None:
    """Undo :func:`partition_table`: one plain table with every row, primary key ``id``
    (an identity column again). A table that is not partitioned is left alone."""
    if not is_partitioned(cursor, table):
        return
    old = f"{table}_partitioned"
    definitions = index_definitions(cursor, table)
    cursor.execute(f"ALTER TABLE {_quoted(table)} RENAME TO {_quoted(old)}")
    _drop_indexes(cursor, old, definitions)
    cursor.execute(
        f"CREATE TABLE {_quoted(table)} (LIKE {_quoted(old)} INCLUDING DEFAULTS "
        f"INCLUDING CONSTRAINTS INCLUDING COMMENTS)"
    )
    cursor.execute(f"ALTER TABLE {_quoted(table)} ALTER COLUMN id DROP DEFAULT")
    _move_rows(cursor, old, table)
    cursor.execute(f"DROP TABLE {_quoted(old)}")  # its partitions and sequence go with it
    cursor.execute(f"SELECT coalesce(max(id), 0) FROM {_quoted(table)}")
    (top,) = cursor.fetchone()
    cursor.execute(
        f"ALTER TABLE {_quoted(table)} ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY "
        f"(START WITH {int(top) + 1})"
    )
    for index in definitions:
        _create_index(cursor, table, index, primary=("id",))


def _drop_indexes(cursor: Any, table: str, definitions: Sequence[IndexDefinition]) -> None:
    for index in definitions:
        if index.constraint:
            cursor.execute(f"ALTER TABLE {_quoted(table)} DROP CONSTRAINT {_quoted(index.name)}")
        else:
            cursor.execute(f"DROP INDEX {_quoted(index.name)}")


def _create_index(
    cursor: Any, table: str, index: IndexDefinition, *, primary: Sequence[str]
) -> None:
    if index.constraint.startswith("PRIMARY KEY"):
        columns = ", ".join(_quoted(column) for column in primary)
        cursor.execute(
            f"ALTER TABLE {_quoted(table)} ADD CONSTRAINT {_quoted(index.name)} "
            f"PRIMARY KEY ({columns})"
        )
    elif index.constraint:
        cursor.execute(
            f"ALTER TABLE {_quoted(table)} ADD CONSTRAINT {_quoted(index.name)} {index.constraint}"
        )
    else:
        unique = "UNIQUE " if index.unique else ""
        cursor.execute(
            f"CREATE {unique}INDEX {_quoted(index.name)} ON {_quoted(table)} {index.using}"
        )


def _move_rows(cursor: Any, source: str, target: str) -> None:
    cursor.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum",
        [_quoted(source)],
    )
    columns = ", ".join(_quoted(row[0]) for row in cursor.fetchall())
    cursor.execute(
        f"INSERT INTO {_quoted(target)} ({columns}) SELECT {columns} FROM {_quoted(source)}"
    )
