"""Partition leases: one writer per curated partition at a time.

A lease is a small object ``_state/data_pipeline/leases/<dataset>/dt=<date>.json``
naming its holder (``host:pid`` plus a random token) and when it expires. A writer
takes a lease that is absent, expired, released, or held by a process of this host
that no longer exists (a killed worker). Every claim is a compare-and-put
(:meth:`~etl_core.storage.ObjectStore.put_if`) against the version the writer
read, so of two writers racing for the same lease exactly one wins; the other
waits up to ``wait_seconds`` and then gives up with
:class:`~data_pipeline.errors.PartitionBusyError`. Releasing writes an expired
lease the same way, so a writer never removes a lease someone else took over.
The manifest's start-time check (:func:`data_pipeline.layout.publish_partition`)
additionally guarantees that an older computation never replaces a newer one.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import date

from data_pipeline.errors import PartitionBusyError
from etl_core.errors import ObjectConflictError, ObjectNotFoundError
from etl_core.layout import partition_state_key
from etl_core.runtime import process_alive
from etl_core.storage import ObjectStore

__all__ = ["Lease", "lease_key", "partition_lease"]

logger = logging.getLogger(__name__)

_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Lease:
    """A claim on one partition."""

    dataset: str
    dt: str
    host: str
    pid: int
    token: str
    purpose: str
    expires_at: float

    @property
    def holder(self) -> str:
        """``host:pid (purpose)`` for messages."""
        return f"{self.host}:{self.pid} ({self.purpose})"


def lease_key(dataset: str, dt: date) -> str:
    """Where the lease of a partition lives."""
    return partition_state_key("data_pipeline", "leases", dataset, dt)


@contextmanager
def partition_lease(
    store: ObjectStore,
    dataset: str,
    dt: date,
    *,
    purpose: str,
    ttl_seconds: float,
    wait_seconds: float = 0,
) -> Iterator[Lease]:
    """Hold the lease of ``dataset`` / ``dt`` for the duration of the block.

    Raises:
        PartitionBusyError: another live writer still holds it after ``wait_seconds``.
    """
    lease = _acquire(store, dataset, dt, purpose, ttl_seconds, wait_seconds)
    try:
        yield lease
    finally:
        _release(store, lease)


def _acquire(
    store: ObjectStore, dataset: str, dt: date, purpose: str, ttl: float, wait: float
) -> Lease:
    key = lease_key(dataset, dt)
    deadline = time.monotonic() + max(wait, 0)
    while True:
        mine = Lease(
            dataset=dataset,
            dt=dt.isoformat(),
            host=socket.gethostname(),
            pid=os.getpid(),
            token=secrets.token_hex(8),
            purpose=purpose,
            expires_at=time.time() + ttl,
        )
        etag, held = _read(store, key)
        if held is None or _takeable(held):
            if held is not None and held.expires_at > 0:
                logger.warning("taking over a stale partition lease", extra={"holder": held.holder})
            try:
                store.put_if(key, _encode(mine), etag=etag)
                return mine
            except ObjectConflictError:
                etag, held = _read(store, key)
        if time.monotonic() >= deadline:
            holder = held.holder if held else "another writer"
            raise PartitionBusyError(
                f"dataset {dataset!r}, partition dt={dt.isoformat()} is being written by "
                f"{holder}; skipped (retry later, or raise --lease-wait)"
            )
        time.sleep(_POLL_SECONDS)


def _takeable(held: Lease) -> bool:
    if held.expires_at < time.time():
        return True
    return held.host == socket.gethostname() and not process_alive(held.pid)


def _release(store: ObjectStore, lease: Lease) -> None:
    key = lease_key(lease.dataset, date.fromisoformat(lease.dt))
    etag, held = _read(store, key)
    if held is None or held.token != lease.token or etag is None:
        return
    try:
        store.put_if(key, _encode(replace(lease, expires_at=0)), etag=etag)
    except ObjectConflictError:
        logger.warning("partition lease was taken over before release", extra={"key": key})


def _encode(lease: Lease) -> bytes:
    return json.dumps(asdict(lease)).encode()


def _read(store: ObjectStore, key: str) -> tuple[str | None, Lease | None]:
    """The lease object's ETag and content; ``(None, None)`` when there is none.

    The ETag is read first: if the object changes before its content is read, the
    caller's ``put_if`` against that ETag fails, so a decision is never made on
    content newer than the version it would replace.
    """
    try:
        etag = store.head(key).etag
        data = store.read_bytes(key)
    except ObjectNotFoundError:
        return None, None
    try:
        return etag, Lease(**json.loads(data))
    except (ValueError, TypeError):
        logger.warning("unreadable partition lease will be replaced", extra={"key": key})
        return etag, None
