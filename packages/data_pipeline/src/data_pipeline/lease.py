"""Partition leases: one writer per curated partition at a time.

A partition's lease is an :mod:`etl_core.storage.leases` lease at
``_state/data_pipeline/leases/<dataset>/dt=<date>.json``: it names its holder
(one process run), is renewed by a heartbeat while the partition is computed,
and carries a fencing token that grows with every acquisition. A writer takes a
lease that is absent, released, expired, or held by a process known to be gone
(same host, boot and pid namespace, no such pid); every claim is a
compare-and-put, so of two writers racing for one partition exactly one wins.
The other waits up to ``wait_seconds`` and then gives up with
:class:`~data_pipeline.errors.PartitionBusyError`.

:func:`take_lease` is that wait for every lease of the lane's units (a partition's, an
API endpoint's): a unit that must do its own work (a backfill's partition, a bounded API
window) waits while another live writer renews the lease (:func:`busy_wait_seconds`,
reading it every :data:`BUSY_POLL_SECONDS`), stops waiting at once when its run is
interrupted (:class:`~etl_core.errors.LeaseWaitStoppedError`) and gives up before its
time limit (:mod:`etl_core.work.limits`) with a busy error naming the holder.

The publish (:func:`data_pipeline.layout.publish_partition`) checks the lease
right before it writes the manifest and records the token in it; the manifest
write refuses to replace one recorded with a newer token, so a writer whose
lease was taken over while it stalled can never publish. A load is fenced the
same way in the database: its commit records the token per table, day and lease
key and is rolled back when a newer one is recorded (:mod:`data_pipeline.db.loads`).
Both refusals tell a lease whose tokens restarted (its object deleted: the lease still
held at the older token, :func:`tokens_restarted`) from one taken over.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Protocol

from data_pipeline.errors import PartitionBusyError
from etl_core.errors import LeaseBusyError, StorageError
from etl_core.layout import partition_state_key
from etl_core.storage import Lease, ObjectStore, acquire_lease
from etl_core.work.limits import remaining_seconds, unit_stop

__all__ = [
    "BUSY_POLL_SECONDS",
    "Lease",
    "busy_wait_seconds",
    "lease_key",
    "partition_lease",
    "take_lease",
    "tokens_restarted",
]

BUSY_POLL_SECONDS = 5.0
"""How often a unit waiting for a busy lease (a partition's, an endpoint's) reads it again."""


class Checked(Protocol):
    """A held lease as far as :func:`tokens_restarted` needs it (an
    :class:`etl_core.storage.Lease`, a load's fence)."""

    def check(self) -> int:
        """Confirm the lease is still held; return its fencing token."""
        ...


def tokens_restarted(lease: Checked, token: int) -> bool:
    """Whether ``lease``, refused by a newer token recorded for what it writes (a curated
    manifest, a day's load fence), is still held at its own ``token``: then no holder has
    that newer token, the lease's tokens restarted (its object in the store was deleted,
    or the store re-created at its URL). False when the lease was taken over (a newer holder wrote
    first, as the fence says), or the store cannot tell."""
    try:
        return lease.check() == token
    except StorageError:  # LeaseLostError among them: taken over
        return False


def busy_wait_seconds(lease_seconds: float, lease_wait_seconds: float = 0) -> float:
    """How long a unit that must do its own work (a backfill's partition, a bounded API
    window) waits for another live writer: ``lease_seconds``, the longest one lease lasts
    unrenewed, or ``lease_wait_seconds`` if longer. The wait ends as soon as the writer
    releases the lease, stops renewing it, or is known gone."""
    return float(max(lease_seconds, lease_wait_seconds))


def take_lease(
    store: ObjectStore,
    key: str,
    *,
    ttl: float,
    purpose: str,
    wait: float,
    poll: float,
    heartbeat_every: float | None,
    busy: Callable[[LeaseBusyError, str], LeaseBusyError],
) -> Lease:
    """Take the lease at ``key``, waiting up to ``wait`` seconds while another writer holds
    it, but never past the unit's deadline and not once its run is interrupted.

    ``busy(error, why)`` builds the caller's busy error from the lease's, ``why`` saying
    how the wait ended (``skipped``, ``gave up after 600 s``, or before the time limit).

    Raises:
        LeaseBusyError: what ``busy`` returns, when the holder still has the lease.
        LeaseWaitStoppedError: the run was interrupted while waiting.
    """
    left = remaining_seconds()
    capped = left is not None and left < wait
    seconds = min(wait, left) if left is not None else wait
    try:
        return acquire_lease(
            store,
            key,
            ttl=ttl,
            purpose=purpose,
            wait=seconds,
            poll=poll,
            heartbeat_every=heartbeat_every,
            stop=unit_stop(),
        )
    except LeaseBusyError as error:
        if capped:
            why = (
                f"gave up after waiting {seconds:.0f} s, before the unit's time limit "
                "(task_soft_time_limit)"
            )
        elif seconds > 0:
            why = f"gave up after waiting {seconds:.0f} s"
        else:
            why = "skipped"
        raise busy(error, why) from error


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
    heartbeat_seconds: float | None = None,
    poll_seconds: float = 0.5,
) -> Iterator[Lease]:
    """Hold the lease of ``dataset`` / ``dt`` for the duration of the block.

    Args:
        heartbeat_seconds: How often the lease is renewed (default a third of
            ``ttl_seconds``; ``0`` for never: the lease then lasts ``ttl_seconds``).
        poll_seconds: How often a busy lease is read again while waiting for it.

    Raises:
        PartitionBusyError: another live writer still holds it after ``wait_seconds``
            (or at the unit's deadline, :func:`take_lease`).
        LeaseWaitStoppedError: the run was interrupted while waiting.
    """

    def busy(error: LeaseBusyError, why: str) -> LeaseBusyError:
        return error.restated(
            PartitionBusyError,
            f"dataset {dataset!r}, partition dt={dt.isoformat()} is being written by "
            f"{error.holder}; {why} (retry later, or raise lease_wait_seconds, "
            "ETL_LEASE_WAIT_SECONDS)",
        )

    lease = take_lease(
        store,
        lease_key(dataset, dt),
        ttl=ttl_seconds,
        purpose=purpose,
        wait=wait_seconds,
        poll=poll_seconds,
        heartbeat_every=heartbeat_seconds,
        busy=busy,
    )
    with lease:
        yield lease
