"""Storage metrics kept incrementally: recent partitions listed each cycle, the rest reconciled.

A whole-bucket listing every scrape (what s3_exporter does) costs as much as the bucket is
large. The layout (architecture section 3) puts almost every object under a ``dt=``
partition folder (:data:`~etl_core.layout.PARTITIONED_ZONES`), and data lands in the recent
partitions, so a :class:`StorageIndex` keeps a tally per partition and per cycle lists only:

- the recent partitions of every dataset it knows (the contracts', with the raw pages of
  the API endpoint feeding one, and the ones the last reconcile found):
  ``storage_recent_days`` dates up to today, plus tomorrow, each through
  :func:`~etl_core.layout.partition_prefix`, several prefixes at once;
- ``landing/``, whose drops have no date folder and whose age is what freshness is about;
  the same listing gives each contract's landing files to the freshness monitors
  (:class:`~observability.monitors.LandingFiles`), so ``landing/`` is listed once a cycle;
- each contract's newest published partition in ``validated/`` and ``curated/`` when older
  than those (its age's), and the next one while it is found gone: a zone emptied since the
  reconcile (a lifecycle rule) is seen empty by the next cycle, as ``check`` sees it.

Every ``storage_reconcile_interval`` it lists every zone whole (zones in parallel) and
starts over from that. Between two reconciles it cannot see another change to an older
partition (a backfill, a deletion), to ``_state/``, nor a dataset no contract names that
appeared since: their tallies are the reconcile's. Quarantine
records are read once per key and ETag (open ones counted by reason). Memory grows with
the partitions and quarantine records, never with the objects listed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

from etl_core.artifacts import QuarantineRecord
from etl_core.contracts import Contract
from etl_core.errors import ArtifactError, ObjectNotFoundError
from etl_core.layout import (
    API,
    CURATED,
    LANDING,
    MANIFEST_NAME,
    PARTITIONED_ZONES,
    QUARANTINE,
    QUARANTINE_SUFFIX,
    RAW,
    UNKNOWN_DATASET,
    VALIDATED,
    ZONES,
    is_delivery_manifest,
    partition_of,
    partition_prefix,
    zone_prefix,
)
from etl_core.metrics import Registry
from etl_core.storage import ObjectInfo, ObjectStore
from etl_core.threads import ContextThreadPoolExecutor
from observability.evaluation import first_judged_day
from observability.inventory import dataset_of
from observability.monitors import LandingFiles, horizon

__all__ = [
    "UNREADABLE_RECORD",
    "Area",
    "StorageIndex",
    "StorageSnapshot",
    "StorageTotals",
    "Tally",
    "record_storage_metrics",
]

logger = logging.getLogger(__name__)

Mode = Literal["reconcile", "incremental"]
UNREADABLE_RECORD = "(unreadable record)"
"""The reason a quarantine record that cannot be read is counted under (its key is logged)."""
LIVE_ZONES: tuple[str, ...] = (LANDING,)
"""Zones without partition folders listed whole every cycle."""


@dataclass(frozen=True)
class Area:
    """Where a tally is kept: one partition, or what a zone's dataset has outside partitions.

    Attributes:
        zone: The zone.
        dataset: For a partition, its dataset as :func:`~etl_core.layout.partition_of` gives
            it (``api/<source>/<endpoint>`` in ``raw/``); otherwise :func:`dataset_of`'s.
        dt: The partition date; ``None`` outside partitions.
    """

    zone: str
    dataset: str
    dt: date | None = None

    @classmethod
    def of(cls, zone: str, key: str) -> Area:
        """The area ``key`` (listed in ``zone``) is tallied in."""
        partition = partition_of(key)
        if partition is not None and partition.zone == zone:
            return cls(zone, partition.dataset, partition.dt)
        return cls(zone, dataset_of(zone, key))

    @property
    def reported(self) -> str:
        """The dataset label the area's objects are reported under."""
        if self.zone == RAW and self.dataset.startswith(f"{API}/"):
            return "/".join(self.dataset.split("/")[:2])
        return self.dataset


@dataclass
class Tally:
    """What one area holds.

    Attributes:
        objects: Objects.
        bytes: Their bytes.
        newest: The newest object's time.
        published: The newest manifest's time (delivery manifests in ``validated/``,
            partition manifests in ``curated/``).
        published_key: That manifest's key.
        ahead: The furthest-dated manifest dated after its listing
            (:func:`~observability.monitors.horizon`), kept apart from ``published`` so it
            cannot hide the partition's real newest one.
        ahead_key: That manifest's key.
        ahead_count: How many manifests are dated after their listing (the freshness
            monitors tell how many, as a listing of the zone would).
        quarantines: Open quarantine records by reason.
        stored_days: Objects per day stored (UTC), of the recent days (``landing/`` only).
    """

    objects: int = 0
    bytes: int = 0
    newest: datetime | None = None
    published: datetime | None = None
    published_key: str | None = None
    ahead: datetime | None = None
    ahead_key: str | None = None
    ahead_count: int = 0
    quarantines: Counter[str] = field(default_factory=Counter)
    stored_days: Counter[date] = field(default_factory=Counter)

    def add(self, info: ObjectInfo) -> None:
        """Count ``info`` in."""
        self.objects += 1
        self.bytes += info.size
        if self.newest is None or info.last_modified > self.newest:
            self.newest = info.last_modified

    def publish(self, info: ObjectInfo, horizon: datetime | None = None) -> None:
        """Count ``info`` as a manifest that published data (one dated after ``horizon`` as
        :attr:`ahead`)."""
        if horizon is not None and info.last_modified > horizon:
            self.ahead_count += 1
            if self.ahead is None or info.last_modified > self.ahead:
                self.ahead, self.ahead_key = info.last_modified, info.key
        elif self.published is None or info.last_modified > self.published:
            self.published, self.published_key = info.last_modified, info.key


@dataclass
class StorageTotals:
    """One zone's dataset (or source), over all its areas: what the metrics report."""

    zone: str
    dataset: str
    objects: int = 0
    bytes: int = 0
    newest: datetime | None = None
    open_quarantines: Counter[str] = field(default_factory=Counter)
    arrivals: Counter[date] = field(default_factory=Counter)

    def to_dict(self, now: datetime) -> dict[str, Any]:
        """The totals as plain JSON data (``newest_age_seconds`` at ``now``)."""
        age = None if self.newest is None else max(0.0, (now - self.newest).total_seconds())
        return {
            "zone": self.zone,
            "dataset": self.dataset,
            "objects": self.objects,
            "bytes": self.bytes,
            "newest": self.newest.isoformat() if self.newest else None,
            "newest_age_seconds": age,
            "open_quarantines": dict(sorted(self.open_quarantines.items())),
            "arrivals": {day.isoformat(): n for day, n in sorted(self.arrivals.items())},
        }


@dataclass(frozen=True)
class StorageSnapshot:
    """The index after one collection; never changed afterwards (cycles read it freely).

    Attributes:
        collected_at: When the collection started.
        mode: ``reconcile`` (everything listed) or ``incremental``.
        reconciled_at: When the latest reconcile started.
        days: The recent days listed (partition dates; days stored in ``landing/``).
        areas: Every area's tally.
        listed: Objects the collection listed.
        seconds: How long it took.
        landing_files: Each contract's landing files, by dataset, from the same listing.
    """

    collected_at: datetime
    mode: Mode
    reconciled_at: datetime
    days: tuple[date, ...]
    areas: Mapping[Area, Tally]
    listed: int
    seconds: float
    landing_files: Mapping[str, LandingFiles] = field(default_factory=dict)

    def totals(self) -> list[StorageTotals]:
        """Per zone and dataset, zones in the layout's order, then datasets by name."""
        found: dict[tuple[str, str], StorageTotals] = {}
        recent = set(self.days)
        for area, tally in self.areas.items():
            name = (area.zone, area.reported)
            totals = found.get(name)
            if totals is None:
                totals = found[name] = StorageTotals(*name)
            totals.objects += tally.objects
            totals.bytes += tally.bytes
            if tally.newest is not None and (totals.newest is None or tally.newest > totals.newest):
                totals.newest = tally.newest
            totals.open_quarantines.update(tally.quarantines)
            if area.dt in recent:
                totals.arrivals[area.dt] += tally.objects
            totals.arrivals.update({d: n for d, n in tally.stored_days.items() if d in recent})
        order = {zone: n for n, zone in enumerate(ZONES)}
        return sorted(found.values(), key=lambda t: (order.get(t.zone, len(order)), t.dataset))

    def manifests(self, zone: str, dataset: str) -> Iterator[tuple[date, datetime, str, int]]:
        """Each partition of ``dataset`` in ``zone`` holding a manifest: its date and its
        newest manifest's time and key, and its furthest future-dated one's (what the
        freshness monitors read, and judge against their own horizon), each with how many
        manifests it stands for (the future-dated ones: all of them)."""
        for area, tally in self.areas.items():
            if area.zone != zone or area.dataset != dataset or area.dt is None:
                continue
            if tally.published is not None and tally.published_key is not None:
                yield area.dt, tally.published, tally.published_key, 1
            if tally.ahead is not None and tally.ahead_key is not None:
                yield area.dt, tally.ahead, tally.ahead_key, max(tally.ahead_count, 1)

    def landing(self, dataset: str) -> LandingFiles | None:
        """``dataset``'s landing files as this collection listed them (``None``: no contract)."""
        return self.landing_files.get(dataset)

    def to_dict(self) -> dict[str, Any]:
        """The ``storage`` key of ``/api/status``."""
        return {
            "collected_at": self.collected_at.isoformat(),
            "mode": self.mode,
            "reconciled_at": self.reconciled_at.isoformat(),
            "recent_days": [day.isoformat() for day in self.days],
            "listed_objects": self.listed,
            "seconds": round(self.seconds, 3),
            "datasets": [t.to_dict(self.collected_at) for t in self.totals()],
        }


class StorageIndex:
    """Storage metrics of one store, collected incrementally (see the module's docstring).

    Args:
        store: The object store.
        contracts: Their datasets' recent partitions are listed even before a reconcile
            found them.
        recent_days: Partition dates up to today listed each cycle (plus tomorrow).
        reconcile_interval: Time between two whole listings.
        workers: Listings at once.
        previous: A collection to go on from (one kept between runs,
            :mod:`observability.storage_state`); ``None``: the first collection reconciles.
    """

    def __init__(
        self,
        store: ObjectStore,
        contracts: Sequence[Contract] = (),
        *,
        recent_days: int = 2,
        reconcile_interval: timedelta = timedelta(hours=1),
        workers: int = 8,
        previous: StorageSnapshot | None = None,
    ) -> None:
        if recent_days < 1 or workers < 1:
            raise ValueError(f"recent_days and workers must be >= 1, got {recent_days}, {workers}")
        self.store = store
        self.contracts = tuple(contracts)
        self.recent_days = recent_days
        self.reconcile_interval = reconcile_interval
        self.workers = workers
        self._snapshot = previous
        self._records: dict[str, tuple[str, str | None]] = {}
        self._records_lock = threading.Lock()

    @property
    def snapshot(self) -> StorageSnapshot | None:
        """The latest collection, ``None`` before the first."""
        return self._snapshot

    def collect(self, now: datetime, *, reconcile: bool | None = None) -> StorageSnapshot:
        """Collect at ``now``: a reconcile when due (or asked), else the recent listing.

        Raises:
            StorageError: the store could not be listed (the previous snapshot is kept).
        """
        previous = self._snapshot
        due = previous is None or not self._reconciled_recently(previous, now)
        if reconcile if reconcile is not None else due:
            snapshot = self._reconcile(now)
        else:
            assert previous is not None
            snapshot = self._incremental(now, previous)
        self._snapshot = snapshot
        return snapshot

    def _reconciled_recently(self, previous: StorageSnapshot, now: datetime) -> bool:
        """Whether ``previous``'s reconcile is younger than the interval at ``now``; one dated
        after ``now`` (a clock set back, a kept index from elsewhere) is not, and is logged."""
        since = now - previous.reconciled_at
        if since < timedelta(0):
            logger.warning(
                "the storage index was reconciled at %s, after now (%s): listing the store whole",
                previous.reconciled_at.isoformat(),
                now.isoformat(),
            )
            return False
        return since < self.reconcile_interval

    def recent(self, now: datetime) -> tuple[date, ...]:
        """The partition dates listed each cycle at ``now``: tomorrow back to ``recent_days``."""
        today = now.date()
        return tuple(today - timedelta(days=n) for n in range(-1, self.recent_days))

    # ------------------------------------------------------------ collections

    def _reconcile(self, now: datetime) -> StorageSnapshot:
        started = time.perf_counter()
        days = self.recent(now)
        readers = self._landing_readers(now)
        latest = horizon(now)
        with ContextThreadPoolExecutor(min(self.workers, len(ZONES))) as pool:
            listed = list(
                pool.map(lambda z: self._tally(z, zone_prefix(z), days, readers, latest), ZONES)
            )
        areas: dict[Area, Tally] = {}
        for tallies in listed:
            areas.update(tallies)
        quarantined = {key for tallies in listed for key in tallies.records}
        with self._records_lock:  # records no longer listed are forgotten
            self._records = {k: v for k, v in self._records.items() if k in quarantined}
        self._count_quarantines(areas, listed)
        count = sum(t.listed for t in listed)
        seconds = time.perf_counter() - started
        landing = _finished(readers)
        return StorageSnapshot(now, "reconcile", now, days, areas, count, seconds, landing)

    def _incremental(self, now: datetime, previous: StorageSnapshot) -> StorageSnapshot:
        started = time.perf_counter()
        days = self.recent(now)
        known = sorted(self._known(previous))
        partitions = [Area(zone, dataset, day) for zone, dataset in known for day in days]
        prefixes = [(zone, zone_prefix(zone)) for zone in LIVE_ZONES]
        prefixes += [
            (zone, partition_prefix(zone, dataset, day)) for zone, dataset in known for day in days
        ]
        readers = self._landing_readers(now)
        latest = horizon(now)
        with ContextThreadPoolExecutor(min(self.workers, len(prefixes))) as pool:
            listed = list(
                pool.map(lambda p: self._tally(p[0], p[1], days, readers, latest), prefixes)
            )
        relisted = set(partitions)
        areas = {  # what was listed again is replaced whole: a deleted object is gone
            area: tally
            for area, tally in previous.areas.items()
            if area.zone not in LIVE_ZONES and area not in relisted
        }
        for tallies in listed:
            areas.update(tallies)
        listed += self._confirm_newest(areas, known, relisted, days, latest)
        self._count_quarantines(areas, listed)
        count = sum(t.listed for t in listed)
        seconds = time.perf_counter() - started
        return StorageSnapshot(
            now, "incremental", previous.reconciled_at, days, areas, count, seconds,
            _finished(readers),
        )  # fmt: skip

    def _confirm_newest(
        self,
        areas: dict[Area, Tally],
        known: Iterable[tuple[str, str]],
        relisted: set[Area],
        days: Sequence[date],
        latest: datetime,
    ) -> list[_Listing]:
        """List again, in ``areas``, each contract's newest published partition of ``validated``
        and ``curated`` older than the recent days (the one its age is judged on), and the
        next while one is found gone: a partition deleted since the reconcile (a lifecycle
        rule expiring the zone) would otherwise keep its age alive here, while a ``check``
        beside ``serve`` lists the zone empty, so their alert flapped (resolved as no
        longer measured, opened again) every cycle until the next reconcile. Costs one
        listing per dataset whose newest data is not recent, none for the others."""
        judged = {contract.dataset for contract in self.contracts}  # no contract: no age
        wanted = {pair for pair in known if pair[0] in (VALIDATED, CURATED) and pair[1] in judged}
        published: dict[tuple[str, str], list[tuple[datetime, Area]]] = {}
        for area, tally in areas.items():  # once: the areas are many
            if (area.zone, area.dataset) in wanted and tally.published is not None:
                published.setdefault((area.zone, area.dataset), []).append((tally.published, area))
        found: list[_Listing] = []
        for (zone, dataset), held in published.items():
            held.sort(key=lambda pair: pair[0])
            while held and (newest := held.pop()[1]) not in relisted and newest.dt is not None:
                listing = self._tally(
                    zone, partition_prefix(zone, dataset, newest.dt), days, {}, latest
                )
                del areas[newest]
                areas.update(listing)
                found.append(listing)
                if newest in listing and listing[newest].published is not None:
                    break  # still there: the age is judged on it
        return found

    def _known(self, previous: StorageSnapshot) -> set[tuple[str, str]]:
        """The partitioned (zone, dataset) pairs to list: the contracts' and those found."""
        known = {(a.zone, a.dataset) for a in previous.areas if a.dt is not None}
        for contract in self.contracts:
            known.update((zone, contract.dataset) for zone in (VALIDATED, QUARANTINE, CURATED))
            source = contract.source.strip("/").split("/")
            if len(source) == 3 and source[0] == API:  # fed by an API endpoint: its raw pages
                known.add((RAW, "/".join(source)))
        known.add((QUARANTINE, UNKNOWN_DATASET))
        return known

    def _landing_readers(self, now: datetime) -> dict[str, list[LandingFiles]]:
        """Each contract's landing files to be read from the listing, by their prefix."""
        readers: dict[str, list[LandingFiles]] = {}
        for contract in self.contracts:
            files = LandingFiles(contract, first_judged_day(contract, now), horizon=horizon(now))
            readers.setdefault(files.prefix, []).append(files)
        return readers

    def _tally(
        self,
        zone: str,
        prefix: str,
        days: Sequence[date],
        readers: Mapping[str, Sequence[LandingFiles]],
        latest: datetime,
    ) -> _Listing:
        """List ``prefix`` (inside ``zone``) and tally it per area; each ``landing/`` object
        also goes to the landing files of the sources it is under. A manifest dated after
        ``latest`` (the listing's horizon) is kept apart as future-dated."""
        listing = _Listing()
        recent = set(days)
        for info in self.store.list(prefix):
            listing.listed += 1
            if zone == LANDING:
                for folder in _folders(info.key):
                    for files in readers.get(folder, ()):
                        files.add(info)
            area = Area.of(zone, info.key)
            tally = listing.get(area)
            if tally is None:
                tally = listing[area] = Tally()
            tally.add(info)
            if zone == LANDING and (stored := info.last_modified.date()) in recent:
                tally.stored_days[stored] += 1
            if _is_manifest(zone, info.key):
                tally.publish(info, latest)
            elif zone == QUARANTINE and info.key.endswith(QUARANTINE_SUFFIX):
                listing.records[info.key] = (area, info.etag)
        return listing

    def _count_quarantines(self, areas: dict[Area, Tally], listed: Iterable[_Listing]) -> None:
        """Count each listed open quarantine record by reason into its area's tally."""
        records = [record for tallies in listed for record in tallies.records.items()]
        with ContextThreadPoolExecutor(self.workers) as pool:
            reasons = list(pool.map(lambda r: self._reason(r[0], r[1][1]), records))
        for (_, (area, _)), reason in zip(records, reasons, strict=True):
            if reason is not None:
                areas[area].quarantines[reason] += 1

    def _reason(self, key: str, etag: str) -> str | None:
        """The reason of the open quarantine record ``key`` (``None``: released), read once
        per ETag."""
        with self._records_lock:
            cached = self._records.get(key)
        if cached is not None and cached[0] == etag:
            return cached[1]
        try:
            record = QuarantineRecord.from_json(self.store.read_bytes(key), key=key)
            reason = None if record.released else record.reason
        except ObjectNotFoundError:
            return None  # deleted since it was listed: not open any more
        except ArtifactError as exc:
            logger.warning("quarantine record counted as unreadable: %s", exc)
            reason = UNREADABLE_RECORD
        with self._records_lock:
            self._records[key] = (etag, reason)
        return reason


class _Listing(dict[Area, Tally]):
    """One prefix's tallies, the objects it listed and its quarantine records."""

    def __init__(self) -> None:
        super().__init__()
        self.listed = 0
        self.records: dict[str, tuple[Area, str]] = {}


def _folders(key: str) -> Iterator[str]:
    """The prefixes of the folders ``key`` is in, below its zone: ``landing/a/``,
    ``landing/a/b/`` for ``landing/a/b/c.csv``."""
    end = key.find("/")
    while (end := key.find("/", end + 1)) >= 0:
        yield key[: end + 1]


def _finished(readers: Mapping[str, Sequence[LandingFiles]]) -> dict[str, LandingFiles]:
    """The landing files read, by dataset, once the listing is over."""
    return {files.contract.dataset: files.finish() for group in readers.values() for files in group}


def _is_manifest(zone: str, key: str) -> bool:
    if zone == VALIDATED:
        return is_delivery_manifest(key)
    return zone == CURATED and key.endswith(f"/{MANIFEST_NAME}") and partition_of(key) is not None


def record_storage_metrics(snapshot: StorageSnapshot, registry: Registry) -> None:
    """Set the storage gauges in ``registry`` (see the README's metrics table)."""
    labels = ("zone", "dataset")
    objects = registry.gauge(
        "etl_observability_objects", "Objects stored per zone and dataset.", labels
    )
    stored = registry.gauge(
        "etl_observability_stored_bytes", "Bytes stored per zone and dataset.", labels
    )
    age = registry.gauge(
        "etl_observability_newest_object_age_seconds",
        "Age of the newest object per zone and dataset.",
        labels,
    )
    quarantines = registry.gauge(
        "etl_observability_open_quarantines",
        "Open quarantine records (not released, superseded nor revalidated) per dataset"
        " and reason.",
        ("dataset", "reason"),
    )
    arrived = registry.gauge(
        "etl_observability_arrived_objects",
        "Objects per recent day: per partition date, in landing per day stored (UTC).",
        (*labels, "day"),
    )
    for totals in snapshot.totals():
        names = {"zone": totals.zone, "dataset": totals.dataset}
        objects.labels(**names).set(totals.objects)
        stored.labels(**names).set(totals.bytes)
        if totals.newest is not None:
            seconds = max(0.0, (snapshot.collected_at - totals.newest).total_seconds())
            age.labels(**names).set(seconds)
        for reason, count in totals.open_quarantines.items():
            quarantines.labels(dataset=totals.dataset, reason=reason).set(count)
        for day in snapshot.days:
            if totals.zone in (LANDING, *PARTITIONED_ZONES):
                arrived.labels(**names, day=day.isoformat()).set(totals.arrivals.get(day, 0))
    mode = ("mode",)
    registry.gauge(
        "etl_observability_storage_collection_seconds",
        "How long the latest storage collection took, by mode (reconcile, incremental).",
        mode,
    ).labels(mode=snapshot.mode).set(snapshot.seconds)
    registry.gauge(
        "etl_observability_storage_listed_objects",
        "Objects the latest storage collection listed, by mode.",
        mode,
    ).labels(mode=snapshot.mode).set(snapshot.listed)
    registry.gauge(
        "etl_observability_storage_reconcile_timestamp_seconds",
        "When the latest whole-store reconcile of the storage metrics started (Unix time).",
    ).set(snapshot.reconciled_at.timestamp())
