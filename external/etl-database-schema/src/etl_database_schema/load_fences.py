"""Fencing tokens of curated loads: a loader whose lease was taken over never commits.

A load of a curated partition runs under the partition's lease, whose fencing token grows
with every acquisition. A lease check before the commit is not enough: a loader can stall
after it (a pause, the swap's lock waits) while its lease is taken over and the new holder
loads the day, then commit and replace the newer rows. So the transaction that makes a
load's rows visible (the partition swap on PostgreSQL, the ``DELETE`` and ``INSERT``s
elsewhere) also calls :func:`record_load_token`: a conditional upsert into
``etl_load_fence`` (model :class:`~etl_database_schema.ledger.models.LoadFence`,
migration ``etl_ledger.0005_load_fence``) that writes the token only if the row holds no
newer one. When it does, the caller rolls its transaction back; the newer rows stay.

The upsert takes the row's lock, so of two loads of one partition under one lease the
later committer waits for the earlier one and then compares against its token. A re-run
under the same token (the same holder) passes and replaces its own load. Tokens are
compared per lease of one store (``store``, the canonical root URL of the object store
holding the lease, and ``lease``, its key there): tokens of different leases, or of the
same lease key in two stores sharing the database (staging and production, a store
re-created elsewhere), count independently, so each has its own row (migration
``etl_ledger.0006_load_fence_store``). A row recorded before that migration has an empty
``store``: the first load of its day under its lease adopts it for its own store (and is
compared against its token), so the fences recorded before the upgrade stay in force. The
SQL is the same on PostgreSQL and SQLite (``INSERT … ON CONFLICT … DO UPDATE … WHERE``);
statements run on a DB-API cursor (Django's) inside the caller's transaction.
"""

from __future__ import annotations

from datetime import date
from typing import Any

__all__ = ["FENCE_TABLE", "check_store", "record_load_token", "recorded_token"]

FENCE_TABLE = "etl_load_fence"
"""The table of the newest token each (store, curated table, ``dt``, lease) was loaded
under."""

_ADOPT = (
    f"UPDATE {FENCE_TABLE} SET store = %s "
    "WHERE store = '' AND table_name = %s AND dt = %s AND lease = %s "
    f"AND NOT EXISTS (SELECT 1 FROM {FENCE_TABLE} AS own WHERE own.store = %s "
    "AND own.table_name = %s AND own.dt = %s AND own.lease = %s)"
)
"""A row recorded before the store was part of the key, taken over by ``store``."""
_UPSERT = (
    f"INSERT INTO {FENCE_TABLE} (store, table_name, dt, lease, token, loaded_at) "
    "VALUES (%s, %s, %s, %s, %s, CURRENT_TIMESTAMP) "
    "ON CONFLICT (store, table_name, dt, lease) DO UPDATE "
    "SET token = excluded.token, loaded_at = excluded.loaded_at "
    f"WHERE {FENCE_TABLE}.token <= excluded.token"
)
_SELECT = (
    f"SELECT token FROM {FENCE_TABLE} "
    "WHERE store = %s AND table_name = %s AND dt = %s AND lease = %s"
)


def record_load_token(
    cursor: Any, table: str, dt: date, *, store: str, lease: str, token: int
) -> int | None:
    """Record that ``table``'s partition ``dt`` is loaded under the ``token`` of lease
    ``lease`` in the object store ``store``, unless a newer token of that lease loaded it
    already; call it in the transaction that makes the rows visible, and roll that
    transaction back when it returns a token. A row of the day and lease recorded before
    the store was part of the key (``store`` empty) is first adopted for ``store``.

    Returns:
        ``None`` when recorded (the row held no token, an older one, or this one), else
        the newer token recorded (nothing written).

    Raises:
        ValueError: ``store`` or ``lease`` is empty or ``token`` is not a non-negative
            integer.
    """
    check_store(store)
    if not isinstance(lease, str) or not lease:
        raise ValueError(f"lease must be the lease's key (a non-empty string), got {lease!r}")
    if isinstance(token, bool) or not isinstance(token, int) or token < 0:
        raise ValueError(f"token must be a non-negative integer (a fencing token), got {token!r}")
    cursor.execute(_ADOPT, [store, table, dt, lease, store, table, dt, lease])
    cursor.execute(_UPSERT, [store, table, dt, lease, token])
    if cursor.rowcount:
        return None
    return recorded_token(cursor, table, dt, store=store, lease=lease)


def recorded_token(cursor: Any, table: str, dt: date, *, store: str, lease: str) -> int | None:
    """The newest token ``table``'s partition ``dt`` was loaded under by lease ``lease`` of
    the object store ``store``, if any (a row not yet adopted, ``store`` empty, is not
    this store's)."""
    check_store(store)
    cursor.execute(_SELECT, [store, table, dt, lease])
    row = cursor.fetchone()
    return None if row is None else int(row[0])


def check_store(store: str, *, of: str = "the lease's") -> None:
    """Refuse a ``store`` that is not a store's canonical root URL (what rows are keyed
    by: the load fence's, the alerts'); ``of`` names whose store it is in the message.

    Raises:
        ValueError: ``store`` is empty or not a string.
    """
    if not isinstance(store, str) or not store:
        raise ValueError(
            f"store must be {of} store (its canonical root URL, a non-empty string), got {store!r}"
        )
