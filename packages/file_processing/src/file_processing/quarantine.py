"""Quarantine: the refused original, byte for byte, beside a machine-readable reason.

``quarantine/<dataset or _unknown>/dt=<date>/<file>`` holds the landing object as
it was delivered and ``<file>.quarantine.json`` the record: reason code and
message, failed checks with samples, source key + ETag, run id, timestamps.
Objects that match no contract keep their source folder under ``_unknown``
(``quarantine/_unknown/dt=<day>/<source>/<file>``), so two vendors' files of the
same name never collide.

Releasing a quarantined object (after its contract or key was fixed) stamps the
record with who released it and when, and marks the landing object for
reprocessing in the ledger; the record stays, and a later quarantine of the same
file keeps the earlier episodes in ``history``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from etl_core.errors import ObjectConflictError, ObjectNotFoundError
from etl_core.storage import ObjectInfo, ObjectStore
from file_processing.errors import FileProcessingError
from file_processing.ledger import Ledger, utc_stamp

__all__ = [
    "QUARANTINE_PREFIX",
    "RECORD_SUFFIX",
    "UNKNOWN_DATASET",
    "QuarantineRecord",
    "list_quarantined",
    "quarantine_key",
    "quarantine_object",
    "read_record",
    "release",
]

logger = logging.getLogger(__name__)

QUARANTINE_PREFIX = "quarantine/"
RECORD_SUFFIX = ".quarantine.json"
UNKNOWN_DATASET = "_unknown"
_LANDING = "landing/"
_ORIGINAL_SUFFIX = ".original"
_MAX_NAME_BYTES = 255  # a file name on common file systems


@dataclass
class QuarantineRecord:
    """Why an object was quarantined, and whether it was released since."""

    key: str
    dataset: str
    partition: str
    reason: str
    message: str
    source_key: str
    source_etag: str
    source_size: int
    run_id: str
    quarantined_at: str
    member: str | None = None
    failed_checks: list[dict[str, Any]] = field(default_factory=list)
    released_at: str | None = None
    released_by: str | None = None
    release_note: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def released(self) -> bool:
        """Whether the object was put back in line for reprocessing."""
        return self.released_at is not None

    @property
    def record_key(self) -> str:
        """Where this record is stored."""
        return self.key + RECORD_SUFFIX

    def to_dict(self) -> dict[str, Any]:
        """The record as plain data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> QuarantineRecord:
        """A stored record; unknown fields (from a newer version) are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


def quarantine_key(landing_key: str, dataset: str | None, partition: date) -> str:
    """Where a landing object goes when it is quarantined.

    A file named like a record (``x.quarantine.json``) is stored as
    ``x.quarantine.json.original``, so no delivery can overwrite or forge the
    record of another.
    """
    relative = landing_key.removeprefix(_LANDING)
    name = relative if dataset is None else relative.rsplit("/", 1)[-1]
    if name.endswith(RECORD_SUFFIX):
        name += _ORIGINAL_SUFFIX
    folder, _, base = name.rpartition("/")
    if len((base + RECORD_SUFFIX).encode()) > _MAX_NAME_BYTES:
        # Too long for a file name once the record's suffix is added: keep a readable
        # head and a hash of the whole name (the record keeps the full source key).
        digest = hashlib.sha256(base.encode()).hexdigest()[:16]
        head = base.encode()[: _MAX_NAME_BYTES - len(RECORD_SUFFIX) - 18].decode(errors="ignore")
        name = f"{folder}/{head}~{digest}" if folder else f"{head}~{digest}"
    return f"{QUARANTINE_PREFIX}{dataset or UNKNOWN_DATASET}/dt={partition.isoformat()}/{name}"


def quarantine_object(
    store: ObjectStore,
    source: ObjectInfo,
    *,
    dataset: str | None,
    partition: date,
    reason: str,
    message: str,
    run_id: str,
    local_copy: Path | None = None,
    member: str | None = None,
    failed_checks: list[dict[str, Any]] | None = None,
) -> QuarantineRecord:
    """Put the original of ``source`` in quarantine with its record.

    Args:
        local_copy: The bytes already downloaded (exactly the ETag processed);
            uploaded instead of a server-side copy when given.
    """
    key = quarantine_key(source.key, dataset, partition)
    if local_copy is not None:
        store.upload(local_copy, key)
    else:
        store.copy(source.key, key)
    record = QuarantineRecord(
        key=key,
        dataset=dataset or UNKNOWN_DATASET,
        partition=partition.isoformat(),
        reason=reason,
        message=message,
        source_key=source.key,
        source_etag=source.etag,
        source_size=source.size,
        run_id=run_id,
        quarantined_at=_now(),
        member=member,
        failed_checks=failed_checks or [],
        history=_history_of(store, key),
    )
    _write(store, record)
    return record


def read_record(store: ObjectStore, key: str) -> QuarantineRecord:
    """The record of a quarantined object (``key`` names the object or its record).

    Raises:
        ObjectNotFoundError: no quarantine record at that key.
        FileProcessingError: the record is not valid JSON.
    """
    record_key = key if key.endswith(RECORD_SUFFIX) else key + RECORD_SUFFIX
    data = store.read_bytes(record_key)
    try:
        return QuarantineRecord.from_dict(json.loads(data))
    except (ValueError, TypeError) as exc:
        raise FileProcessingError(f"{record_key}: not a quarantine record ({exc})") from exc


def list_quarantined(
    store: ObjectStore, *, dataset: str | None = None, include_released: bool = False
) -> Iterator[QuarantineRecord]:
    """Every quarantine record (of ``dataset``), oldest partition first."""
    prefix = QUARANTINE_PREFIX + (f"{dataset}/" if dataset else "")
    for info in store.list(prefix):
        if not info.key.endswith(RECORD_SUFFIX):
            continue
        try:
            record = read_record(store, info.key)
        except (ObjectNotFoundError, FileProcessingError) as exc:
            logger.warning("skipping quarantine record %s: %s", info.key, exc)
            continue
        if include_released or not record.released:
            yield record


def release(
    store: ObjectStore, ledger: Ledger, key: str, *, by: str, note: str | None = None
) -> QuarantineRecord:
    """Put a quarantined object back in line: the next scan processes its landing original.

    Raises:
        ObjectNotFoundError: no quarantine record at ``key``.
        FileProcessingError: the record was already released, its landing
            original is gone (nothing could be reprocessed), or the record changed
            while being released (a new quarantine: look again).
    """
    record_key = key if key.endswith(RECORD_SUFFIX) else key + RECORD_SUFFIX
    version = store.head(record_key).etag
    record = read_record(store, record_key)
    if record.released:
        raise FileProcessingError(
            f"{record.key} was already released by {record.released_by} at {record.released_at}"
        )
    if not store.exists(record.source_key):
        raise FileProcessingError(
            f"{record.key}: its landing original {record.source_key} is gone; nothing to reprocess"
        )
    try:
        ledger.release(record.source_key)
    except ObjectNotFoundError:
        logger.info("no ledger record of %s: it is unprocessed already", record.source_key)
    record.released_at, record.released_by, record.release_note = _now(), by, note
    try:
        store.put_if(record_key, _encode(record), etag=version)
    except ObjectConflictError:
        raise FileProcessingError(
            f"{record.key}: the record changed while being released (it was quarantined "
            "again); look at it again"
        ) from None
    return record


def _history_of(store: ObjectStore, key: str) -> list[dict[str, Any]]:
    """The earlier episodes of ``key``: the previous record and its own history."""
    try:
        previous = read_record(store, key)
    except (ObjectNotFoundError, FileProcessingError):
        return []
    episode = previous.to_dict()
    earlier = episode.pop("history")
    episode.pop("failed_checks")
    return [*earlier, episode]


def _encode(record: QuarantineRecord) -> bytes:
    return json.dumps(record.to_dict(), indent=2, ensure_ascii=False, default=str).encode()


def _write(store: ObjectStore, record: QuarantineRecord) -> None:
    store.write_bytes(record.record_key, _encode(record))


def _now() -> str:
    return utc_stamp(datetime.now(UTC))
