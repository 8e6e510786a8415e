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

The publish (:func:`data_pipeline.layout.publish_partition`) checks the lease
right before it writes the manifest and records the token in it; the manifest
write refuses to replace one recorded with a newer token, so a writer whose
lease was taken over while it stalled can never publish.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

from data_pipeline.errors import PartitionBusyError
from etl_core.errors import LeaseBusyError
from etl_core.layout import partition_state_key
from etl_core.storage import Lease, ObjectStore, acquire_lease

__all__ = ["Lease", "lease_key", "partition_lease"]


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
        PartitionBusyError: another live writer still holds it after ``wait_seconds``.
    """
    try:
        lease = acquire_lease(
            store,
            lease_key(dataset, dt),
            ttl=ttl_seconds,
            purpose=purpose,
            wait=wait_seconds,
            poll=poll_seconds,
            heartbeat_every=heartbeat_seconds,
        )
    except LeaseBusyError as busy:
        raise PartitionBusyError(
            f"dataset {dataset!r}, partition dt={dt.isoformat()} is being written by "
            f"{busy.holder}; skipped (retry later, or raise lease_wait_seconds, "
            "ETL_LEASE_WAIT_SECONDS)",
            key=busy.key,
            holder=busy.holder,
            token=busy.token,
            url=busy.url,
            retry_after=busy.retry_after,
        ) from busy
    with lease:
        yield lease
