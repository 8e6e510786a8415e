"""Quarantine: the refused original, byte for byte, beside a machine-readable reason.

``quarantine/<dataset or _unknown>/dt=<date>/<file>`` holds the landing object as
it was delivered and ``<file>.quarantine.json`` the record
(:class:`etl_core.artifacts.QuarantineRecord`): reason code and message, failed
checks with samples, source key + ETag, run id, timestamps.
Objects that match no contract keep their source folder under ``_unknown``
(``quarantine/_unknown/dt=<day>/<source>/<file>``), so two vendors' files of the
same name never collide.

Releasing a quarantined object (after its contract or key was fixed) stamps the
record with who released it and when, and marks the landing object for
reprocessing in the ledger; the record stays, and a later quarantine of the same
file keeps the earlier episodes in ``history``. The stamp is a compare-and-put
against the version read (:class:`etl_core.storage.Records`): a record quarantined
again meanwhile is not overwritten, the release is refused.

A later delivery of the same landing key (another ETag) that is validated closes
the open record of the earlier one as superseded (:func:`supersede`): ``released_at``
says when, ``released_by`` is ``superseded``, ``superseded_by_etag`` names the
validated ETag and ``release_note`` the run. Nothing is put back in line (the data
is delivered already); the quarantined copy stays for inspection. A superseded
record is closed for ``quarantine list`` (shown with ``--released``) and for the
observability lane's open-quarantine gauge, which counts records without
``released_at``, in this release and the earlier ones.

The same delivery (its ETag) processed again and validated (``process --force`` after
its contract was fixed) closes its own open record the same way (:func:`settle`):
``released_by`` is ``revalidated`` and ``release_note`` names the run; no manual
release is needed. The records to close are those the ledger carries forward for the
landing key (:func:`file_processing.ledger.carried_outputs`: every quarantine of it since
the last validated delivery, whatever failed, waited or was killed between) and the one
at the key a quarantine of it would take now.
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from etl_core import layout
from etl_core.artifacts import REVALIDATED_BY, SUPERSEDED_BY, QuarantineRecord
from etl_core.errors import ArtifactError, ObjectConflictError, ObjectNotFoundError
from etl_core.layout import LANDING, QUARANTINE_SUFFIX, UNKNOWN_DATASET
from etl_core.storage import NO_CHANGE, NoChange, ObjectInfo, ObjectStore, Records
from etl_core.storage.keys import MAX_KEY_BYTES
from file_processing.errors import FileProcessingError
from file_processing.ledger import Ledger, utc_stamp
from file_processing.names import escaped, is_addressable, key_problem, safe_name

__all__ = [
    "QuarantineRecord",
    "list_quarantined",
    "quarantine_key",
    "quarantine_object",
    "read_record",
    "release",
    "settle",
    "supersede",
]

logger = logging.getLogger(__name__)

_ORIGINAL_SUFFIX = ".original"
_MAX_NAME_BYTES = 255  # a file name on common file systems
_MAX_KEY_BYTES = MAX_KEY_BYTES - 64  # S3's key limit, with room for the store's prefix
RELEASED_BY_MAX_LENGTH = 200
"""The longest name a release is recorded by: the database mirror's ``released_by`` holds
no more (a longer one failed there after the store had released the record)."""


def quarantine_key(
    landing_key: str, dataset: str | None, partition: date, *, misnamed: bool = False
) -> str:
    """Where a landing object goes when it is quarantined.

    A file named like a record (``x.quarantine.json``) is stored as
    ``x.quarantine.json.original``, so no delivery can overwrite or forge the
    record of another. A name too long for a file, a key that would pass S3's
    1,024 bytes, and a ``misnamed`` (hostile or unaddressable) key get a safe
    derived name instead: readable characters and a hash of the whole key (the
    record keeps the key as stored).
    """
    relative = layout.strip_zone(landing_key, LANDING)
    prefix = layout.quarantine_prefix(dataset or UNKNOWN_DATASET, partition)
    if misnamed:
        return prefix + safe_name(relative, _MAX_NAME_BYTES - len(QUARANTINE_SUFFIX))
    name = relative if dataset is None else relative.rsplit("/", 1)[-1]
    if name.endswith(QUARANTINE_SUFFIX):
        name += _ORIGINAL_SUFFIX
    folder, _, base = name.rpartition("/")
    if len((base + QUARANTINE_SUFFIX).encode()) > _MAX_NAME_BYTES:
        # Too long for a file name once the record's suffix is added: keep a readable
        # head and a hash of the whole name (the record keeps the full source key).
        digest = hashlib.sha256(base.encode()).hexdigest()[:16]
        size = _MAX_NAME_BYTES - len(QUARANTINE_SUFFIX) - 18
        head = base.encode()[:size].decode(errors="ignore")
        name = f"{folder}/{head}~{digest}" if folder else f"{head}~{digest}"
    if len((prefix + name + QUARANTINE_SUFFIX).encode()) > _MAX_KEY_BYTES:
        return prefix + safe_name(relative, _MAX_NAME_BYTES - len(QUARANTINE_SUFFIX))
    return prefix + name


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
    misnamed: bool = False,
) -> QuarantineRecord:
    """Put the original of ``source`` in quarantine with its record.

    A record that cannot be written (a full or read-only store) takes the copy just made
    with it, unless a record stands at that key all the same (an earlier episode's, or this
    one's stored by a write that reported a failure): no quarantined object is left without
    a record that ``quarantine list`` would show, nor a record without its object.

    Args:
        local_copy: The bytes already downloaded (exactly the ETag processed);
            uploaded instead of a server-side copy when given.
        misnamed: ``source.key`` is hostile or one the store cannot address
            (:mod:`file_processing.names`): the object is quarantined under a safe
            derived name (and copied by its key as stored).
    """
    key = quarantine_key(source.key, dataset, partition, misnamed=misnamed)
    history = tuple(_history_of(store, key))
    if local_copy is not None:
        store.upload(local_copy, key)
    elif is_addressable(source.key):
        store.copy(source.key, key)
    else:
        store.copy_unaddressable(source.key, key, etag=source.etag)
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
        failed_checks=tuple(failed_checks or ()),
        history=history,
    )
    try:
        store.write_bytes(record.record_key, record.to_json())
    except BaseException:
        _remove_unrecorded(store, key, record.record_key)
        raise
    return record


def _remove_unrecorded(store: ObjectStore, key: str, record_key: str) -> None:
    """Delete the copy ``key`` whose record failed, unless a record stands at ``record_key``
    all the same: an earlier episode's (even one that cannot be read), or this one's, stored
    by a write that reported a failure (an S3 response timed out). A copy without a record
    is one nobody would look at; a record without its copy could not be released. The
    original error matters more than a failed clean-up: that is logged."""
    try:
        if not store.exists(record_key):
            store.delete(key)
    except Exception as exc:
        logger.error("could not remove %s after its record failed: %s", key, exc)


def read_record(store: ObjectStore, key: str) -> QuarantineRecord:
    """The record of a quarantined object (``key`` names the object or its record).

    Raises:
        ObjectNotFoundError: no quarantine record at that key.
        FileProcessingError: the record is malformed; the message names the field.
    """
    record_key = layout.quarantine_record_key(key)
    return _decode(store.read_bytes(record_key), record_key)


def list_quarantined(
    store: ObjectStore, *, dataset: str | None = None, include_released: bool = False
) -> Iterator[QuarantineRecord]:
    """Every quarantine record (of ``dataset``), oldest partition first."""
    for info in store.list(layout.quarantine_prefix(dataset or None)):
        if not info.key.endswith(QUARANTINE_SUFFIX):
            continue
        try:
            record = read_record(store, info.key)
        except (ObjectNotFoundError, FileProcessingError) as exc:
            logger.warning("skipping quarantine record %s: %s", info.key, exc)
            continue
        if include_released or not record.released:
            yield record


def _check_releaser(by: str) -> None:
    """Refuse ``by`` before anything is written when it is no one's name the record and
    its database mirror can keep, or reads as one of the lane's own.

    Raises:
        FileProcessingError: ``by`` is blank, too long, or reads as ``superseded`` or
            ``revalidated``.
    """
    read = _as_read(by)
    if not read:
        raise FileProcessingError(f"--by {by!r} is blank: name who releases it (recorded)")
    if len(by) > RELEASED_BY_MAX_LENGTH:
        raise FileProcessingError(
            f"--by {by[:40]!r}... has {len(by)} characters, more than the "
            f"{RELEASED_BY_MAX_LENGTH} a release is recorded with: name who releases it"
        )
    if read in (SUPERSEDED_BY, REVALIDATED_BY):
        raise FileProcessingError(
            f"--by {by!r} is the name the lane closes records with (a validated delivery "
            "of the key): a release by it would read as one; name who releases it"
        )


def _as_read(name: str) -> str:
    """``name`` as it reads: compatibility forms made plain (fullwidth letters), invisible
    format characters dropped (zero-width space, soft hyphen), spaces around stripped and
    case folded; ``"Superseded\u200b "`` reads ``superseded``."""
    plain = unicodedata.normalize("NFKC", name)
    return "".join(c for c in plain if unicodedata.category(c) != "Cf").strip().casefold()


def release(
    store: ObjectStore, ledger: Ledger, key: str, *, by: str, note: str | None = None
) -> QuarantineRecord:
    """Put a quarantined object back in line: the next scan processes its landing original.

    Raises:
        ObjectNotFoundError: no quarantine record at ``key``.
        FileProcessingError: ``by`` reads as a name the lane closes records with
            (``superseded``, ``revalidated``, in any case, with spaces around, in
            fullwidth letters or with invisible characters), is blank or is longer than
            :data:`RELEASED_BY_MAX_LENGTH`, the record was already released, its landing
            original is gone (nothing could be reprocessed) or has a hostile key, or the
            record changed while being released (a new quarantine: look again).
    """
    _check_releaser(by)
    record_key = layout.quarantine_record_key(key)
    found = Records(store, decode=_decode, encode=QuarantineRecord.to_json).read(record_key)
    if found is None:
        raise ObjectNotFoundError(f"no quarantine record {record_key}", key=record_key)
    record = found.value
    if record.superseded:
        raise FileProcessingError(
            f"{record.key} was closed as superseded at {record.released_at}: a later delivery "
            f"of {escaped(record.source_key)} (ETag {record.superseded_by_etag}) was validated; "
            "nothing to release (the refused original stays here for inspection)"
        )
    if record.revalidated:
        raise FileProcessingError(
            f"{record.key} was closed at {record.released_at}: {record.release_note}; "
            "nothing to release (its delivery was validated again, the refused original "
            "stays here for inspection)"
        )
    if record.released:
        raise FileProcessingError(
            f"{record.key} was already released by {record.released_by} at {record.released_at}"
        )
    if key_problem(record.source_key) is not None:
        raise FileProcessingError(
            f"{record.key}: its landing key {escaped(record.source_key)!r} is refused as a name "
            f"({record.reason}), whatever the contracts say; have it delivered under a proper name"
        )
    if not store.exists(record.source_key):
        raise FileProcessingError(
            f"{record.key}: its landing original {record.source_key} is gone; nothing to reprocess"
        )
    try:
        ledger.release(record.source_key)
    except ObjectNotFoundError:
        logger.info("no ledger record of %s: it is unprocessed already", record.source_key)
    record = replace(record, released_at=_now(), released_by=by, release_note=note)
    try:
        Records(store, decode=_decode, encode=QuarantineRecord.to_json).put(
            record_key, record, expect=found
        )
    except ObjectConflictError:
        raise FileProcessingError(
            f"{record.key}: the record changed while being released (it was quarantined "
            "again); look at it again"
        ) from None
    return record


def supersede(
    store: ObjectStore, key: str, delivery: ObjectInfo, *, run_id: str, redo: bool = False
) -> QuarantineRecord | None:
    """Close the open quarantine record at ``key`` of an earlier delivery of
    ``delivery.key``, now that ``delivery`` (another ETag) was validated by ``run_id``.

    The record is changed by compare-and-put against the version read, retried on a lost
    race (another scan closing it, a new quarantine meanwhile), so concurrent writers
    never overwrite each other. A record of the same ETag, of another landing key, or
    already closed is left as it is (:func:`settle` also closes one of the same ETag).

    Args:
        redo: This is a redo of an attempt on ``delivery`` that did not finish (killed
            after closing the record, before the ledger and the database mirror recorded
            it): a record ``delivery`` closed already is returned again, so the redo
            reports (and mirrors) the close the killed attempt never did.

    Returns:
        The record as closed, or ``None`` when there was nothing to close.

    Raises:
        FileProcessingError: the record is malformed (the message names the field).
        RecordConflictError: the record kept changing under every attempt.
    """
    unfinished = delivery.etag if redo else None
    return _close(store, key, delivery, run_id=run_id, unfinished=unfinished, same_etag=False)


def settle(
    store: ObjectStore,
    key: str,
    delivery: ObjectInfo,
    *,
    run_id: str,
    redo: bool = False,
    unfinished: str | None = None,
) -> QuarantineRecord | None:
    """Close the open quarantine record at ``key`` of ``delivery.key`` now that ``delivery``
    was validated by ``run_id``: one of another ETag as superseded (:func:`supersede`),
    one of this same ETag as revalidated (``released_by`` :data:`REVALIDATED_BY`, the
    run in ``release_note``): the delivery it refused was processed again
    (``process --force`` after its contract was fixed) and passed, so nobody has to
    release it by hand. Same compare-and-put, same ``redo`` and errors as
    :func:`supersede`.

    Args:
        unfinished: The ETag of the last attempt on ``delivery.key`` when it did not
            finish (killed after closing records, before the ledger and the database
            mirror recorded it), also when the landing object was replaced since: a
            record that attempt closed is returned again, so this delivery reports (and
            mirrors) the close nobody recorded. ``redo`` is ``unfinished`` =
            ``delivery.etag``.
    """
    if redo:
        unfinished = delivery.etag
    return _close(store, key, delivery, run_id=run_id, unfinished=unfinished, same_etag=True)


def _close(
    store: ObjectStore,
    key: str,
    delivery: ObjectInfo,
    *,
    run_id: str,
    unfinished: str | None,
    same_etag: bool,
) -> QuarantineRecord | None:
    """Close the record at ``key`` for the validated ``delivery`` (of the same ETag too
    when ``same_etag``); see :func:`supersede` and :func:`settle`."""
    record_key = layout.quarantine_record_key(key)
    closed_at = _now()

    def close(current: QuarantineRecord | None) -> QuarantineRecord | NoChange:
        if current is None or current.released or current.source_key != delivery.key:
            return NO_CHANGE
        if current.source_etag == delivery.etag:
            if not same_etag:
                return NO_CHANGE
            return replace(
                current,
                released_at=closed_at,
                released_by=REVALIDATED_BY,
                release_note=(
                    f"revalidated: {delivery.key} (ETag {delivery.etag}, this same delivery) "
                    f"was processed again and validated by run {run_id}"
                ),
            )
        return replace(
            current,
            released_at=closed_at,
            released_by=SUPERSEDED_BY,
            release_note=(
                f"superseded: {delivery.key} was delivered again (ETag {delivery.etag}) "
                f"and validated by run {run_id}"
            ),
            superseded_by_etag=delivery.etag,
        )

    update = Records(store, decode=_decode, encode=QuarantineRecord.to_json).update(
        record_key, close
    )
    if not update.changed or update.after is None:
        before = update.before.value if update.before is not None else None
        if (
            unfinished is not None
            and before is not None
            and _closed_by(before, delivery.key, unfinished, same_etag=same_etag)
        ):
            return before  # closed by an attempt that was killed: never reported
        return None
    record = update.after.value
    logger.info(
        "quarantine record %s of %s (ETag %s) closed as %s: ETag %s was validated",
        record.record_key, escaped(record.source_key), record.source_etag, record.released_by,
        delivery.etag,
    )  # fmt: skip
    return record


def _closed_by(record: QuarantineRecord, key: str, etag: str, *, same_etag: bool) -> bool:
    """Whether ``record`` was closed because the delivery ``etag`` of ``key`` was validated."""
    if record.source_key != key:
        return False
    if record.superseded_by_etag == etag:
        return True
    return same_etag and record.revalidated and record.source_etag == etag


def _history_of(store: ObjectStore, key: str) -> list[dict[str, Any]]:
    """The earlier episodes of ``key``: the previous record and its own history."""
    try:
        previous = read_record(store, key)
    except (ObjectNotFoundError, FileProcessingError):
        return []
    episode = previous.to_dict()
    earlier = episode.pop("history")
    del episode["failed_checks"], episode["schema_version"]
    return [*earlier, episode]


def _decode(data: bytes, key: str) -> QuarantineRecord:
    try:
        return QuarantineRecord.from_json(data, key=key)
    except ArtifactError as exc:
        raise FileProcessingError(str(exc)) from exc


def _now() -> str:
    return utc_stamp(datetime.now(UTC))
