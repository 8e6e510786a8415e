"""The storage index kept in the store between runs, so a one-shot ``inventory`` lists
incrementally too.

``inventory`` loads the last collection from :data:`STATE_KEY`, collects from it (the recent
partitions and ``landing/`` while its reconcile is younger than ``storage_reconcile_interval``,
else every zone) and saves the new one. The document holds one tally per partition, so it
grows with the partitions, not the objects. A missing, unreadable or older-version document
(or one with a time without a UTC offset) means a reconcile; a document without the
future-dated manifests' fields (``ahead``, ``ahead_key``, ``ahead_count``: written before
they were kept apart) is read as having none; between reconciles ``_state/``
itself is what the last reconcile saw (this document included).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from datetime import date, datetime
from typing import Any

from etl_core.errors import ObjectNotFoundError, StorageError
from etl_core.layout import state_key
from etl_core.storage import ObjectStore
from observability.inventory import DatasetInventory
from observability.storage_index import Area, StorageIndex, StorageSnapshot, Tally

__all__ = [
    "STATE_KEY",
    "indexed_inventory",
    "load_snapshot",
    "save_snapshot",
    "snapshot_from_json",
    "snapshot_to_json",
]

logger = logging.getLogger(__name__)
STATE_KEY = state_key("observability", "storage-index.json")
"""Where ``inventory`` keeps the storage index between runs."""
VERSION = 1


def snapshot_to_json(snapshot: StorageSnapshot) -> bytes:
    """The collection's tallies and times as a JSON document."""
    areas = [[a.zone, a.dataset, _day(a.dt), _tally_dict(t)] for a, t in snapshot.areas.items()]
    document = {
        "version": VERSION,
        "collected_at": snapshot.collected_at.isoformat(),
        "mode": snapshot.mode,
        "reconciled_at": snapshot.reconciled_at.isoformat(),
        "days": [day.isoformat() for day in snapshot.days],
        "areas": areas,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def snapshot_from_json(data: bytes) -> StorageSnapshot:
    """The collection :func:`snapshot_to_json` wrote.

    Raises:
        ValueError: not such a document, or of another version (the offending field named).
    """
    try:
        document = json.loads(data)
        if document.get("version") != VERSION:
            raise ValueError(f"version: expected {VERSION}, got {document.get('version')!r}")
        areas = {
            Area(zone, dataset, _date(dt)): _tally(fields)
            for zone, dataset, dt, fields in document["areas"]
        }
        return StorageSnapshot(
            collected_at=_instant(document["collected_at"], "collected_at"),
            mode=document["mode"],
            reconciled_at=_instant(document["reconciled_at"], "reconciled_at"),
            days=tuple(date.fromisoformat(day) for day in document["days"]),
            areas=areas,
            listed=0,
            seconds=0.0,
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"malformed storage index: {type(exc).__name__} {exc}") from exc


def load_snapshot(store: ObjectStore) -> StorageSnapshot | None:
    """The collection saved in ``store``; ``None`` when there is none or it cannot be read
    (said in the log): the next collection reconciles."""
    try:
        return snapshot_from_json(store.read_bytes(STATE_KEY))
    except ObjectNotFoundError:
        return None
    except ValueError as exc:
        logger.warning("storage index %s not used, the store is listed whole: %s", STATE_KEY, exc)
        return None


def save_snapshot(store: ObjectStore, snapshot: StorageSnapshot) -> None:
    """Keep ``snapshot`` in ``store`` for the next run (a failure is logged, not raised: the
    next run reconciles)."""
    try:
        store.write_bytes(STATE_KEY, snapshot_to_json(snapshot))
    except StorageError as exc:
        logger.warning("storage index not saved to %s: %s", STATE_KEY, exc)


def indexed_inventory(
    index: StorageIndex, now: datetime, *, full: bool = False
) -> tuple[list[DatasetInventory], StorageSnapshot]:
    """Collect with ``index`` (a reconcile when ``full``) and save the collection; the
    inventory it gives and the collection.

    Raises:
        StorageError: the store could not be listed.
    """
    snapshot = index.collect(now, reconcile=True if full else None)
    save_snapshot(index.store, snapshot)
    entries = [
        DatasetInventory(t.zone, t.dataset, t.objects, t.bytes, t.newest) for t in snapshot.totals()
    ]
    return entries, snapshot


def _tally_dict(tally: Tally) -> dict[str, Any]:
    return {
        "objects": tally.objects,
        "bytes": tally.bytes,
        "newest": _time(tally.newest),
        "published": _time(tally.published),
        "published_key": tally.published_key,
        "ahead": _time(tally.ahead),
        "ahead_key": tally.ahead_key,
        "ahead_count": tally.ahead_count,
        "quarantines": dict(tally.quarantines),
        "stored_days": {day.isoformat(): n for day, n in tally.stored_days.items()},
    }


def _tally(fields: dict[str, Any]) -> Tally:
    return Tally(
        objects=int(fields["objects"]),
        bytes=int(fields["bytes"]),
        newest=_datetime(fields["newest"], "newest"),
        published=_datetime(fields["published"], "published"),
        published_key=fields["published_key"],
        ahead=_datetime(fields.get("ahead"), "ahead"),  # absent from a document written
        ahead_key=fields.get("ahead_key"),  # before future-dated manifests were kept apart
        ahead_count=int(fields.get("ahead_count", 1 if fields.get("ahead") else 0)),
        quarantines=Counter(fields["quarantines"]),
        stored_days=Counter({date.fromisoformat(d): n for d, n in fields["stored_days"].items()}),
    )


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _datetime(text: str | None, field: str) -> datetime | None:
    return None if text is None else _instant(text, field)


def _instant(text: str, field: str) -> datetime:
    """``text`` as a timezone-aware instant; one without an offset is refused, naming ``field``
    (it cannot be compared with the clock's time)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{field}: expected an instant with a UTC offset, got {text!r}")
    return moment


def _day(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def _date(text: str | None) -> date | None:
    return None if text is None else date.fromisoformat(text)
