"""Where the pipeline reads and writes in the object store, and the curated publish protocol.

Inputs: the data objects the delivery manifests of ``validated/<dataset>/dt=<date>/``
name (:class:`etl_core.artifacts.DeliveryManifest`; a delivery still being
published is not read). Outputs: ``curated/<dataset>/dt=<date>/``. Keys come from
:mod:`etl_core.layout`; the curated manifest is :class:`etl_core.artifacts.CuratedManifest`.

A curated partition is replaced whole, atomically for readers, although S3 has no
multi-object rename. Each computation is a *generation* (a sortable id) whose files
are ``part-<generation>-<n>.parquet``. The partition's manifest names the
current generation and its files; it is written with one PUT after every part is
uploaded, so a reader that reads the manifest first sees the old partition or the
new one, never a mix or a half. The generation it replaces is kept until the next
publish (a reader that fetched the old manifest a moment ago can finish); older
ones are deleted. Readers must go through :func:`read_manifest` — globbing
``*.parquet`` may see two generations.

A manifest also records when its computation started: a computation that started
before the published one never replaces it (:class:`~data_pipeline.errors.SupersededError`).

Fencing: a writer holding the partition's lease (:mod:`data_pipeline.lease`) checks
it right before the manifest write (:class:`~etl_core.errors.LeaseLostError` once it
was taken over) and records its fencing token in the manifest; the manifest write
is a compare-and-put that refuses to replace a manifest recorded with a newer token.
A writer without a lease (a test, a one-off tool) records no token and cannot replace
a manifest that has one. A refusal while the lease is still this writer's at its older
token means the lease's tokens restarted (its object deleted):
:class:`~data_pipeline.errors.PublishFencedError`, saying how to recover.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from data_pipeline.errors import PartitionError, PublishFencedError, SupersededError
from data_pipeline.lease import tokens_restarted
from etl_core.artifacts import CuratedManifest, DeliveryManifest, read_deliveries, utc_timestamp
from etl_core.errors import ArtifactError, LeaseLostError, ObjectNotFoundError
from etl_core.faults import Step, fault_point
from etl_core.layout import (
    curated_prefix,
    is_delivery_manifest,
    manifest_key,
    partition_of,
    state_prefix,
    validated_prefix,
)
from etl_core.storage import Lease, ObjectInfo, ObjectStore, Records, Update

__all__ = [
    "has_curated_parts",
    "input_objects",
    "inputs_by_day",
    "list_curated_dates",
    "list_validated_dates",
    "new_generation",
    "publish_partition",
    "publishes_generation",
    "read_manifest",
    "remove_abandoned_writes",
    "remove_curated",
    "timestamp",
]

logger = logging.getLogger(__name__)


_GENERATION_START = re.compile(r"\d{8}T\d{12}")
"""The start of a :func:`new_generation` id: when its computation started, sortable."""


def new_generation(started: datetime) -> str:
    """A generation id that sorts by start time: ``20261101T101500123456-ab12cd``."""
    return f"{started.astimezone(UTC):%Y%m%dT%H%M%S%f}-{secrets.token_hex(3)}"


def input_objects(store: ObjectStore, dataset: str, dt: date) -> list[ObjectInfo]:
    """The data objects of a validated partition's published deliveries, sorted by key.

    Data is found through the delivery manifests, never a listing: a delivery
    whose publish has not finished (or crashed) is not read at all.

    The file lane may change the partition while it is read (a re-delivery replacing its
    manifest, then removing the members it no longer has; a withdrawal removing a
    manifest, then its members): a file the manifests named missing from the listing, or
    a manifest listed and gone when read, has the partition read again (up to
    :data:`INPUT_READS` times). Only a file missing from two readings in a row is gone
    for good: the file lane writes a delivery's files before its manifest and removes
    them only after it.

    Raises:
        PartitionError: a manifest is malformed, or names a file that is gone.
        ObjectNotFoundError: a manifest listed was gone when read, every time.
    """
    before: set[str] = set()
    reading = 0
    while True:
        reading += 1
        try:
            manifests = read_deliveries(store, dataset, dt)
        except ArtifactError as exc:
            raise PartitionError(dataset, dt, str(exc)) from exc
        except ObjectNotFoundError:  # a manifest removed between its listing and its read
            if reading == INPUT_READS:
                raise
            continue
        wanted = {key for manifest in manifests for key in manifest.data_keys}
        if not wanted:
            return []
        found = {info.key: info for info in store.list(validated_prefix(dataset, dt))}
        missing = sorted(wanted - found.keys())
        if not missing:
            return [found[key] for key in sorted(wanted)]
        if before & set(missing) or reading == INPUT_READS:
            gone = sorted(before & set(missing)) or missing
            raise PartitionError(
                dataset, dt, f"a delivery manifest names {gone[0]}, which is not in the store"
            )
        before = set(missing)


INPUT_READS = 3
"""How many times :func:`input_objects` reads a partition the file lane changes meanwhile."""


def inputs_by_day(
    store: ObjectStore, dataset: str, first: date, last: date
) -> dict[date, list[ObjectInfo]]:
    """:func:`input_objects` of every day from ``first`` to ``last`` with a published
    delivery, from one listing of the dataset's validated prefix (and a read of each
    delivery manifest), ascending; days without input are left out.

    Asking each day costs two listings a day: ten years of daily deliveries are 7,300
    listings (minutes on S3) before a backfill starts. A manifest naming a file the
    listing did not see (a re-delivery published while listing), or gone since it was
    listed, has its day asked again as :func:`input_objects` does, so both plan alike.

    Raises:
        PartitionError: as :func:`input_objects`.
    """
    manifests: dict[date, list[str]] = {}
    listed: dict[date, dict[str, ObjectInfo]] = {}
    for info in store.list(validated_prefix(dataset)):
        partition = partition_of(info.key)
        if partition is None or not first <= partition.dt <= last:
            continue
        if is_delivery_manifest(info.key):
            manifests.setdefault(partition.dt, []).append(info.key)
        else:
            listed.setdefault(partition.dt, {})[info.key] = info
    found = {}
    for dt, keys in sorted(manifests.items()):
        objects = _listed_inputs(store, keys, listed.get(dt, {}))
        if objects is None:
            objects = input_objects(store, dataset, dt)
        if objects:
            found[dt] = objects
    return found


def _listed_inputs(
    store: ObjectStore, manifest_keys: list[str], listed: dict[str, ObjectInfo]
) -> list[ObjectInfo] | None:
    """The data objects the manifests ``manifest_keys`` name, sorted by key, found in
    ``listed``; ``None`` when a manifest cannot be read or names a file not listed (the
    day is asked again)."""
    try:
        wanted = {
            key
            for manifest in manifest_keys
            for key in DeliveryManifest.from_json(
                store.read_bytes(manifest), key=manifest
            ).data_keys
        }
    except (ArtifactError, ObjectNotFoundError):
        return None
    if not wanted <= listed.keys():
        return None
    return [listed[key] for key in sorted(wanted)]


def list_validated_dates(store: ObjectStore, dataset: str) -> list[date]:
    """Every partition date with a published delivery, ascending."""
    dates = set()
    for info in store.list(validated_prefix(dataset)):
        partition = partition_of(info.key)
        if partition is not None and is_delivery_manifest(info.key):
            dates.add(partition.dt)
    return sorted(dates)


def list_curated_dates(store: ObjectStore, dataset: str) -> list[date]:
    """Every partition date with a published manifest, ascending."""
    dates = []
    for info in store.list(curated_prefix(dataset)):
        partition = partition_of(info.key)
        if partition is not None and info.key == manifest_key(dataset, partition.dt):
            dates.append(partition.dt)
    return sorted(dates)


def read_manifest(store: ObjectStore, dataset: str, dt: date) -> CuratedManifest | None:
    """The published manifest of a curated partition, or ``None`` when none is published.

    Raises:
        ArtifactError: the manifest is malformed (or written by a newer version).
    """
    return CuratedManifest.read(store, manifest_key(dataset, dt))


def has_curated_parts(store: ObjectStore, dataset: str, dt: date) -> bool:
    """Whether curated parts of the partition are in the store, whatever manifest names
    them (none: a withdrawal whose manifest was removed before its parts)."""
    return any(True for _ in _parts(store, curated_prefix(dataset, dt)))


def publishes_generation(store: ObjectStore, dataset: str, dt: date, generation: str) -> bool:
    """Whether the partition's published manifest names ``generation`` still: a file of
    it found missing is then the partition's fault, not a republish or withdrawal since
    it was read.

    Raises:
        ArtifactError: the manifest is malformed.
    """
    current = read_manifest(store, dataset, dt)
    return current is not None and current.generation == generation


def publish_partition(
    store: ObjectStore,
    *,
    dataset: str,
    dt: date,
    generation: str,
    started_at: datetime,
    files: Sequence[Path],
    rows: int,
    inputs: dict[str, str],
    run_id: str = "",
    lease: Lease | None = None,
) -> CuratedManifest:
    """Upload a generation's Parquet files, flip the manifest to it, then prune old ones.

    Args:
        lease: The partition lease the writer holds: checked right before the
            manifest write, its token recorded in the manifest.

    Raises:
        SupersededError: a computation that started later is already published, or
            a fenced one while this writer holds no lease.
        LeaseLostError: the lease was taken over, or the manifest was written under a
            newer token (:class:`~data_pipeline.errors.PublishFencedError`, with the
            recovery, when the lease is still this writer's: its tokens restarted).
        In every case the uploaded files of this generation are removed again, unless
        the manifest names them: an error (a time limit) striking once the manifest was
        written, before the flip returned, leaves a published generation whole.
    """
    prefix = curated_prefix(dataset, dt)
    keys = []
    size = 0
    started = timestamp(started_at)
    manifest = CuratedManifest(
        dataset=dataset,
        dt=dt.isoformat(),
        generation=generation,
        started_at=started,
        published_at="",
        files=(),
        rows=rows,
        bytes=0,
        inputs=inputs,
        run_id=run_id,
        lease_token=lease.token if lease is not None else None,
    )
    flipping = False
    try:
        for number, path in enumerate(sorted(files)):
            key = f"{prefix}part-{generation}-{number:05d}.parquet"
            size += store.upload(path, key)
            keys.append(key)
        fault_point(Step.PUBLISH)
        manifest = replace(manifest, files=tuple(keys), bytes=size)
        flipping = True
        flipped = _flip(store, manifest, lease)
    except BaseException:
        if not flipping or not _may_be_published(store, dataset, dt, generation):
            for key in keys:
                store.delete(key)
        raise
    assert flipped.after is not None  # the flip always writes or raises
    keep = {flipped.before.value.generation} if flipped.before is not None else set()
    _prune(store, prefix, keep | {generation})
    return flipped.after.value


def _may_be_published(store: ObjectStore, dataset: str, dt: date, generation: str) -> bool:
    """Whether the partition's manifest may name ``generation`` after its flip failed: the
    write can land before the error (a time limit, a lost reply) is raised. Unreadable
    counts as maybe: parts left behind are pruned by the partition's next publish."""
    try:
        current = read_manifest(store, dataset, dt)
    except Exception:
        return True
    return current is not None and current.generation == generation


def _flip(
    store: ObjectStore, manifest: CuratedManifest, lease: Lease | None
) -> Update[CuratedManifest]:
    """Write ``manifest`` over the current one by compare-and-put, fenced by ``lease``."""
    key = manifest_key(manifest.dataset, date.fromisoformat(manifest.dt))
    where = f"dataset {manifest.dataset!r}, partition dt={manifest.dt}"

    def replace_current(current: CuratedManifest | None) -> CuratedManifest:
        if current is not None and current.started_at > manifest.started_at:
            raise SupersededError(
                f"{where}: a computation started at {current.started_at} is already published; "
                f"this one (started {manifest.started_at}) is dropped"
            )
        if lease is None and current is not None and current.lease_token is not None:
            raise SupersededError(
                f"{where}: the published manifest was written under the partition lease "
                f"(token {current.lease_token}); a writer without the lease cannot replace it"
            )
        return replace(manifest, published_at=timestamp(datetime.now(UTC)))

    records = Records(store, decode=_decode_manifest, encode=CuratedManifest.to_json)
    if lease is None:
        return records.update(key, replace_current)
    seen: list[CuratedManifest] = []

    def token_of(current: CuratedManifest) -> int | None:
        seen.append(current)
        return current.lease_token

    try:
        return lease.fenced_update(records, key, replace_current, token_of=token_of)
    except LeaseLostError as exc:
        dt = date.fromisoformat(manifest.dt)
        restarted = _tokens_restarted(store, manifest.dataset, dt, lease, seen)
        if restarted is None:
            raise
        raise restarted from exc


def _tokens_restarted(
    store: ObjectStore,
    dataset: str,
    dt: date,
    lease: Lease,
    seen: list[CuratedManifest],
    *,
    withdrawal: bool = False,
    loads: bool = True,
) -> PublishFencedError | None:
    """The error for a publish (or with ``withdrawal`` a withdrawal's removal) refused by
    the manifest last ``seen``, when its token is newer than the lease's and the lease is
    still held at its own: the lease's tokens restarted, :class:`PublishFencedError` with
    the recovery. ``None`` when the lease was taken over (the refusal stands as it is)."""
    refusing = seen[-1] if seen else None
    newer = refusing.lease_token if refusing is not None else None
    if newer is None or newer <= lease.token or not tokens_restarted(lease, lease.token):
        return None
    assert refusing is not None
    return PublishFencedError(
        dataset,
        dt,
        lease.token,
        newer,
        key=lease.key,
        manifest=store.location_for(manifest_key(dataset, dt)),
        generation=refusing.generation,
        withdrawal=withdrawal,
        loads=loads,
    )


def _decode_manifest(data: bytes, key: str) -> CuratedManifest:
    return CuratedManifest.from_json(data, key=key)


def remove_curated(
    store: ObjectStore, dataset: str, dt: date, *, lease: Lease, loads: bool = True
) -> CuratedManifest | None:
    """Withdraw a curated partition under its ``lease``: its manifest first (readers then
    see none, never one naming a missing file), then the parts of the generation it names
    and of every generation that started before this removal. Removing a partition
    already gone does nothing.

    Fenced like a publish: the manifest is deleted only if it is still the version read and
    was not written under a newer token, and the lease is checked again before the parts
    go, whose generations started after this removal (a later holder's, this one having
    stalled past its lease) are kept. Returns the manifest removed (``None``: none).
    ``loads``: the withdrawal deletes the day's loaded rows too (its refusal's recovery is
    then a ``run`` that loads, else one with ``--no-load``).

    Raises:
        LeaseLostError: the lease was taken over, or the manifest was published under a
            newer token or replaced meanwhile; it is left as it is
            (:class:`~data_pipeline.errors.PublishFencedError`, with the recovery, when the
            lease is still this writer's: its tokens restarted).
    """
    started = new_generation(datetime.now(UTC)).partition("-")[0]
    records = Records(store, decode=_decode_manifest, encode=CuratedManifest.to_json)
    seen: list[CuratedManifest] = []

    def token_of(current: CuratedManifest) -> int | None:
        seen.append(current)
        return current.lease_token

    try:
        removed = lease.fenced_delete(records, manifest_key(dataset, dt), token_of=token_of)
    except LeaseLostError as exc:
        restarted = _tokens_restarted(store, dataset, dt, lease, seen, withdrawal=True, loads=loads)
        if restarted is None:
            raise
        raise restarted from exc
    lease.check()
    named = {removed.generation} if removed is not None else set()  # whatever its host's clock
    for key, generation in _parts(store, curated_prefix(dataset, dt)):
        if generation in named or not _started_after(generation, started):
            store.delete(key)
            logger.debug("withdrawn curated part deleted", extra={"key": key})
    return removed


def _started_after(generation: str, started: str) -> bool:
    """Whether :func:`new_generation` id ``generation`` started after the moment
    ``started`` (an id's start, to the microsecond); an id of another form did not."""
    moment = _GENERATION_START.match(generation)
    return moment is not None and moment[0] > started


def remove_abandoned_writes(store: ObjectStore, older_than: timedelta) -> int:
    """Remove what pipeline writers killed mid-write left (older than a lease lasts)."""
    return sum(
        store.remove_abandoned_writes(older_than, prefix)
        for prefix in (curated_prefix(), state_prefix("data_pipeline"))
    )


def timestamp(moment: datetime) -> str:
    """A UTC timestamp in the documents' one fixed format
    (:func:`etl_core.artifacts.utc_timestamp`), so that text order is time order (a
    withdrawal notice's time is compared with it)."""
    return utc_timestamp(moment)


def _prune(store: ObjectStore, prefix: str, keep: set[str]) -> None:
    for key in list(_stale_parts(store, prefix, keep)):
        store.delete(key)
        logger.debug("stale curated part deleted", extra={"key": key})


def _stale_parts(store: ObjectStore, prefix: str, keep: set[str]) -> Iterator[str]:
    return (key for key, generation in _parts(store, prefix) if generation not in keep)


def _parts(store: ObjectStore, prefix: str) -> Iterator[tuple[str, str]]:
    """Every curated part under ``prefix`` with its generation."""
    pattern = re.compile(re.escape(prefix) + r"part-(.+)-\d{5}\.parquet")
    for info in list(store.list(prefix)):
        match = pattern.fullmatch(info.key)
        if match:
            yield info.key, match[1]
