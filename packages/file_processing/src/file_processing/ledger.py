"""The processed-object ledger: which landing objects were processed, and how it ended.

One small JSON record per landing key under ``_state/file_processing/objects/``
(named by a hash of the key, which it holds in full). A landing object is
identified by key + ETag: a record in a final state for the same ETag means
"done", so reprocessing is a no-op unless forced; a new ETag under the same key
is a new delivery.

Every change is a compare-and-put (:meth:`ObjectStore.put_if`), so of two
workers racing for one object exactly one claims it. A claim names its holder
(``host:pid``) and expires; a claim whose process died on this host, or whose
time ran out, is taken over, so a crash mid-file is completed by the next run.

The content index (``_state/file_processing/content/<sha256>.json``) remembers
the first key validated with each content, which is how a byte-identical file
re-delivered under another name is recognised as a duplicate.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from etl_core.errors import ObjectConflictError, ObjectNotFoundError
from etl_core.runtime import process_alive
from etl_core.storage import ObjectStore
from file_processing.errors import FileProcessingError

__all__ = [
    "FINAL_STATES",
    "STATE_PREFIX",
    "Claim",
    "ContentEntry",
    "Ledger",
    "LedgerConflictError",
    "ObjectRecord",
    "State",
]

logger = logging.getLogger(__name__)

STATE_PREFIX = "_state/file_processing/"
_OBJECTS = STATE_PREFIX + "objects/"
_CONTENT = STATE_PREFIX + "content/"
_MAX_RACES = 8  # compare-and-put retries before giving up on a hot record

State = Literal[
    "processing", "validated", "quarantined", "duplicate", "waiting", "failed", "released"
]
FINAL_STATES: frozenset[str] = frozenset({"validated", "quarantined", "duplicate"})
"""States that mean "done for this ETag"; the others let the object be processed again."""


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
    """This worker's hold on one landing object: the record and the ledger object's ETag."""

    record: ObjectRecord
    version: str


@dataclass(frozen=True)
class ContentEntry:
    """The first landing object validated with some content."""

    sha256: str
    key: str
    etag: str
    dataset: str
    outputs: list[str]


def _content_key(sha256: str) -> str:
    return _CONTENT + sha256 + ".json"


def _encode(entry: ContentEntry) -> bytes:
    return json.dumps(asdict(entry), indent=1).encode()


def holder_id() -> str:
    """This process, as named in claims: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


class Ledger:
    """Claims and outcomes of landing objects, kept in the object store.

    Args:
        store: The store whose ``landing/`` zone the ledger describes.
        run_id: The run recorded in each claim.
        claim_timeout: How long a claim lasts before another worker may take it over.
    """

    def __init__(self, store: ObjectStore, *, run_id: str, claim_timeout: timedelta) -> None:
        self.store = store
        self.run_id = run_id
        self.claim_timeout = claim_timeout
        self.holder = holder_id()

    @staticmethod
    def record_key(key: str) -> str:
        """Where the record of landing key ``key`` lives."""
        return _OBJECTS + hashlib.sha256(key.encode()).hexdigest() + ".json"

    def get(self, key: str) -> ObjectRecord | None:
        """The record of ``key``, or ``None`` if it was never processed."""
        found = self._read(key)
        return found[0] if found else None

    def claim(self, key: str, etag: str, *, force: bool = False) -> Claim | ObjectRecord:
        """Claim ``key`` (at ``etag``) for processing.

        Returns:
            A :class:`Claim`, or the record that stands in the way: the object is
            already done for this ETag (and ``force`` is false), or another live
            worker holds it.

        Raises:
            LedgerConflictError: the record kept changing under this worker.
        """
        for _ in range(_MAX_RACES):
            found = self._read(key)
            if found is not None:
                current, version = found
                if (current.is_done_for(etag) and not force) or self._held_elsewhere(current):
                    return current
                attempts = current.attempts if current.etag == etag else 0
            else:
                version, attempts = None, 0
            now = _now()
            record = ObjectRecord(
                key=key,
                etag=etag,
                state="processing",
                run_id=self.run_id,
                holder=self.holder,
                claimed_at=_stamp(now),
                expires_at=_stamp(now + self.claim_timeout),
                attempts=attempts + 1,
            )
            try:
                new_version = self.store.put_if(
                    self.record_key(key), record.to_json(), etag=version
                )
            except ObjectConflictError:
                continue
            return Claim(record, new_version)
        raise LedgerConflictError(f"{key}: its ledger record kept changing; try again")

    def finish(self, claim: Claim, state: State, **changes: Any) -> ObjectRecord:
        """Record how the claimed object ended and give up the claim.

        Raises:
            LedgerConflictError: another worker took the claim over meanwhile.
        """
        record = replace(claim.record, state=state, finished_at=_stamp(_now()), **changes)
        try:
            self.store.put_if(self.record_key(record.key), record.to_json(), etag=claim.version)
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
        for _ in range(_MAX_RACES):
            found = self._read(key)
            if found is None:
                raise ObjectNotFoundError(f"the ledger has no record of {key}", key=key)
            current, version = found
            if self._held_elsewhere(current):
                raise LedgerConflictError(f"{key} is being processed by {current.holder} now")
            record = replace(current, state="released", finished_at=_stamp(_now()))
            try:
                self.store.put_if(self.record_key(key), record.to_json(), etag=version)
            except ObjectConflictError:
                continue
            return record
        raise LedgerConflictError(f"{key}: its ledger record kept changing; try again")

    # ---------------------------------------------------------------- content

    def content_owner(self, sha256: str) -> ContentEntry | None:
        """The landing object that owns this content, if any."""
        try:
            raw = json.loads(self.store.read_bytes(_content_key(sha256)))
        except ObjectNotFoundError:
            return None
        return ContentEntry(**raw)

    def claim_content(self, entry: ContentEntry) -> ContentEntry | None:
        """Make ``entry.key`` the owner of its content, atomically.

        Returns:
            ``None`` when ``entry.key`` owns the content now (or already did), else
            the other landing object that owns it: this one is its duplicate.
        """
        for _ in range(_MAX_RACES):
            try:
                self.store.put_if(_content_key(entry.sha256), _encode(entry), etag=None)
                return None
            except ObjectConflictError:
                owner = self.content_owner(entry.sha256)
            if owner is not None and owner.key != entry.key:
                return owner
            if owner is not None:
                self.store.write_bytes(_content_key(entry.sha256), _encode(entry))
                return None
        raise LedgerConflictError(f"{entry.key}: the content index kept changing; try again")

    def record_content(self, entry: ContentEntry) -> None:
        """Update the owner's entry (with its outputs, once published)."""
        self.store.write_bytes(_content_key(entry.sha256), _encode(entry))

    def forget_content(self, sha256: str, key: str) -> None:
        """Give up ownership of content ``key`` did not validate (it was quarantined)."""
        owner = self.content_owner(sha256)
        if owner is not None and owner.key == key:
            self.store.delete(_content_key(sha256))

    # ---------------------------------------------------------------- internals

    def _read(self, key: str) -> tuple[ObjectRecord, str] | None:
        """The record and its ETag, read in that order: if the record changes in
        between, the caller's compare-and-put against the older ETag fails."""
        record_key = self.record_key(key)
        try:
            etag = self.store.head(record_key).etag
            data = self.store.read_bytes(record_key)
        except ObjectNotFoundError:
            return None
        try:
            return ObjectRecord.from_json(data), etag
        except (ValueError, TypeError):
            logger.warning("unreadable ledger record %s will be replaced", record_key)
            return ObjectRecord(key, etag="", state="failed", message="unreadable record"), etag

    def _held_elsewhere(self, record: ObjectRecord) -> bool:
        """Whether a live claim of another worker (or another thread's, here) holds ``record``."""
        if record.state != "processing":
            return False
        if datetime.fromisoformat(record.expires_at) <= _now():
            return False
        host, _, pid = record.holder.rpartition(":")
        return not (host == socket.gethostname() and pid.isdigit() and not process_alive(int(pid)))
