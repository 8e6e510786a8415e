"""Withdraw a partition whose validated deliveries the file lane withdrew.

Curated output is a function of validated input. When the file lane removes the last
delivery of a day (a re-delivery of a name-dated key moved its data to another day),
the day's curated partition and its loaded rows would otherwise stay, and the
warehouse would count the moved rows twice.

A day with no delivery left is not proof of that: a lifecycle rule expiring
``validated/``, a partition deleted by hand or an incomplete listing look the same. So
a day is withdrawn only on the file lane's :class:`~etl_core.artifacts.WithdrawalNotice`
of it (:func:`notice_applies`), written before it removed the delivery, and not older
than the curated partition's computation (a day republished and rebuilt after an old
withdrawal is kept); candidates come from one listing of the dataset's notices
(:func:`noticed_dates`).
:func:`withdraw_partition`, run while holding the partition's lease, makes the day what
its (now empty) input says:

1. the curated manifest is deleted first (readers then see no partition, never one
   naming a missing file), by a conditional delete fenced by the lease, then the parts of
   its generation and of every generation started before the withdrawal;
2. with loads, the day of the contract's table is replaced by no rows, the way a load
   replaces a day (:func:`data_pipeline.db.load_batches`: on PostgreSQL an empty
   partition swapped in, elsewhere a ``DELETE`` in one transaction), fenced by the lease;
3. the load marker is removed, and the withdrawal is recorded at
   ``_state/data_pipeline/withdrawn/<dataset>/dt=<date>.json`` (outcome ``withdrawn``).

Each step is idempotent and the load marker outlives the curated manifest, so a process
killed between two steps leaves a day the next ``run`` still finds (a curated manifest,
or a load marker, without validated input) and finishes.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime

from data_pipeline.layout import remove_curated, timestamp
from etl_core.artifacts import CuratedManifest, read_withdrawal_notice
from etl_core.contracts import Contract
from etl_core.errors import ArtifactError
from etl_core.faults import Step, fault_point
from etl_core.layout import (
    partition_state_key,
    withdrawal_notice_key,
    withdrawal_notice_of,
    withdrawal_notices_prefix,
)
from etl_core.metrics import counter
from etl_core.storage import Lease, ObjectStore

__all__ = [
    "WITHDRAWN",
    "Withdrawal",
    "notice_applies",
    "noticed_dates",
    "withdraw_partition",
    "withdrawal_key",
]

logger = logging.getLogger(__name__)

WITHDRAWN = "withdrawn"
"""The outcome a withdrawn partition is recorded with."""

_withdrawn = counter(
    "etl_data_pipeline_partitions_withdrawn_total",
    "Partitions withdrawn (their validated deliveries all gone), by dataset.",
    ["dataset"],
)


@dataclass(frozen=True)
class Withdrawal:
    """What withdrawing one partition did."""

    curated: bool
    """A curated partition was published (and is now removed)."""
    generation: str
    """The curated generation removed (``""`` when none was left: a finished earlier try)."""
    rows_deleted: bool
    """The day's loaded rows were deleted (a load was asked for and the contract has one)."""


def withdrawal_key(dataset: str, dt: date) -> str:
    """Where a partition's withdrawal is recorded."""
    return partition_state_key("data_pipeline", WITHDRAWN, dataset, dt)


def noticed_dates(store: ObjectStore, dataset: str) -> set[date]:
    """The days of ``dataset`` the file lane withdrew a delivery from: one listing of its
    withdrawal notices (a day without one is never a withdrawal candidate)."""
    dates = set()
    for info in store.list(withdrawal_notices_prefix(dataset)):
        noticed = withdrawal_notice_of(info.key)
        if noticed is not None and noticed[0] == dataset:
            dates.add(noticed[1])
    return dates


def notice_applies(
    store: ObjectStore, dataset: str, dt: date, manifest: CuratedManifest | None
) -> bool:
    """Whether the file lane's withdrawal notice of a day without validated delivery says
    the pipeline's build of it is to be withdrawn: a notice is there and, when a curated
    ``manifest`` is published, was written no earlier than its computation started (an
    older notice is of a withdrawal before the day was republished and rebuilt: kept, its
    input gone otherwise; a build that read the inputs before the notice and published
    after it is of the withdrawn delivery: withdrawn). A notice naming the withdrawn
    delivery's data keys applies only to a build that read one of them, whatever the
    clocks of the two hosts say (the file lane's ahead, a rebuild from the day's other
    deliveries right after the move looks older than the notice). A notice or manifest
    time that cannot be read keeps the day (said in a warning)."""
    key = withdrawal_notice_key(dataset, dt)
    try:
        notice = read_withdrawal_notice(store, dataset, dt)
    except ArtifactError as exc:
        logger.warning("%s dt=%s kept: %s", dataset, dt.isoformat(), exc)
        return False
    if notice is None:
        return False
    if manifest is None:  # a withdrawal killed after its curated removal: finished
        return True
    if notice.data_keys and not manifest.inputs.keys() & set(notice.data_keys):
        logger.debug(
            "%s dt=%s kept: its curated partition was built without the delivery its "
            "withdrawal notice %s withdrew", dataset, dt.isoformat(), key,
        )  # fmt: skip
        return False
    try:
        started = datetime.fromisoformat(manifest.started_at)
    except ValueError:
        logger.warning(
            "%s dt=%s kept: its curated manifest's started_at %r is not a time, so it "
            "cannot be compared with the withdrawal notice %s",
            dataset, dt.isoformat(), manifest.started_at, key,
        )  # fmt: skip
        return False
    if datetime.fromisoformat(notice.withdrawn_at) < started:
        logger.debug(
            "%s dt=%s kept: its withdrawal notice %s (%s) is older than its curated "
            "partition's computation (started %s)", dataset, dt.isoformat(), key,
            notice.withdrawn_at, manifest.started_at,
        )  # fmt: skip
        return False
    return True


def withdraw_partition(
    store: ObjectStore,
    contract: Contract,
    dt: date,
    *,
    load: bool,
    lease: Lease,
    marker_key: str,
    run_id: str = "",
) -> Withdrawal:
    """Remove a partition's curated output and (with ``load``) its loaded rows.

    The caller holds ``lease``, has found no validated delivery of the day and a
    withdrawal notice that applies (:func:`notice_applies`); the lease is checked right
    before each removal becomes visible, and the curated manifest is deleted only if no
    later holder replaced it (:func:`~data_pipeline.layout.remove_curated`).

    Args:
        marker_key: The partition's load marker (the generation last loaded); removed
            once the rows are deleted, kept otherwise so a later loading run finishes.

    Raises:
        LeaseLostError: the lease was taken over; what was removed stays removed and the
            next run finishes. A ``PublishFencedError`` (with the recovery) when the curated
            manifest records a newer token while the lease is still held at its own: the
            lease's tokens restarted; a ``LoadFencedError`` when the day's load fence does.
    """
    dataset = contract.dataset
    deletes = load and contract.load is not None
    manifest = remove_curated(store, dataset, dt, lease=lease, loads=deletes)
    fault_point(Step.WITHDRAW)
    if deletes:
        from data_pipeline import db

        assert contract.load is not None
        db.load_batches(contract.load.table, dt, ["dt"], [], fence=lease)
    if deletes or contract.load is None:
        store.delete(marker_key)
    record = {
        "outcome": WITHDRAWN,
        "dataset": dataset,
        "dt": dt.isoformat(),
        "generation": manifest.generation if manifest is not None else "",
        "inputs": manifest.inputs if manifest is not None else {},
        "rows": manifest.rows if manifest is not None else 0,
        "rows_deleted": deletes,
        "run_id": run_id,
        "lease_token": lease.check(),
        "withdrawn_at": timestamp(datetime.now(UTC)),
    }
    store.write_bytes(withdrawal_key(dataset, dt), json.dumps(record).encode())
    _withdrawn.labels(dataset=dataset).inc()
    table = f" and its rows in {contract.load.table} deleted" if deletes and contract.load else ""
    kept = (
        "; its loaded rows stay until a run that loads"
        if contract.load is not None and not load
        else ""
    )
    logger.warning(
        "%s dt=%s withdrawn: the file lane withdrew its deliveries (%s); its curated "
        "output was removed%s%s",
        dataset,
        dt.isoformat(),
        withdrawal_notice_key(dataset, dt),
        table,
        kept,
        extra={"generation": record["generation"]},
    )
    return Withdrawal(manifest is not None, str(record["generation"]), deletes)
