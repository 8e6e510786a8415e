"""Small documents changed only by compare-and-put: claims, ledgers, indexes, leases.

A *record* is a small object that several workers (threads, processes, hosts)
read and change. :class:`Records` gives the one safe way to do that on any
:class:`~etl_core.storage.ObjectStore`: read the record together with the ETag
of the very version read (:meth:`ObjectStore.read_versioned`), compute the new
value, and write it with :meth:`ObjectStore.put_if` against that ETag. When
another writer got there first the put fails, and :meth:`Records.update` reads
again and recomputes, a bounded number of times with jittered backoff, so of
two concurrent updates neither is lost.

``fn`` (the change) gets the current value, or ``None`` when the record does not
exist, and returns the new value, or :data:`NO_CHANGE` to leave the record as it
is. It may raise to abort the update; nothing is written then. ``fn`` may run
several times (once per attempt), so it must not have side effects beyond
computing its result.

Values are encoded and decoded by the functions a :class:`Records` is created
with; a decoder that cannot read a stored document decides what that means
(raise, or return a value standing for "unreadable", which ``fn`` then replaces).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from etl_core.errors import ObjectConflictError, ObjectNotFoundError, RecordConflictError
from etl_core.retry import RetryPolicy

from .base import ObjectStore

__all__ = [
    "NO_CHANGE",
    "UPDATE_RETRY",
    "Change",
    "NoChange",
    "Records",
    "Update",
    "Versioned",
]

T = TypeVar("T")

UPDATE_RETRY = RetryPolicy(attempts=12, initial_delay=0.02, max_delay=0.5, multiplier=2.0)
"""Compare-and-put attempts of one update, and the full-jitter waits between them."""


class NoChange(enum.Enum):
    """The type of :data:`NO_CHANGE`."""

    NO_CHANGE = "no change"


NO_CHANGE: Literal[NoChange.NO_CHANGE] = NoChange.NO_CHANGE
"""What an update function returns to leave the record as it is (nothing is written)."""

Change = Callable[[T | None], T | NoChange]
"""An update function: the current value (``None``: absent) to the new one, or :data:`NO_CHANGE`."""


@dataclass(frozen=True)
class Versioned(Generic[T]):
    """A record's value and the ETag of the stored version it was read from (or written as).

    Attributes:
        key: Where the record is stored.
        value: The decoded document.
        etag: The stored version's ETag: the expectation of the next compare-and-put.
    """

    key: str
    value: T
    etag: str


@dataclass(frozen=True)
class Update(Generic[T]):
    """What :meth:`Records.update` found and left.

    Attributes:
        before: The version the change was computed from (``None``: no record).
        after: The version stored now: the one written, or ``before`` when the
            change function returned :data:`NO_CHANGE`.
        changed: Whether a new version was written.
    """

    before: Versioned[T] | None
    after: Versioned[T] | None
    changed: bool


class Records(Generic[T]):
    """Read and change small documents of one kind in a store, by compare-and-put only.

    Args:
        store: Where the records live.
        decode: Bytes as stored (and the key, for messages) to a value.
        encode: A value to the bytes to store.
        retry: Attempts and waits of :meth:`update` (default :data:`UPDATE_RETRY`);
            only lost compare-and-puts are retried, store errors are the store's.
    """

    def __init__(
        self,
        store: ObjectStore,
        *,
        decode: Callable[[bytes, str], T],
        encode: Callable[[T], bytes],
        retry: RetryPolicy | None = None,
    ) -> None:
        self.store = store
        self._decode = decode
        self._encode = encode
        self._retry = retry or UPDATE_RETRY

    def read(self, key: str) -> Versioned[T] | None:
        """The record at ``key`` with its version, or ``None`` when there is none."""
        try:
            found = self.store.read_versioned(key)
        except ObjectNotFoundError:
            return None
        return Versioned(key, self._decode(found.data, key), found.etag)

    def put(self, key: str, value: T, *, expect: Versioned[T] | None) -> Versioned[T]:
        """Write ``value`` only if the record is still ``expect`` (``None``: only if absent).

        Raises:
            ObjectConflictError: the record is not (or no longer) ``expect``.
        """
        etag = self.store.put_if(key, self._encode(value), etag=expect.etag if expect else None)
        return Versioned(key, value, etag)

    def update(self, key: str, fn: Change[T]) -> Update[T]:
        """Change the record at ``key`` with ``fn`` until a compare-and-put of it succeeds.

        Raises:
            RecordConflictError: every attempt lost its compare-and-put to another writer.
            Exception: whatever ``fn`` raised to abort (nothing is written).
        """
        policy = self._retry
        for attempt in range(1, policy.attempts + 1):
            before = self.read(key)
            value = fn(before.value if before is not None else None)
            if value is NO_CHANGE:
                return Update(before, before, changed=False)
            try:
                after = self.put(key, value, expect=before)
            except ObjectConflictError:
                if attempt < policy.attempts:
                    policy.sleep(policy.backoff(attempt))
                continue
            return Update(before, after, changed=True)
        raise RecordConflictError(
            f"{self.store.location_for(key)} kept changing: {policy.attempts} compare-and-puts "
            "in a row lost to other writers; try again",
            key=key,
            url=self.store.url,
            attempts=policy.attempts,
        )
