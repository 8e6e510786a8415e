"""What the store says about one dataset, read once per evaluation and shared by its monitors.

Keys come from :mod:`etl_core.layout` and documents from :mod:`etl_core.artifacts`, as
every lane reads them: landing files are the names under ``landing/<source>/`` that match
the contract's pattern (checksum sidecars aside); validated data is what the delivery
manifests published; curated data is what the partition manifests published. Each
listing streams, so memory grows with the days judged, not with the objects stored.

Given a :class:`Manifests` source (``serve``'s incremental storage index,
:mod:`observability.storage_index`), the validated and curated facts come from it instead
of a listing of the dataset's whole zone each cycle, and the landing facts from the
index's own listing of ``landing/`` (:class:`LandingFiles`): each zone is listed once per
cycle.

Time: an object dated after its listing's *horizon* (:func:`horizon`: the evaluation's
instant plus :data:`CLOCK_SKEW`) is kept apart as *future-dated* (:attr:`ZoneFacts.future`),
so a zone's newest object is the newest one at or before the horizon and one object dated
2099 cannot hide that nothing arrived since. A replay (``check --at``) leaves out every
object stored after its instant (``as_of``): they did not exist then.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import Protocol

from etl_core.artifacts import CuratedManifest, QuarantineRecord, read_deliveries
from etl_core.contracts import Contract
from etl_core.errors import ObjectNotFoundError
from etl_core.layout import (
    CURATED,
    LANDING,
    MANIFEST_NAME,
    QUARANTINE_SUFFIX,
    VALIDATED,
    curated_prefix,
    is_delivery_manifest,
    landing_prefix,
    manifest_key,
    partition_of,
    quarantine_prefix,
    validated_prefix,
)
from etl_core.storage import ObjectInfo, ObjectStore

__all__ = [
    "CLOCK_SKEW",
    "WATCHED_ZONES",
    "DatasetFacts",
    "LandingFiles",
    "Manifests",
    "ZoneFacts",
    "horizon",
]

PUBLISHED = VALIDATED
"""The outcome of a landing file whose delivery was published to ``validated/``."""
WATCHED_ZONES = (LANDING, VALIDATED, CURATED)
"""The zones whose age is judged, in the order data flows through them."""
CLOCK_SKEW = timedelta(minutes=15)
"""How far after the listing an object may be dated before its time is not believed: an
object's time is the store's clock, and S3 (MinIO too) serves a client whose clock is up to
15 minutes off its own, so a smaller tolerance would call each new object future."""


def horizon(now: datetime) -> datetime:
    """The latest time an object listed at ``now`` may be dated and still count as stored:
    ``now`` (or the real time, when ``now`` is earlier) plus :data:`CLOCK_SKEW`."""
    return max(now, datetime.now(UTC)) + CLOCK_SKEW


class ZoneFacts:
    """One zone of one dataset: its newest and oldest objects, its future-dated ones and the
    partition dates it holds.

    Args:
        horizon: Objects dated after this are future-dated: kept apart from :attr:`newest`
            (``None``: none is).
        as_of: A replay's instant: objects stored after it are left out (``None``: none is).
    """

    def __init__(self, *, horizon: datetime | None = None, as_of: datetime | None = None) -> None:
        self.horizon = horizon
        self.as_of = as_of
        self.newest: datetime | None = None
        self.newest_key: str | None = None
        self.oldest: datetime | None = None
        """The earliest-dated object (future-dated ones aside): how long the zone's objects
        have waited, when nothing reached the next zone (an index knows only each
        partition's newest manifest: then the oldest of those)."""
        self.oldest_key: str | None = None
        self.future: datetime | None = None
        """The furthest-dated of the objects dated after :attr:`horizon`."""
        self.future_key: str | None = None
        self.future_count = 0
        """How many objects are dated after :attr:`horizon`."""
        self.days: set[date] = set()

    def add(self, info: ObjectInfo, day: date) -> None:
        """Count ``info`` (of partition ``day``) into the zone."""
        self.note(day, info.last_modified, info.key)

    def note(self, day: date, stored: datetime, key: str, count: int = 1) -> None:
        """Count the object ``key``, stored at ``stored``, of partition ``day`` into the zone
        (unless it is stored after :attr:`as_of`); ``count``: how many future-dated objects
        it stands for, when it is one (an index keeps only a partition's furthest)."""
        if self.as_of is not None and stored > self.as_of:
            return  # a replay: it did not exist yet
        self.days.add(day)
        if self.horizon is not None and stored > self.horizon:
            self.future_count += count
            if self.future is None or stored > self.future:
                self.future, self.future_key = stored, key
        else:
            if self.newest is None or stored > self.newest:
                self.newest, self.newest_key = stored, key
            if self.oldest is None or stored < self.oldest:
                self.oldest, self.oldest_key = stored, key


class LandingFiles:
    """One dataset's landing files, from a listing of ``landing/<source>/`` fed to :meth:`add`:
    the zone's facts, and the files by partition date from ``since`` on.

    Args:
        contract: The dataset's contract (its ``source``, ``pattern`` and partition date).
        since: Files of partition dates before this are counted, not kept as arrivals.
        horizon: Files dated after this are future-dated (:class:`ZoneFacts`).
        as_of: A replay's instant: files stored after it are left out, arrivals too.
    """

    def __init__(
        self,
        contract: Contract,
        since: date,
        *,
        horizon: datetime | None = None,
        as_of: datetime | None = None,
    ) -> None:
        self.contract = contract
        self.since = since
        self.as_of = as_of
        self.prefix = landing_prefix(contract.source.strip("/"))
        self.facts = ZoneFacts(horizon=horizon, as_of=as_of)
        self.arrivals: dict[date, list[ObjectInfo]] = {}

    def add(self, info: ObjectInfo) -> None:
        """Count ``info`` (listed under :attr:`prefix`) in, unless it is not this dataset's
        or was stored after :attr:`as_of`."""
        if self.as_of is not None and info.last_modified > self.as_of:
            return
        day = self._landing_date(info)
        if day is None:
            return
        self.facts.add(info, day)
        if day >= self.since:
            self.arrivals.setdefault(day, []).append(info)

    def finish(self) -> LandingFiles:
        """After the listing: each day's first arrival first."""
        for files in self.arrivals.values():
            files.sort(key=lambda info: (info.last_modified, info.key))
        return self

    def arrivals_since(self, since: date) -> dict[date, list[ObjectInfo]]:
        """The arrivals of partition dates from ``since`` (not before :attr:`since`) on."""
        return {day: files for day, files in self.arrivals.items() if day >= since}

    def _landing_date(self, info: ObjectInfo) -> date | None:
        """The partition date of a landing object of this dataset (from its name, a folder or
        its arrival time, as the contract says); ``None`` for another dataset's (a deeper
        source such as vendor/eu under vendor) and for checksum sidecars."""
        checksum = self.contract.control.checksum
        vouched = info.key.removesuffix(f".{checksum}") if checksum else info.key
        if vouched != info.key and self.contract.matches(vouched):
            return None  # a checksum sidecar vouches for a delivery, it is not one
        return self.contract.partition_date(info.key, info.last_modified)


class Manifests(Protocol):
    """Where the published partitions and the landing files of a dataset are known without
    listing its zones."""

    def manifests(self, zone: str, dataset: str) -> Iterable[tuple[date, datetime, str, int]]:
        """Each partition of ``dataset`` in ``zone`` (validated or curated) holding a
        manifest: its date, and its newest manifest's time and key; its furthest
        future-dated one's too, with how many are future-dated (else 1)."""
        ...

    def landing(self, dataset: str) -> LandingFiles | None:
        """``dataset``'s landing files as listed with the rest of ``landing/``; ``None``
        when they were not."""
        ...


class DatasetFacts:
    """The store's facts about one dataset, each read on first use.

    Args:
        store: The object store.
        contract: The dataset's contract.
        since: Landing files of partition dates before this are not kept as arrivals.
        manifests: Where the published partitions are known; ``None``: list the zones.
        horizon: Objects dated after this are future-dated (:class:`ZoneFacts`).
        as_of: A replay's instant: objects stored after it are left out.
    """

    def __init__(
        self,
        store: ObjectStore,
        contract: Contract,
        *,
        since: date,
        manifests: Manifests | None = None,
        horizon: datetime | None = None,
        as_of: datetime | None = None,
    ) -> None:
        self.store = store
        self.contract = contract
        self.since = since
        self.manifests = manifests
        self.horizon = horizon
        self.as_of = as_of

    def zone(self, zone: str) -> ZoneFacts:
        """The facts of ``zone`` (one of :data:`WATCHED_ZONES`)."""
        readers = {LANDING: "_landing", VALIDATED: "_validated", CURATED: "_curated"}
        facts: ZoneFacts = getattr(self, readers[zone])  # read on first use only
        return facts

    def arrivals(self) -> dict[date, list[ObjectInfo]]:
        """Landing files by partition date (from ``since`` on), each day's first arrival first."""
        return self._arrivals

    @cached_property
    def _arrivals(self) -> dict[date, list[ObjectInfo]]:
        return self._landing_files.arrivals_since(self.since)

    @cached_property
    def _landing(self) -> ZoneFacts:
        return self._landing_files.facts

    @cached_property
    def _landing_files(self) -> LandingFiles:
        """The landing files the index listed this cycle (when they reach back to ``since``),
        else a listing of ``landing/<source>/`` of their own."""
        listed = None if self.manifests is None else self.manifests.landing(self.contract.dataset)
        if (
            listed is not None
            and listed.contract == self.contract
            and listed.since <= self.since
            and listed.as_of == self.as_of
        ):
            return listed
        files = LandingFiles(self.contract, self.since, horizon=self.horizon, as_of=self.as_of)
        for info in self.store.list(files.prefix):
            files.add(info)
        return files.finish()

    @cached_property
    def _validated(self) -> ZoneFacts:
        if self.manifests is not None:
            return self._indexed(VALIDATED)
        facts = self._zone_facts()
        for info in self.store.list(validated_prefix(self.contract.dataset)):
            partition = partition_of(info.key)
            if partition is not None and is_delivery_manifest(info.key):
                facts.add(info, partition.dt)
        return facts

    @cached_property
    def _curated(self) -> ZoneFacts:
        if self.manifests is not None:
            return self._indexed(CURATED)
        facts = self._zone_facts()
        for info in self.store.list(curated_prefix(self.contract.dataset)):
            partition = partition_of(info.key)
            if partition is not None and info.key.endswith(f"/{MANIFEST_NAME}"):
                facts.add(info, partition.dt)
        return facts

    def _zone_facts(self) -> ZoneFacts:
        return ZoneFacts(horizon=self.horizon, as_of=self.as_of)

    def _indexed(self, zone: str) -> ZoneFacts:
        assert self.manifests is not None
        facts = self._zone_facts()
        for day, stored, key, count in self.manifests.manifests(zone, self.contract.dataset):
            facts.note(day, stored, key, count)
        return facts

    @property
    def volume_zone(self) -> str:
        """Where rows are counted: ``curated`` once it has partitions, else ``validated``."""
        return CURATED if self.zone(CURATED).days else VALIDATED

    def rows(self, day: date) -> int | None:
        """Rows of partition ``day`` in :attr:`volume_zone`; ``None`` when it has none (a
        curated partition data_pipeline withdrew since the zone was listed has none).

        Raises:
            ArtifactError: a manifest is malformed (its key is named).
        """
        if day not in self.zone(self.volume_zone).days:
            return None
        if self.volume_zone == CURATED:
            key = manifest_key(self.contract.dataset, day)
            try:
                raw = self.store.read_bytes(key)
            except ObjectNotFoundError:  # withdrawn since it was listed (or indexed)
                return None
            return CuratedManifest.from_json(raw, key=key).rows
        deliveries = read_deliveries(self.store, self.contract.dataset, day)
        return sum(member.rows for delivery in deliveries for member in delivery.members)

    def outcomes(self, day: date) -> dict[str, str]:
        """What became of partition ``day``'s landing files: ``validated`` or why quarantined.

        Raises:
            ArtifactError: a delivery manifest or quarantine record is malformed.
        """
        dataset = self.contract.dataset
        found = {
            delivery.delivery.key: PUBLISHED
            for delivery in read_deliveries(self.store, dataset, day)
        }
        for info in self.store.list(quarantine_prefix(dataset, day)):
            if info.key.endswith(QUARANTINE_SUFFIX):
                record = QuarantineRecord.from_json(self.store.read_bytes(info.key), key=info.key)
                if not record.released:
                    found.setdefault(record.source_key, f"quarantined ({record.reason})")
        return found
