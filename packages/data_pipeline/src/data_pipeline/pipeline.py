"""The partition work unit (lease → transform → load) and what ``run`` has left to do.

:func:`process_partition` takes plain inputs and is idempotent, so ``run``, a
backfill worker or a task queue can call it alike. Which generation of a partition
was last loaded is recorded in ``_state/data_pipeline/loads/<dataset>/dt=<date>.json``
so ``run`` also finishes loads that failed after their transform succeeded.

A partition the pipeline built (its curated manifest, or its load marker, is there)
whose validated deliveries the file lane withdrew (its withdrawal notice, not older than
the curated partition; a day merely without delivery is kept) is withdrawn
(:mod:`data_pipeline.withdraw`): ``run`` plans the noticed days beside the days
validated/ publishes, and a backfill beside its range's.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date

from data_pipeline.errors import PartitionBusyError
from data_pipeline.layout import (
    has_curated_parts,
    input_objects,
    list_validated_dates,
    read_manifest,
)
from data_pipeline.lease import BUSY_POLL_SECONDS, partition_lease
from data_pipeline.lease import busy_wait_seconds as lease_busy_wait_seconds
from data_pipeline.load import LoadResult, load_curated_partition
from data_pipeline.settings import PipelineSettings
from data_pipeline.transform import TransformResult, transform_partition
from data_pipeline.withdraw import (
    notice_applies,
    notice_spent,
    noticed_dates,
    retire_notice,
    withdraw_partition,
    withdrawal_key,
    withdrawn_unbuilt,
)
from etl_core.artifacts import CuratedManifest, read_withdrawal_notice
from etl_core.contracts import Contract
from etl_core.errors import ArtifactError, EtlError, ObjectNotFoundError
from etl_core.layout import partition_state_key
from etl_core.storage import ObjectStore

__all__ = [
    "BUSY_POLL_SECONDS",
    "PartitionOutcome",
    "PendingPartition",
    "busy_wait_seconds",
    "load_marker_key",
    "loaded_generation",
    "pending_partition",
    "pending_partitions",
    "process_partition",
    "retire_spent_notices",
    "withdrawal_due",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartitionOutcome:
    """What processing one partition did."""

    dataset: str
    dt: date
    transform: TransformResult | None
    load: LoadResult | None
    skipped: str | None = None
    """Why nothing was done (another writer holds the partition), when nothing was."""
    withdrawn: bool = False
    """The partition's validated deliveries were all gone: its curated output was removed
    (and, when loading, its loaded rows deleted) instead of being built."""


@dataclass(frozen=True)
class PendingPartition:
    """A partition ``run`` will process, and why."""

    dt: date
    transform: bool
    load: bool
    reason: str
    withdraw: bool = False
    """No validated delivery is left: the partition is withdrawn, not built."""


def load_marker_key(dataset: str, dt: date) -> str:
    """Where the generation last loaded into the database is recorded."""
    return partition_state_key("data_pipeline", "loads", dataset, dt)


def loaded_generation(store: ObjectStore, dataset: str, dt: date) -> str | None:
    """The curated generation last loaded for this partition, if any."""
    try:
        return str(json.loads(store.read_bytes(load_marker_key(dataset, dt)))["generation"])
    except ObjectNotFoundError:
        return None


def process_partition(
    store: ObjectStore,
    contract: Contract,
    dt: date,
    settings: PipelineSettings,
    *,
    transform: bool = True,
    load: bool = True,
    run_id: str = "",
    purpose: str = "transform",
    only_if_pending: bool = False,
    wait_busy: bool = False,
) -> PartitionOutcome:
    """Transform and/or load one partition while holding its lease.

    With ``only_if_pending``, what is left to do is decided again once the lease is
    held, so a partition another worker finished meanwhile is not redone. With
    ``wait_busy``, a partition another live writer holds is waited for while that
    writer renews its lease, up to ``lease_seconds`` (:func:`busy_wait_seconds`),
    instead of ``lease_wait_seconds``.

    Raises:
        PartitionBusyError: another writer holds the partition.
        LeaseLostError: the lease was taken over meanwhile (this worker stalled past
            its expiry); nothing more is published by this worker.
        PartitionError: the partition cannot be built (see :func:`transform_partition`).
    """
    with partition_lease(
        store,
        contract.dataset,
        dt,
        purpose=purpose,
        ttl_seconds=settings.lease_seconds,
        wait_seconds=busy_wait_seconds(settings) if wait_busy else settings.lease_wait_seconds,
        heartbeat_seconds=settings.lease_heartbeat_seconds or None,
        poll_seconds=BUSY_POLL_SECONDS if wait_busy else 0.5,
    ) as lease:
        if only_if_pending:
            pending = pending_partition(store, contract, dt, load=load)
            if pending is None:
                return PartitionOutcome(contract.dataset, dt, None, None, skipped="done elsewhere")
            transform, load = pending.transform or pending.withdraw, pending.load
        if transform and _withdrawable(store, contract, dt, load=load):
            withdraw_partition(
                store,
                contract,
                dt,
                load=load,
                lease=lease,
                marker_key=load_marker_key(contract.dataset, dt),
                run_id=run_id,
            )
            return PartitionOutcome(contract.dataset, dt, None, None, withdrawn=True)
        if transform and _withdrawn_earlier(store, contract, dt):
            marker_key = load_marker_key(contract.dataset, dt)
            retire_notice(store, contract.dataset, dt, lease=lease, marker_key=marker_key)
            unbuilt = withdrawn_unbuilt(store, contract.dataset, dt)
            why = WITHDRAWN_UNBUILT if unbuilt else "withdrawn earlier"
            return PartitionOutcome(contract.dataset, dt, None, None, skipped=why, withdrawn=True)
        if transform and _withdrawn_unbuilt(store, contract, dt):
            return PartitionOutcome(
                contract.dataset, dt, None, None, skipped=WITHDRAWN_UNBUILT, withdrawn=True
            )
        built = (
            transform_partition(store, contract, dt, settings, run_id=run_id, lease=lease)
            if transform
            else None
        )
        if built is not None:  # judged while the objects it read are published, not once
            # gone (a lifecycle rule): a new delivery under a key a failed void left noticed
            marker_key = load_marker_key(contract.dataset, dt)
            retire_notice(store, contract.dataset, dt, lease=lease, marker_key=marker_key)
        loaded = None
        if load and contract.load is not None:
            loaded = load_curated_partition(
                store,
                contract,
                dt,
                run_id=run_id,
                work_dir=settings.work_dir,
                fence=lease,
                analyze=settings.load_analyze,
            )
            marker = {
                "generation": loaded.generation,
                "rows": loaded.rows,
                "run_id": run_id,
                "lease_token": lease.check(),
            }
            store.write_bytes(load_marker_key(contract.dataset, dt), json.dumps(marker).encode())
    return PartitionOutcome(contract.dataset, dt, built, loaded)


WITHDRAWN_REASON = "no validated delivery left"


def _withdrawable(store: ObjectStore, contract: Contract, dt: date, *, load: bool) -> bool:
    """Whether validated/ publishes no delivery of the partition any more and
    :func:`withdrawal_due`."""
    if input_objects(store, contract.dataset, dt):
        return False
    return withdrawal_due(store, contract, dt, load=load)


def withdrawal_due(store: ObjectStore, contract: Contract, dt: date, *, load: bool) -> bool:
    """Whether a partition without validated delivery is to be withdrawn: the pipeline
    built it (its curated manifest, or with ``load`` its load marker, is there) and the file
    lane's withdrawal notice of it applies (:func:`~data_pipeline.withdraw.notice_applies`)."""
    return _due(store, contract, dt, read_manifest(store, contract.dataset, dt), load=load)


def _due(
    store: ObjectStore,
    contract: Contract,
    dt: date,
    manifest: CuratedManifest | None,
    *,
    load: bool,
) -> bool:
    # built, unless nothing is left of it: parts whose manifest went first (a withdrawal's,
    # killed before its parts; one refused whose manifest the operator deleted, as its
    # recovery says) are withdrawn, never left for good
    if (
        manifest is None
        and not _loaded(store, contract, dt, load=load)
        and not has_curated_parts(store, contract.dataset, dt)
    ):
        return False
    return notice_applies(store, contract.dataset, dt, manifest)


def _withdrawn_earlier(store: ObjectStore, contract: Contract, dt: date) -> bool:
    """Whether a partition without input was withdrawn before (a backfill planned it, then
    a ``run`` withdrew it): nothing is left to do, which is no failure. A day built again
    since (republished, then its input lost: a lifecycle rule, a hand deletion) was not:
    its curated output is there, and its unit fails naming the missing input."""
    dataset = contract.dataset
    if not store.exists(withdrawal_key(dataset, dt)) or input_objects(store, dataset, dt):
        return False
    return read_manifest(store, dataset, dt) is None and not has_curated_parts(store, dataset, dt)


WITHDRAWN_UNBUILT = "withdrawn before it was built"
"""Why a unit skips a day the file lane withdrew (its notice) before it was ever built."""


def _withdrawn_unbuilt(store: ObjectStore, contract: Contract, dt: date) -> bool:
    """Whether a partition without input, never built (no curated manifest, part or load
    marker), has a withdrawal notice saying its move left the day no delivery (``emptied``):
    its only deliveries moved to another day after a backfill planned it. Nothing is there
    to build or withdraw, which is no failure (the notice is removed by the next ``run``,
    spent). A notice of a move that left other deliveries on the day (gone since: deleted
    by hand, expired), one of an older release or one that cannot be read is no proof:
    the unit fails, naming the missing input."""
    dataset = contract.dataset
    if input_objects(store, dataset, dt) or read_manifest(store, dataset, dt) is not None:
        return False
    if store.exists(load_marker_key(dataset, dt)) or has_curated_parts(store, dataset, dt):
        return False  # built: withdrawn only when its notice applies (_withdrawable)
    try:
        notice = read_withdrawal_notice(store, dataset, dt)
    except ArtifactError:
        return False
    return notice is not None and notice.emptied


def _loaded(store: ObjectStore, contract: Contract, dt: date, *, load: bool) -> bool:
    """Whether, with ``load`` and a contract with ``[load]``, a load of the partition is
    recorded (its marker: a withdrawal killed after its curated removal left it)."""
    if not (load and contract.load is not None):
        return False
    return store.exists(load_marker_key(contract.dataset, dt))


def busy_wait_seconds(settings: PipelineSettings) -> float:
    """How long a backfill's unit waits for another live writer of its partition
    (:func:`data_pipeline.lease.busy_wait_seconds` of the settings)."""
    return lease_busy_wait_seconds(settings.lease_seconds, settings.lease_wait_seconds)


def retire_spent_notices(store: ObjectStore, contract: Contract, *, lease_seconds: float) -> int:
    """Remove the file lane's withdrawal notices of ``contract``'s dataset that nothing needs
    any more (:func:`~data_pipeline.withdraw.notice_spent`: the day withdrawn, never built,
    or rebuilt without the withdrawn delivery), so they do not pile up, each listed and
    judged again by every run. What ``run`` and ``schedule`` do before planning: it also
    finishes a withdrawal killed after its record, before its notice's removal.

    Each is removed under the day's lease, taken only if free (a day another writer holds
    is left for a later run), after judging it again. Returns how many were removed.
    """
    dataset, retired = contract.dataset, 0
    for dt in sorted(noticed_dates(store, dataset)):
        marker = load_marker_key(dataset, dt)
        try:
            if notice_spent(store, dataset, dt, marker_key=marker) is None:
                continue  # judged without the lease first: most days need no lease
            with partition_lease(
                store,
                dataset,
                dt,
                purpose="notice removal",
                ttl_seconds=lease_seconds,
                heartbeat_seconds=0,
            ) as lease:
                retired += retire_notice(store, dataset, dt, lease=lease, marker_key=marker)
        except PartitionBusyError:
            logger.debug(
                "%s dt=%s: its withdrawal notice is judged again later (busy)", dataset, dt
            )
        except EtlError as exc:
            logger.warning(
                "%s dt=%s: its withdrawal notice is left for a later run: %s", dataset, dt, exc
            )
    return retired


def pending_partitions(
    store: ObjectStore, contract: Contract, *, load: bool
) -> list[PendingPartition]:
    """Validated partitions whose curated output is missing or older than their inputs,
    (with ``load``) curated partitions whose current generation is not loaded yet, and
    partitions built earlier whose validated deliveries the file lane withdrew (to
    withdraw: the days of its notices, one listing)."""
    dates = set(list_validated_dates(store, contract.dataset))
    dates |= noticed_dates(store, contract.dataset)
    found = (pending_partition(store, contract, dt, load=load) for dt in sorted(dates))
    return [pending for pending in found if pending is not None]


def pending_partition(
    store: ObjectStore, contract: Contract, dt: date, *, load: bool
) -> PendingPartition | None:
    """What is left to do for one partition, or ``None`` when it is up to date."""
    manifest = read_manifest(store, contract.dataset, dt)
    inputs = {info.key: info.etag for info in input_objects(store, contract.dataset, dt)}
    wants_load = load and contract.load is not None
    if not inputs:  # withdrawn if it was built and noticed; else not touched
        if not _due(store, contract, dt, manifest, load=load):
            return None
        return PendingPartition(dt, False, wants_load, WITHDRAWN_REASON, withdraw=True)
    if manifest is None:
        return PendingPartition(dt, True, wants_load, "no curated output")
    if manifest.inputs != inputs:
        return PendingPartition(dt, True, wants_load, "inputs changed")
    if wants_load and loaded_generation(store, contract.dataset, dt) != manifest.generation:
        return PendingPartition(dt, False, True, "not loaded")
    return None
