"""Scan ``landing/``: process every object not yet processed, several at a time.

Each landing object is one work unit (:mod:`file_processing.work`) handed to an
executor of :mod:`etl_core.work`; the ledger's compare-and-put claims make two
scans running at once (threads, processes or hosts) process every object exactly
once. A failure of one object (a store error after its retries, an unresolvable
key reference) is counted and logged; the others go on.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from etl_core.artifacts import REVALIDATED_BY, SUPERSEDED_BY
from etl_core.errors import EtlError
from etl_core.layout import landing_prefix
from etl_core.storage import ObjectInfo
from file_processing.work import landing_object_unit, run_unit

if TYPE_CHECKING:  # the processor is the caller's: importing this module does not load it
    from etl_core.work import Executor, UnitResult, WorkUnit
    from file_processing.ledger import Ledger
    from file_processing.outcome import Outcome
    from file_processing.process import Processor

__all__ = ["DoneObjects", "Failure", "ScanSummary", "enqueue", "landing_keys", "scan"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failure:
    """An object that could not be processed (it stays in line for the next scan)."""

    key: str
    error: str


@dataclass
class ScanSummary:
    """What one scan did."""

    outcomes: list[Outcome] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        """How many objects ended with ``outcome``: a status, or ``settling`` (those
        ``skipped`` only because they may still be uploading, not in ``skipped``'s count),
        as :attr:`Outcome.metric_outcome` labels them."""
        return sum(1 for o in self.outcomes if o.metric_outcome == outcome)

    def counts(self) -> dict[str, int]:
        """Objects per outcome, as ``scan`` reports them: ``validated``, ``quarantined``,
        ``skipped``, ``settling`` (a later scan takes them) and ``failed``."""
        counts = {o: self.count(o) for o in ("validated", "quarantined", "skipped", "settling")}
        counts["failed"] = len(self.failures)
        return counts

    def superseded(self) -> int:
        """How many open quarantine records of earlier deliveries the validated ones closed."""
        return self._closed(SUPERSEDED_BY)

    def revalidated(self) -> int:
        """How many open quarantine records of their own the validated ones closed: the same
        delivery, processed again (``--force``), validated this time."""
        return self._closed(REVALIDATED_BY)

    def _closed(self, by: str) -> int:
        return sum(
            (closed.get("closed_by") or SUPERSEDED_BY) == by
            for outcome in self.outcomes
            for closed in outcome.superseded
        )

    def by_reason(self) -> Counter[str]:
        """Quarantined and duplicate objects per reason code."""
        return Counter(o.reason["code"] for o in self.outcomes if o.reason)


def landing_keys(processor: Processor, dataset: str | None = None) -> Iterator[str]:
    """Landing keys to consider (sidecars left out), restricted to ``dataset``'s source.

    Keys the store cannot address (``a//b``, ``x/../y``, control characters) come
    last, exactly as stored: they are quarantined with a ``name.*`` reason.

    Raises:
        ContractError: no contract declares ``dataset``.
    """
    for info in _landing_objects(processor, dataset):
        yield info.key


def _landing_objects(processor: Processor, dataset: str | None) -> Iterator[ObjectInfo]:
    """The landing objects (of ``dataset``), from one listing of the prefix."""
    source = None if dataset is None else processor.contracts.get(dataset).source
    unaddressable: list[ObjectInfo] = []
    for info, addressable in processor.store.list_every(landing_prefix(source)):
        if not addressable:
            if dataset is None or processor.contracts.find(info.key) is not None:
                unaddressable.append(info)  # few, and they come last
            continue
        if info.key.endswith("/") or processor.is_control_file(info.key):
            continue
        if dataset is not None and processor.contracts.find(info.key) is None:
            continue
        yield info
    yield from unaddressable


def scan(
    processor: Processor,
    executor: Executor,
    *,
    dataset: str | None = None,
    on_planned: Callable[[Mapping[str, int]], None] | None = None,
    on_done: Callable[[Outcome | Failure], None] | None = None,
) -> ScanSummary:
    """Process every unprocessed landing object (of ``dataset``) on ``executor``.

    Args:
        on_planned: Called once with the objects found and their sizes in bytes (for a
            progress bar).
        on_done: Called after each object, with its outcome or failure.
    """
    processor.remove_abandoned_writes()
    found = {info.key: info.size for info in _landing_objects(processor, dataset)}
    units = [landing_object_unit(key) for key in found]
    if on_planned is not None:
        on_planned(found)
    summary = ScanSummary()
    ended = _EndedUnits(partial(run_unit, processor))
    reported: set[str] = set()
    try:
        for result in executor.run(ended, units):
            done = _summarised(result)
            reported.add(done.key)
            if isinstance(done, Failure):
                summary.failures.append(done)
            else:
                summary.outcomes.append(done)
            if on_done is not None:
                on_done(done)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM, once the objects in flight have ended
        if on_done is not None:  # those that finished in flight count as finished
            for done in ended.outcomes(excluding=reported):
                on_done(done)
        raise
    summary.outcomes.sort(key=lambda o: o.key)
    summary.failures.sort(key=lambda f: f.key)
    return summary


def enqueue(
    processor: Processor,
    submit: Callable[[WorkUnit], object],
    *,
    dataset: str | None = None,
    done: DoneObjects | None = None,
) -> int:
    """Hand every landing object (of ``dataset``) that still needs work to ``submit``
    without waiting for any (``scan --no-wait``, the scheduled scan: a broker's workers
    process them); how many were handed over.

    An object whose ledger record says it is done for its current ETag (validated,
    quarantined, a duplicate) is not enqueued again: a scheduled scan fires every
    interval over a landing zone that keeps every drop, and re-sending all of them each
    time would bury a new drop behind thousands of units that end ``already …``. Its
    ledger record is read here instead of on a worker (``done``, kept by a scheduler from
    one scan to the next, reads only the records that changed); an object changed since
    (a new ETag) or released from quarantine is enqueued again. An object in flight
    (claimed, not finished) is enqueued: a second unit of it is harmless, a lost claim
    is not.
    """
    processor.remove_abandoned_writes()
    found = list(_landing_objects(processor, dataset))
    count = 0
    for info in (done or DoneObjects(processor.ledger)).not_done(found):
        submit(landing_object_unit(info.key))
        count += 1
    return count


class DoneObjects:
    """Which landing objects the ledger says are done for their ETag, for the scans of
    one scheduler.

    A few objects: one read of each record. From ``listing_from`` objects on: one listing
    of the ledger's records (their versions), a read only of a record new or changed since
    this instance last read it, none for an object without a record. A landing zone that
    keeps 50,000 done drops then costs each interval a listing (50 pages), not 50,000
    reads one after another (minutes on S3, for a job that fires every minute).

    Args:
        ledger: The lane's ledger.
        listing_from: How many landing objects make a listing of the ledger cheaper than
            a read of each record (one listing page holds 1,000 records).
    """

    def __init__(self, ledger: Ledger, *, listing_from: int = 1000) -> None:
        self._ledger = ledger
        self._listing_from = listing_from
        self._known: dict[str, tuple[str, str | None]] = {}
        """By record key: the version read, and the landing ETag it is done for (or None)."""

    def not_done(self, found: Sequence[ObjectInfo]) -> Iterator[ObjectInfo]:
        """The objects of ``found`` whose record is not done for their ETag, in order."""
        if len(found) < self._listing_from:
            for info in found:
                record = self._ledger.get(info.key)
                if record is None or not record.is_done_for(info.etag):
                    yield info
            return
        versions = self._ledger.versions()
        self._known = {key: seen for key, seen in self._known.items() if key in versions}
        for info in found:
            record_key = self._ledger.record_key(info.key)
            version = versions.get(record_key)
            if version is None:  # never processed (or its record is newer than the listing)
                yield info
                continue
            seen = self._known.get(record_key)
            if seen is None or seen[0] != version:
                read = self._ledger.read(info.key)
                if read is None:
                    yield info
                    continue
                record = read.value
                seen = (read.etag, record.etag if record.is_done_for(record.etag) else None)
                self._known[record_key] = seen
            if seen[1] != info.etag:
                yield info


class _EndedUnits:
    """``run_unit`` remembering which units ended and how, so an interrupted scan can
    count those in flight that finished; a unit cut short by the interruption has not."""

    def __init__(self, run: Callable[[WorkUnit], Outcome]) -> None:
        self._run = run
        self._lock = threading.Lock()
        self._ended: dict[str, Outcome | Failure] = {}

    def outcomes(self, *, excluding: set[str]) -> list[Outcome | Failure]:
        """How the units that ended, except those in ``excluding``, ended."""
        with self._lock:
            return [done for key, done in self._ended.items() if key not in excluding]

    def __call__(self, unit: WorkUnit) -> Outcome:
        try:
            outcome = self._run(unit)
        except Exception as error:
            self._end(unit.key, Failure(unit.key, f"{type(error).__name__}: {error}"))
            raise
        self._end(unit.key, outcome)
        return outcome

    def _end(self, key: str, done: Outcome | Failure) -> None:
        with self._lock:
            self._ended[key] = done


def _summarised(result: UnitResult[Outcome]) -> Outcome | Failure:
    if result.ok and result.value is not None:
        return result.value
    key, error = result.unit.key, result.error
    logger.error(
        "could not process %s: %s",
        key,
        error,
        extra={"key": key, "attempts": result.attempts},
        exc_info=None if isinstance(error, EtlError) else error,
    )
    return Failure(key, f"{type(error).__name__}: {error}")
