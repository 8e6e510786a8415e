"""Withdraw a partition whose validated deliveries the file lane withdrew.

Curated output is a function of validated input. When the file lane removes the last
delivery of a day (a re-delivery of a name-dated key moved its data to another day),
the day's curated partition and its loaded rows would otherwise stay, and the
warehouse would count the moved rows twice.

A day with no delivery left is not proof of that: a lifecycle rule expiring
``validated/``, a partition deleted by hand or an incomplete listing look the same. So
a day is withdrawn only on the file lane's :class:`~etl_core.artifacts.WithdrawalNotice`
of it (:func:`notice_applies`), written before it removed the delivery, that names a data
key the curated partition was built from, whatever object it read under it (a build
started after the notice, before the delivery's removal, read it too: withdrawn; so did one
of an earlier file the key published under that data key, overwritten before the move; a
day republished and rebuilt after an old withdrawal is kept); candidates come from one
listing of the dataset's notices (:func:`noticed_dates`).
:func:`withdraw_partition`, run while holding the partition's lease, makes the day what
its (now empty) input says:

1. the curated manifest is deleted first (readers then see no partition, never one
   naming a missing file), by a conditional delete fenced by the lease, then the parts of
   its generation and of every generation started before the withdrawal;
2. with loads, the day of the contract's table is replaced by no rows, the way a load
   replaces a day (:func:`data_pipeline.db.load_batches`: on PostgreSQL an empty
   partition swapped in, elsewhere a ``DELETE`` in one transaction), fenced by the lease;
3. the load marker is removed, and the withdrawal is recorded at
   ``_state/data_pipeline/withdrawn/<dataset>/dt=<date>.json`` (outcome ``withdrawn``,
   with the notice it acted on);
4. the notice is removed (:func:`retire_notice`) once nothing of the day is left to
   withdraw: a withdrawal without loads of a day whose rows were loaded keeps it for the
   run that loads.

Each step is idempotent and the load marker outlives the curated manifest, so a process
killed between two steps leaves a day the next ``run`` still finds (a curated manifest,
or a load marker, without validated input) and finishes; killed before step 4, the
notice is removed by the next ``run`` (:func:`data_pipeline.pipeline.retire_spent_notices`).

A notice is removed only while the day's lease is held, so no build that read the
withdrawn delivery before it moved can publish after the notice is judged spent; and
only by a compare on its ETag, so a newer notice (another key moved off the day) stays.
Besides the withdrawal's own, a notice is spent when nothing built of the day is left
(a day never built, one withdrawn earlier) or when the day's curated partition was built
without any of the data keys it names (rebuilt from its other deliveries), or from
objects published under them now that are not the ones it withdrew (a new delivery under
a key whose void failed: another ETag, the day's current one): no later build can read
that delivery again. A build is judged so right after it is published too, while what it
read is still published: a lifecycle rule expiring the day later withdraws nothing.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime

from data_pipeline.layout import (
    has_curated_parts,
    input_objects,
    read_manifest,
    remove_curated,
    timestamp,
)
from etl_core.artifacts import CuratedManifest, WithdrawalNotice, read_withdrawal_notice
from etl_core.contracts import Contract
from etl_core.errors import ArtifactError, EtlError, ObjectConflictError, ObjectNotFoundError
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
    "notice_spent",
    "noticed_dates",
    "retire_notice",
    "withdraw_partition",
    "withdrawal_key",
    "withdrawn_unbuilt",
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
    the pipeline's build of it is to be withdrawn.

    A notice naming the withdrawn delivery's data keys (every notice the file lane writes
    since it names them) applies to a build, a curated ``manifest``, that read one of them
    (:meth:`~etl_core.artifacts.WithdrawalNotice.withdrew`: whatever object under it,
    the day publishing none now) and to no other, whatever the times and the
    clocks of the two hosts say: the file lane
    writes the notice before it removes the delivery, so a build started between the two
    read the withdrawn delivery and is newer than the notice (withdrawn all the same); a
    rebuild from the day's other deliveries right after the move may look older than the
    notice when the file lane's clock runs ahead (kept). A key that moves back to the day
    drops its data keys from the notice (the file lane's void), so a day republished and
    rebuilt since is kept; when that void failed (a store error), the build of the new
    delivery under the key was judged by :func:`notice_spent` right after it was
    published (the object it read published then, with another ETag than the notice
    records), and the notice removed. Another ETag alone proves nothing here: a build of
    an earlier file the key published under the data key (overwritten before the move,
    not rebuilt since) read the withdrawn delivery too, and is withdrawn.

    A notice naming no data keys (of an older release) applies when it was written no
    earlier than the build's computation started (an older notice is of a withdrawal before
    the day was republished and rebuilt: kept). With no ``manifest`` (a withdrawal killed
    after its curated removal) any notice applies. A notice or manifest time that cannot
    be read keeps the day (said in a warning)."""
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
    if notice.data_keys:  # judged by what the build read, never by the hosts' clocks
        if notice.withdrew(manifest.inputs):
            return True  # read (while the notice was there) before it was removed, too
        logger.debug(
            "%s dt=%s kept: its curated partition was built without the delivery its "
            "withdrawal notice %s withdrew (none of its data keys, or a new delivery "
            "under one: another ETag)", dataset, dt.isoformat(), key,
        )  # fmt: skip
        return False
    try:  # a notice of an older release, naming no data keys: judged by its time
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
    notice = _notice(store, dataset, dt)
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
        "notice": notice.to_dict() if notice is not None else None,
    }
    store.write_bytes(withdrawal_key(dataset, dt), json.dumps(record).encode())
    _withdrawn.labels(dataset=dataset).inc()
    fault_point(Step.WITHDRAWN)
    retire_notice(store, dataset, dt, lease=lease, marker_key=marker_key)
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


def notice_spent(
    store: ObjectStore, dataset: str, dt: date, *, marker_key: str
) -> VersionedNotice | None:
    """The day's withdrawal notice when nothing needs it any more, else ``None``.

    Spent: nothing built of the day is left (no curated manifest, no curated part, no load
    marker: withdrawn, or never built) and no validated delivery is published (a build is
    due, after which the notice is judged again); or the day's curated partition was built
    without any of the data keys the notice withdrew, or read under them the objects
    published there now, with other ETags than the ones it records (rebuilt from the
    day's other deliveries, or from a new delivery under the key: no later build can read
    the withdrawn objects). A build that read a noticed key with another ETag that is not
    published now read an earlier file of the withdrawn delivery: not spent. A notice
    naming no data keys (of an older release) is kept while the day is built, as is one
    that cannot be read (:func:`notice_applies` says so).

    Raises:
        EtlError: the store could not be read.
    """
    key = withdrawal_notice_key(dataset, dt)
    try:
        found = store.read_versioned(key)
    except ObjectNotFoundError:
        return None
    try:
        notice = WithdrawalNotice.from_json(found.data, key=key)
    except ArtifactError:
        return None
    manifest = read_manifest(store, dataset, dt)
    if manifest is None:
        if store.exists(marker_key) or has_curated_parts(store, dataset, dt):
            return None  # left to withdraw (the rows wait for a run that loads)
        if input_objects(store, dataset, dt):
            return None  # a build is due: judged again once it is published
    elif not notice.data_keys or notice.withdrew(
        manifest.inputs, _published(store, notice, dataset, dt, manifest)
    ):
        return None  # the build read (or may have read) the withdrawn delivery
    return VersionedNotice(notice, found.etag)


def _published(
    store: ObjectStore, notice: WithdrawalNotice, dataset: str, dt: date, manifest: CuratedManifest
) -> dict[str, str]:
    """The day's validated data key → ETag published now, when the build read a noticed
    key with an ETag other than the one the notice withdrew (a listing then, else none):
    what tells a new delivery under the key from an earlier file of the withdrawn one."""
    if not any(
        key in manifest.inputs
        and notice.data_etags.get(key)
        and manifest.inputs[key] != notice.data_etags[key]
        for key in notice.data_keys
    ):
        return {}
    return {info.key: info.etag for info in input_objects(store, dataset, dt)}


@dataclass(frozen=True)
class VersionedNotice:
    """A withdrawal notice and the ETag of the version read."""

    notice: WithdrawalNotice
    etag: str


def retire_notice(
    store: ObjectStore, dataset: str, dt: date, *, lease: Lease, marker_key: str
) -> bool:
    """Remove the day's withdrawal notice if it is spent (:func:`notice_spent`), while
    ``lease`` (the day's) is held; a store error or a newer notice leaves it (said at debug
    or warning level) for a later run. Returns whether it was removed."""
    key = withdrawal_notice_key(dataset, dt)
    try:
        spent = notice_spent(store, dataset, dt, marker_key=marker_key)
        if spent is None:
            return False
        lease.check()
        _note_unbuilt(store, dataset, dt, spent.notice, lease=lease)
        store.delete_if(key, etag=spent.etag)
    except ObjectConflictError:
        logger.debug("%s kept: it changed since it was judged spent (another move)", key)
        return False
    except EtlError as exc:
        logger.warning("%s not removed (a later run retries): %s", key, exc)
        return False
    logger.info(
        "%s dt=%s: withdrawal notice %s removed: nothing built of the day needs it any more",
        dataset, dt.isoformat(), key,
    )  # fmt: skip
    return True


def _note_unbuilt(
    store: ObjectStore, dataset: str, dt: date, notice: WithdrawalNotice, *, lease: Lease
) -> None:
    """Before a spent notice of a day never built whose move left it no delivery
    (``emptied``) is removed, record the day withdrawn before it was built (``built``:
    false): a backfill unit planned while the day had its delivery, run after this, says so
    instead of failing as if its input were lost (the notice, its proof, is gone). A day
    with a withdrawal record already keeps it (history)."""
    key = withdrawal_key(dataset, dt)
    if not notice.emptied or read_manifest(store, dataset, dt) is not None or store.exists(key):
        return
    record = {
        "outcome": WITHDRAWN,
        "dataset": dataset,
        "dt": dt.isoformat(),
        "built": False,
        "generation": "",
        "inputs": {},
        "rows": 0,
        "rows_deleted": False,
        "run_id": "",
        "lease_token": lease.check(),
        "withdrawn_at": timestamp(datetime.now(UTC)),
        "notice": notice.to_dict(),
    }
    store.write_bytes(key, json.dumps(record).encode())


def withdrawn_unbuilt(store: ObjectStore, dataset: str, dt: date) -> bool:
    """Whether the day's withdrawal record says it was withdrawn before it was ever built
    (:func:`_note_unbuilt`); an unreadable record says no."""
    try:
        record = json.loads(store.read_bytes(withdrawal_key(dataset, dt)))
    except (ObjectNotFoundError, ValueError):
        return False
    return isinstance(record, dict) and record.get("built") is False


def _notice(store: ObjectStore, dataset: str, dt: date) -> WithdrawalNotice | None:
    """The day's withdrawal notice, for the withdrawal's record (``None``: none, or
    unreadable: :func:`notice_applies` said so)."""
    try:
        return read_withdrawal_notice(store, dataset, dt)
    except ArtifactError:
        return None
