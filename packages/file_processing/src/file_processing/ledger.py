"""The processed-object ledger: which landing objects were processed, and how it ended.

One small JSON record per landing key under ``_state/file_processing/objects/``
(named by a hash of the key, which it holds in full). A landing object is
identified by key + ETag: a record in a final state for the same ETag means
"done", so reprocessing is a no-op unless forced; a new ETag under the same key
is a new delivery.

Every change is a compare-and-put (:class:`etl_core.storage.Records`: a versioned
read, the change, a conditional put, bounded retries with jittered backoff), so of
two workers racing for one object exactly one claims it. A claim names its holder
(one process run, :func:`etl_core.storage.this_holder`) and expires; a claim whose
time ran out, or whose holder is known gone (same host, boot and pid namespace, no
such process), is taken over, so a crash mid-file is completed by the next run.

Each claim carries forward, in ``earlier_outputs``, what earlier deliveries (and
attempts) of the key left for a validated delivery to settle (:func:`carried_outputs`):
the validated outputs of the last validated delivery, which a new one replaces in
its partitions (:func:`file_processing.outputs.remove_stale`), and the
quarantined copies whose records may still be open. It is written by the claim's own
compare-and-put, so it crosses a failed attempt, a killed one, a wait for a sidecar or
a duplicate without an extra read; a quarantine is named in the claim
(:meth:`Ledger.note_quarantine`) before its copy is written, so a process killed after
writing it leaves it known too.

The content index (``_state/file_processing/content/<sha256>.json``) remembers
the first key validated with each content, which is how a byte-identical file
re-delivered under another name is recognised as a duplicate.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

from etl_core.errors import ObjectConflictError, ObjectNotFoundError, RecordConflictError
from etl_core.layout import (
    QUARANTINE,
    QUARANTINE_SUFFIX,
    VALIDATED,
    state_key,
    state_prefix,
    zone_of,
)
from etl_core.storage import (
    NO_CHANGE,
    Change,
    Holder,
    NoChange,
    ObjectStore,
    Records,
    Update,
    Versioned,
    this_holder,
)
from file_processing.errors import FileProcessingError

__all__ = [
    "FINAL_STATES",
    "MAX_CARRIED_QUARANTINES",
    "STATE_PREFIX",
    "Claim",
    "ContentEntry",
    "Ledger",
    "LedgerConflictError",
    "ObjectRecord",
    "State",
    "carried_outputs",
    "utc_stamp",
]

logger = logging.getLogger(__name__)

_LANE = "file_processing"
STATE_PREFIX = state_prefix(_LANE)
_OBJECTS_PREFIX = state_prefix(_LANE, "objects")
R = TypeVar("R")

State = Literal[
    "processing", "validated", "quarantined", "duplicate", "waiting", "failed", "released"
]
FINAL_STATES: frozenset[str] = frozenset({"validated", "quarantined", "duplicate"})
"""States that mean "done for this ETag"; the others let the object be processed again."""
MAX_CARRIED_QUARANTINES = 100
"""Quarantined copies of one landing key a claim carries forward at most (the newest): a
key quarantined every day, on arrival-dated partitions, for months, keeps its record
small; an older one left open is logged when it is dropped."""


class LedgerConflictError(FileProcessingError):
    """Another worker changed a ledger record this worker expected to own."""


@dataclass
class ObjectRecord:
    """What the ledger knows about one landing key."""

    key: str
    etag: str
    state: State
    run_id: str = ""
    holder: str = ""
    holder_process: dict[str, Any] = field(default_factory=dict)
    claimed_at: str = ""
    expires_at: str = ""
    finished_at: str = ""
    attempts: int = 0
    dataset: str | None = None
    partition: str | None = None
    outputs: list[str] = field(default_factory=list)
    reason: str | None = None
    message: str | None = None
    content_sha256: str | None = None
    duplicate_of: str | None = None
    earlier_outputs: list[str] = field(default_factory=list)
    """What earlier deliveries and attempts of this key left for a validated delivery to
    settle (:func:`carried_outputs`): validated outputs it replaces, quarantined copies
    whose records it closes. Carried by each claim; once a delivery is validated, only the
    quarantines it could not close and the stale outputs it could not remove (a store
    error), so the next one tries again."""

    def is_done_for(self, etag: str) -> bool:
        """Whether this record says the object with ``etag`` needs no more work."""
        return self.etag == etag and self.state in FINAL_STATES

    def to_json(self) -> bytes:
        """The record as stored."""
        return json.dumps(asdict(self), indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ObjectRecord:
        """A stored record; unknown fields (from a newer version) are ignored."""
        raw = json.loads(data)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


@dataclass(frozen=True)
class Claim:
    """This worker's hold on one landing object.

    Attributes:
        record: The claim as stored.
        version: The ETag of the stored claim (the compare-and-put expectation).
        previous: The record this claim replaced (an earlier delivery under the
            same key, a failed attempt), if any.
    """

    record: ObjectRecord
    version: str
    previous: ObjectRecord | None = None


@dataclass(frozen=True)
class ContentEntry:
    """The landing object that owns some content of a dataset (for duplicate drops)."""

    sha256: str
    key: str
    etag: str
    dataset: str
    outputs: list[str]


def carried_outputs(previous: ObjectRecord | None) -> list[str]:
    """What a claim replacing ``previous`` carries forward for a validated delivery to
    settle: the validated outputs of the last validated delivery of the key (removed
    when the new one lacks them in a partition it publishes to) and the quarantined
    copies of it since, whose records
    may still be open (closed as superseded, or revalidated).

    A validated record settled everything before it: its own outputs, and the
    quarantines it could not close and stale outputs it could not remove (a store
    error), to try again. A duplicate's
    outputs are the original's, another key's: never carried, also once its record was
    released (``quarantine release`` of an older quarantine of the key marks whatever
    record the key has released, a duplicate's too, keeping its ``duplicate_of``). Every
    other state (a quarantine, a failed, killed or waiting attempt, a release) keeps what
    it carried and adds what it left. At most :data:`MAX_CARRIED_QUARANTINES` quarantined
    copies, the newest."""
    if previous is None:
        return []
    left = list(previous.earlier_outputs)  # a validated record's: what it could not close
    if previous.state != "duplicate" and not previous.duplicate_of:
        left += previous.outputs
    keys = [
        key
        for key in dict.fromkeys(left)
        if zone_of(key) == VALIDATED
        or (zone_of(key) == QUARANTINE and not key.endswith(QUARANTINE_SUFFIX))
    ]
    quarantined = [key for key in keys if zone_of(key) == QUARANTINE]
    if len(quarantined) <= MAX_CARRIED_QUARANTINES:
        return keys
    dropped = set(quarantined[:-MAX_CARRIED_QUARANTINES])
    logger.warning(
        "%s: %d older quarantine(s) of this key no longer carried forward (at most %d); "
        "a later validated delivery will not close them: release them by hand if open",
        previous.key, len(dropped), MAX_CARRIED_QUARANTINES,
    )  # fmt: skip
    return [key for key in keys if key not in dropped]


def _content_key(dataset: str, sha256: str) -> str:
    return state_key(_LANE, "content", dataset, f"{sha256}.json")


def _encode(entry: ContentEntry) -> bytes:
    return json.dumps(asdict(entry), indent=1).encode()


def _decode_content(data: bytes, key: str) -> ContentEntry:
    try:
        return ContentEntry(**json.loads(data))
    except (ValueError, TypeError):
        logger.warning("unreadable content entry %s will be replaced", key)
        return ContentEntry("", "", "", "", [])


def _decode_record(data: bytes, key: str) -> ObjectRecord:
    try:
        return ObjectRecord.from_json(data)
    except (ValueError, TypeError):
        logger.warning("unreadable ledger record %s will be replaced", key)
        return ObjectRecord(key, etag="", state="failed", message="unreadable record")


def _now() -> datetime:
    return datetime.now(UTC)


def utc_stamp(moment: datetime) -> str:
    """A timestamp as records store it (ISO 8601, seconds)."""
    return moment.isoformat(timespec="seconds")


class Ledger:
    """Claims and outcomes of landing objects, kept in the object store.

    Args:
        store: The store whose ``landing/`` zone the ledger describes.
        run_id: The run recorded in each claim.
        claim_timeout: How long a claim lasts before another worker may take it over.
        holder: Who claims (default this process run, :func:`etl_core.storage.this_holder`).
    """

    def __init__(
        self,
        store: ObjectStore,
        *,
        run_id: str,
        claim_timeout: timedelta,
        holder: Holder | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.claim_timeout = claim_timeout
        self.holder_process = holder or this_holder()
        self.holder = self.holder_process.id
        self._records = Records(store, decode=_decode_record, encode=ObjectRecord.to_json)
        self._content = Records(store, decode=_decode_content, encode=_encode)

    @staticmethod
    def record_key(key: str) -> str:
        """Where the record of landing key ``key`` lives."""
        return state_key(_LANE, "objects", hashlib.sha256(key.encode()).hexdigest() + ".json")

    def get(self, key: str) -> ObjectRecord | None:
        """The record of ``key``, or ``None`` if it was never processed."""
        found = self.read(key)
        return found.value if found is not None else None

    def read(self, key: str) -> Versioned[ObjectRecord] | None:
        """The record of ``key`` with its stored version, or ``None`` if it was never
        processed."""
        return self._records.read(self.record_key(key))

    def versions(self) -> dict[str, str]:
        """The stored version (ETag) of every record, by :meth:`record_key`: one listing of
        the ledger, whose versions tell which records changed since they were read."""
        return {info.key: info.etag for info in self.store.list(_OBJECTS_PREFIX)}

    def claim(self, key: str, etag: str, *, force: bool = False) -> Claim | ObjectRecord:
        """Claim ``key`` (at ``etag``) for processing.

        Returns:
            A :class:`Claim`, or the record that stands in the way: the object is
            already done for this ETag (and ``force`` is false), or another live
            worker holds it.

        Raises:
            LedgerConflictError: the record kept changing under this worker.
        """

        def take(current: ObjectRecord | None) -> ObjectRecord | NoChange:
            if current is not None and (
                (current.is_done_for(etag) and not force) or self._held_elsewhere(current)
            ):
                return NO_CHANGE
            attempts = current.attempts if current is not None and current.etag == etag else 0
            now = _now()
            return ObjectRecord(
                key=key,
                etag=etag,
                state="processing",
                run_id=self.run_id,
                holder=self.holder,
                holder_process=self.holder_process.to_dict(),
                claimed_at=utc_stamp(now),
                expires_at=utc_stamp(now + self.claim_timeout),
                attempts=attempts + 1,
                earlier_outputs=carried_outputs(current),
            )

        update = self._update(self._records, key, self.record_key(key), take, "its ledger record")
        before = update.before.value if update.before is not None else None
        if not update.changed:
            assert before is not None  # only an existing record stands in the way
            return before
        assert update.after is not None
        return Claim(update.after.value, update.after.etag, before)

    def renew(self, claim: Claim) -> Claim:
        """Extend ``claim`` by ``claim_timeout`` from now; call it between long steps.

        Raises:
            LedgerConflictError: another worker took the claim over (its time ran
                out): this worker must stop without publishing.
        """
        record = replace(claim.record, expires_at=utc_stamp(_now() + self.claim_timeout))
        try:
            version = self._put(claim, record)
        except ObjectConflictError:
            raise LedgerConflictError(
                f"{record.key}: the claim was taken over by another worker (raise claim_timeout "
                "if processing takes this long); this worker stops without publishing"
            ) from None
        return replace(claim, record=record, version=version)

    def note_quarantine(self, claim: Claim, key: str) -> Claim:
        """Name the quarantine copy ``key`` in ``claim`` (renewed too) before it is written:
        a process killed after writing it leaves it named in the ledger, so the next
        claim carries it forward and a validated delivery closes its record.

        Raises:
            LedgerConflictError: another worker took the claim over: this worker must not
                write the quarantine.
        """
        carried = claim.record.earlier_outputs
        record = replace(
            claim.record,
            expires_at=utc_stamp(_now() + self.claim_timeout),
            earlier_outputs=carried if key in carried else [*carried, key],
        )
        try:
            version = self._put(claim, record)
        except ObjectConflictError:
            raise LedgerConflictError(
                f"{record.key}: the claim was taken over by another worker before its "
                "quarantine was written (raise claim_timeout if processing takes this long)"
            ) from None
        return replace(claim, record=record, version=version)

    def finish(
        self,
        claim: Claim,
        state: State,
        *,
        before_write: Callable[[ObjectRecord], None] | None = None,
        **changes: Any,
    ) -> ObjectRecord:
        """Record how the claimed object ended and give up the claim.

        ``before_write`` is given the finished record before it is written: whatever it
        records elsewhere (the database mirror) is in place before the object counts as
        done, so a process killed in between leaves the object to be redone, never done
        here and missing there.

        Raises:
            LedgerConflictError: another worker took the claim over meanwhile.
        """
        record = replace(claim.record, state=state, finished_at=utc_stamp(_now()), **changes)
        if before_write is not None:
            before_write(record)
        try:
            self._put(claim, record)
        except ObjectConflictError:
            raise LedgerConflictError(
                f"{record.key}: the claim was taken over by another worker before this one "
                "finished (raise claim_timeout if processing takes this long)"
            ) from None
        return record

    def release(self, key: str) -> ObjectRecord:
        """Mark ``key`` released, so the next scan processes it again.

        Raises:
            ObjectNotFoundError: the ledger has no record of ``key``.
            LedgerConflictError: a worker is processing it right now.
        """

        def released(current: ObjectRecord | None) -> ObjectRecord:
            if current is None:
                raise ObjectNotFoundError(f"the ledger has no record of {key}", key=key)
            if self._held_elsewhere(current):
                raise LedgerConflictError(f"{key} is being processed by {current.holder} now")
            return replace(current, state="released", finished_at=utc_stamp(_now()))

        record_key = self.record_key(key)
        update = self._update(self._records, key, record_key, released, "its ledger record")
        assert update.after is not None
        return update.after.value

    # ---------------------------------------------------------------- content

    def content_owner(self, dataset: str, sha256: str) -> ContentEntry | None:
        """The landing object that owns this content of ``dataset``, if any."""
        found = self._content.read(_content_key(dataset, sha256))
        return found.value if found is not None else None

    def claim_content(self, entry: ContentEntry) -> ContentEntry | None:
        """Make ``entry.key`` the owner of its content, unless a live owner already is.

        The owner stays while its object is validated (or still being processed);
        an owner whose object was quarantined, failed or replaced is taken over.

        Returns:
            ``None`` when ``entry.key`` owns the content now, else the owner: the
            object is a byte-identical duplicate of it.
        """

        def own(current: ContentEntry | None) -> ContentEntry | NoChange:
            if current is not None and current.key != entry.key and self._owns(current):
                return NO_CHANGE
            return entry

        key = _content_key(entry.dataset, entry.sha256)
        update = self._update(self._content, entry.key, key, own, "the content index")
        if update.changed or update.before is None:
            return None
        return update.before.value

    def record_content(self, entry: ContentEntry) -> None:
        """Update the owner's entry (with its outputs, once published), if it still owns it."""

        def outputs(current: ContentEntry | None) -> ContentEntry | NoChange:
            if current is not None and current.key != entry.key:
                logger.warning("%s no longer owns its content; outputs not recorded", entry.key)
                return NO_CHANGE
            return entry

        key = _content_key(entry.dataset, entry.sha256)
        self._update(self._content, entry.key, key, outputs, "the content index")

    def forget_content(self, dataset: str, sha256: str, key: str) -> None:
        """Give up ownership of content ``key`` did not validate."""
        owner = self.content_owner(dataset, sha256)
        if owner is not None and owner.key == key:
            self.store.delete(_content_key(dataset, sha256))

    def _owns(self, owner: ContentEntry) -> bool:
        """Whether ``owner``'s object still stands behind its content."""
        record = self.get(owner.key)
        if record is None or record.etag != owner.etag:
            return False
        return record.state == "validated" or self._held_elsewhere(record)

    # ---------------------------------------------------------------- internals

    @staticmethod
    def _update(
        records: Records[R], key: str, record_key: str, fn: Change[R], what: str
    ) -> Update[R]:
        """``records.update`` of ``record_key``, its exhaustion said as a ledger conflict."""
        try:
            return records.update(record_key, fn)
        except RecordConflictError:
            raise LedgerConflictError(f"{key}: {what} kept changing; try again") from None

    def _put(self, claim: Claim, record: ObjectRecord) -> str:
        """Write ``record`` over the claimed version only (a compare-and-put)."""
        key = self.record_key(record.key)
        expected = Versioned(key, claim.record, claim.version)
        return self._records.put(key, record, expect=expected).etag

    def _held_elsewhere(self, record: ObjectRecord) -> bool:
        """Whether a live claim (of another worker, or another thread here) holds ``record``.

        Liveness is the claim's expiry; the one shortcut is a holder known gone
        (:meth:`etl_core.storage.Holder.is_gone`: same host, boot and pid namespace).
        """
        if record.state != "processing":
            return False
        if datetime.fromisoformat(record.expires_at) <= _now():
            return False
        return not Holder.from_dict(record.holder_process or record.holder).is_gone()
