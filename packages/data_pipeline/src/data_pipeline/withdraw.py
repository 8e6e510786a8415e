"""Withdraw a partition whose validated deliveries are all gone.

Curated output is a function of validated input. When the file lane removes the last
delivery of a day (a re-delivery of a name-dated key moved its data to another day),
the day's curated partition and its loaded rows would otherwise stay, and the
warehouse would count the moved rows twice. :func:`withdraw_partition`, run while
holding the partition's lease, makes the day what its (now empty) input says:

1. the curated manifest is deleted first (readers then see no partition, never one
   naming a missing file), then every part of every generation;
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
from etl_core.contracts import Contract
from etl_core.faults import Step, fault_point
from etl_core.layout import partition_state_key
from etl_core.metrics import counter
from etl_core.storage import Lease, ObjectStore

__all__ = ["WITHDRAWN", "Withdrawal", "withdraw_partition", "withdrawal_key"]

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

    The caller holds ``lease`` and has found no validated delivery of the day; the
    lease is checked right before each removal becomes visible, and the curated manifest
    is deleted only if no later holder replaced it (:func:`~data_pipeline.layout.remove_curated`).

    Args:
        marker_key: The partition's load marker (the generation last loaded); removed
            once the rows are deleted, kept otherwise so a later loading run finishes.

    Raises:
        LeaseLostError: the lease was taken over; what was removed stays removed and the
            next run finishes.
    """
    dataset = contract.dataset
    manifest = remove_curated(store, dataset, dt, lease=lease)
    fault_point(Step.WITHDRAW)
    deletes = load and contract.load is not None
    if deletes:
        from data_pipeline import db

        assert contract.load is not None
        db.load_batches(contract.load.table, dt, ["dt"], [], fence=lease.check)
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
        "%s dt=%s withdrawn: validated/ no longer publishes a delivery of that day; its "
        "curated output was removed%s%s",
        dataset,
        dt.isoformat(),
        table,
        kept,
        extra={"generation": record["generation"]},
    )
    return Withdrawal(manifest is not None, str(record["generation"]), deletes)
