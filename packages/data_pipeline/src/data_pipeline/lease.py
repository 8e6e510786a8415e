"""Partition leases: one writer per curated partition at a time.

A lease is a small object ``_state/data_pipeline/leases/<dataset>/dt=<date>.json``
naming its holder (``host:pid`` plus a random token) and when it expires. A writer
takes a lease that is absent, expired, its own, or held by a process of this host
that no longer exists (a killed worker); it writes its claim, reads it back, and
holds the lease only if its own token is there. Otherwise it waits up to
``wait_seconds`` and then gives up with :class:`~data_pipeline.errors.PartitionBusyError`.

Plain object stores offer no compare-and-swap, so two writers racing within the
same instant could both believe they hold the lease; the manifest's start-time
check (:func:`data_pipeline.layout.publish_partition`) still guarantees that an
older computation never replaces a newer one.
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
from dataclasses import asdict, dataclass
from datetime import date

from data_pipeline.errors import PartitionBusyError
from etl_core.errors import ObjectNotFoundError
from etl_core.storage import ObjectStore

__all__ = ["Lease", "lease_key", "partition_lease", "process_alive"]

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
    return f"_state/data_pipeline/leases/{dataset}/dt={dt.isoformat()}.json"


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
        held = _read(store, key)
        if held is None or _takeable(held):
            if held is not None:
                logger.warning("taking over a stale partition lease", extra={"holder": held.holder})
            store.write_bytes(key, json.dumps(asdict(mine)).encode())
            check = _read(store, key)
            if check is not None and check.token == mine.token:
                return mine
            held = check
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
    held = _read(store, key)
    if held is not None and held.token == lease.token:
        store.delete(key)


def _read(store: ObjectStore, key: str) -> Lease | None:
    try:
        return Lease(**json.loads(store.read_bytes(key)))
    except ObjectNotFoundError:
        return None
    except (ValueError, TypeError):
        logger.warning("unreadable partition lease ignored", extra={"key": key})
        return None
