"""The object-store interface every backend implements, and what it returns.

:class:`ObjectStore` fixes one set of semantics for S3 and the local directory
backend: relative ``/``-separated keys, listings sorted by key, byte ranges with
an exclusive end, writes that become visible only when complete, idempotent
deletes. Backends implement the abstract methods; the conveniences
(``exists``, ``read_bytes``, ``write_bytes``, ``move``) are built on them.
"""

from __future__ import annotations

import abc
import io
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO

from etl_core.errors import ObjectNotFoundError, RetryableError, StorageError
from etl_core.resources import Closeable
from etl_core.storage.url import shown_location, store_identity

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = [
    "DEFAULT_PART_SIZE",
    "MAX_PART_SIZE",
    "MAX_PRESIGN_SECONDS",
    "MIN_PART_SIZE",
    "ObjectInfo",
    "ObjectStore",
    "ObjectWriter",
    "TransientStorageError",
    "VersionedObject",
    "check_expires",
    "check_part_size",
    "check_range",
]

logger = logging.getLogger(__name__)

_DOWNLOAD_CHUNK = 8 * 1024 * 1024

MIB = 1024 * 1024
DEFAULT_PART_SIZE = 64 * MIB
"""Default multipart part size; objects smaller than one part go in one PUT."""
MIN_PART_SIZE = 5 * MIB
"""S3's minimum size of every part but the last."""
MAX_PART_SIZE = 5 * 1024 * MIB
"""S3's maximum part (and single PUT) size."""
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
"""S3 SigV4's longest presigned URL lifetime."""


class TransientStorageError(StorageError, RetryableError):
    """A storage failure worth another attempt: throttling, a 5xx, a dropped connection.

    It is both a :class:`~etl_core.errors.StorageError` (so storage callers
    catch it) and a :class:`~etl_core.errors.RetryableError` (so
    :mod:`etl_core.retry` retries it, honouring ``retry_after``).
    """

    def __init__(
        self,
        message: str,
        *,
        key: str | None = None,
        url: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, key=key, url=url)
        self.retry_after = retry_after


@dataclass(frozen=True)
class ObjectInfo:
    """What a listing or ``head`` says about one object.

    ``etag`` is S3's ETag without quotes; locally it is the MD5 hex digest of
    the content, which equals S3's ETag for objects written in a single PUT.
    ``last_modified`` is timezone-aware (UTC).
    """

    key: str
    size: int
    etag: str
    last_modified: datetime


@dataclass(frozen=True)
class VersionedObject:
    """A small object's whole content together with the ETag of that same version.

    What :meth:`ObjectStore.read_versioned` returns: a compare-and-put against
    ``etag`` succeeds only while the stored object is still exactly ``data``,
    which is what a read-change-write needs (a ``head`` followed by a read could
    pair the ETag of one version with the content of the next).
    """

    key: str
    data: bytes
    etag: str


class ObjectWriter(io.BufferedIOBase):
    """A writable binary stream whose object appears only when it is closed cleanly.

    Leaving a ``with`` block normally (or calling :meth:`close`) publishes the
    object; leaving it by an exception, calling :meth:`abort`, or dropping an
    unclosed writer publishes nothing and cleans up what was staged.
    """

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key
        self._written = 0
        self._finished = False

    # -- what a backend implements

    @abc.abstractmethod
    def _stage(self, data: memoryview) -> None:
        """Take ``data`` (already copied if the backend keeps it)."""

    @abc.abstractmethod
    def _publish(self) -> None:
        """Make the staged bytes visible under ``key`` in one step."""

    @abc.abstractmethod
    def _discard(self) -> None:
        """Remove everything staged; must not raise for an already clean state."""

    # -- the stream

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer, /) -> int:
        """Stage ``data``; returns its length in bytes."""
        if self.closed:
            raise ValueError(f"write to a closed writer for key {self.key!r}")
        view = memoryview(data).cast("B")
        if view.nbytes:
            self._stage(view)
            self._written += view.nbytes
        return view.nbytes

    def tell(self) -> int:
        """Bytes written so far."""
        return self._written

    def close(self) -> None:
        """Publish the object (once); on failure, discard what was staged."""
        if self._finished:
            return
        self._finished = True
        try:
            self._publish()
        except BaseException:
            self._discard_quietly()
            raise
        finally:
            super().close()

    def abort(self) -> None:
        """Discard the write: nothing is published and staged data is removed."""
        if self._finished:
            return
        self._finished = True
        try:
            self._discard()
        finally:
            super().close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
        else:
            self._abort_quietly()

    def __del__(self) -> None:
        # A writer nobody closed was never complete: discard rather than publish.
        if not getattr(self, "_finished", True):
            self._abort_quietly()

    def _abort_quietly(self) -> None:
        try:
            self.abort()
        except Exception:
            logger.warning("could not clean up an aborted write of %r", self.key, exc_info=True)

    def _discard_quietly(self) -> None:
        try:
            self._discard()
        except Exception:
            logger.warning("could not clean up a failed write of %r", self.key, exc_info=True)


class ObjectStore(Closeable):
    """One bucket prefix or local directory holding objects addressed by key.

    Every method takes keys relative to the store's root URL. Use it as a
    context manager (or call :meth:`close`) to release network connections.
    """

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """The store's root URL (``s3://bucket/prefix`` or ``file:///abs/dir``)."""

    @property
    def identity(self) -> str:
        """The store's canonical root URL, a local one by its real path
        (:func:`~etl_core.storage.url.store_identity`), so a symlinked directory and its
        target are one store: what the rows of one store are keyed by in a database that
        several stores share (the load fence, the alerts, the freshness history)."""
        return store_identity(self.url) or self.url

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield every object whose key starts with ``prefix``, sorted by key, lazily.

        The listing is recursive and paginated; ``prefix`` is a string prefix
        (``"dt=2024-05"`` matches ``"dt=2024-05-01/part-0.parquet"``).
        """

    @abc.abstractmethod
    def head(self, key: str) -> ObjectInfo:
        """Describe one object.

        Raises:
            ObjectNotFoundError: no object has this key.
        """

    @abc.abstractmethod
    def open_read(self, key: str, *, start: int | None = None, end: int | None = None) -> BinaryIO:
        """Open an object for streaming reads, optionally a byte range.

        ``start`` and ``end`` index bytes like a slice (``end`` is exclusive);
        a range reaching past the end of the object is cut short, as slicing is.

        Raises:
            ObjectNotFoundError: no object has this key.
            ValueError: the range is negative or reversed.
        """

    @abc.abstractmethod
    def read_versioned(self, key: str) -> VersionedObject:
        """Read a small object whole, with the ETag of exactly the version read.

        S3 answers both in one GET; the local store reads one open file, which a
        concurrent writer replaces by rename but never changes. Use it to read
        what a :meth:`put_if` will then replace.

        Raises:
            ObjectNotFoundError: no object has this key.
        """

    @abc.abstractmethod
    def open_write(self, key: str, *, part_size: int = DEFAULT_PART_SIZE) -> ObjectWriter:
        """Open a writer; the object becomes visible only when the writer closes cleanly.

        On S3, data beyond ``part_size`` bytes goes up as a multipart upload
        (memory use is one part); an exception inside the ``with`` block aborts
        it. Locally the data goes to a temporary file in the target directory,
        renamed into place on close.

        Raises:
            ValueError: ``part_size`` is outside S3's 5 MiB - 5 GiB range.
        """

    @abc.abstractmethod
    def copy(self, src: str, dst: str) -> None:
        """Copy object ``src`` to ``dst`` (replacing it); ``dst`` appears complete or not at all.

        Raises:
            ObjectNotFoundError: ``src`` does not exist.
        """

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Delete an object; deleting a missing key is not an error."""

    @abc.abstractmethod
    def delete_if(self, key: str, *, etag: str) -> None:
        """Delete an object only if it is still the version ``etag`` (a fenced removal).

        Deleting a missing key is not an error: whoever removed it, it is gone. (On S3 a
        conditional ``DELETE``; locally serialised with :meth:`put_if` on the same lock.)

        Raises:
            ObjectConflictError: the object has another ETag (replaced meanwhile); it is
                left as it is.
        """

    @abc.abstractmethod
    def put_if(self, key: str, data: ReadableBuffer, *, etag: str | None) -> str:
        """Write a small object only if the current one is as expected; return the new ETag.

        ``etag=None`` creates the object only if the key is free; otherwise the
        object must exist with exactly that ETag. This compare-and-put is what
        claims, leases and ledgers are built on: of two writers racing with the
        same expectation, exactly one wins. (On S3 it is a conditional PUT; locally
        conditional writers of one directory serialise on a lock. Plain writes
        through :meth:`open_write` take no part in the protocol.)

        Raises:
            ObjectConflictError: the key is taken (``etag=None``), or the object is
                missing or has another ETag.
        """

    @abc.abstractmethod
    def list_unaddressable(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield the objects under ``prefix`` whose key the platform cannot address.

        :meth:`list` leaves them out (a key with ``..``, an empty segment, a control
        character, a backslash, a trailing ``/`` on an object with content); a lane
        that must give every object an outcome takes them from here, with the key
        exactly as stored, and rescues them with :meth:`copy_unaddressable`. Empty
        folder markers (``a/`` of 0 bytes, made by consoles) are not objects.
        """

    @abc.abstractmethod
    def list_every(self, prefix: str = "") -> Iterator[tuple[ObjectInfo, bool]]:
        """Yield what :meth:`list` and :meth:`list_unaddressable` yield, in ONE listing pass.

        Each object comes with whether its key is addressable, all sorted by key: a
        lane that takes both kinds lists a large prefix once instead of twice.
        """

    @abc.abstractmethod
    def head_unaddressable(self, key: str) -> ObjectInfo:
        """Describe an object listed by :meth:`list_unaddressable`, by its key as stored.

        Raises:
            ObjectNotFoundError: no object has this key.
            InvalidKeyError: the key could name something outside the store (a local
                store cannot hold such a key).
        """

    @abc.abstractmethod
    def copy_unaddressable(self, key: str, dst: str, *, etag: str) -> None:
        """Copy the object stored under the unaddressable ``key`` to the valid key ``dst``.

        The source is read, never changed; the copy is of the version ``etag``
        names, and ``dst`` appears complete or not at all.

        Raises:
            ObjectNotFoundError: no object has ``key``.
            ObjectConflictError: the object no longer has ETag ``etag``.
            InvalidKeyError: ``dst`` is not a valid key, or ``key`` could escape the store.
        """

    @abc.abstractmethod
    def check(self, *, timeout: float = 5.0) -> None:
        """Make sure the store is there and answers, within about ``timeout`` seconds.

        Called once at start-up, so a wrong URL or an unreachable endpoint fails
        the run at once, not after the first unit's retries.

        Raises:
            StorageConfigError: the store does not exist (a local directory, a bucket).
            StorageError: it cannot be reached or refuses the credentials.
        """

    def check_present(self) -> None:
        """Make sure the store has not gone since start-up, before a long-running process
        (serve's cycle, a worker's unit) reads it again.

        A backend whose listing of a vanished store reads as empty (a local directory
        unmounted or removed) must say so here; one whose reads fail on their own when the
        store is gone (S3's listing of a deleted bucket) asks nothing. Asked every cycle, so
        it costs no new client and at most one cheap request. The default is :meth:`check`.

        Raises:
            StorageConfigError: the store is gone.
            StorageError: it cannot be reached.
        """
        self.check()

    @abc.abstractmethod
    def remove_abandoned_writes(self, older_than: timedelta, prefix: str = "") -> int:
        """Remove the unfinished writes under ``prefix`` started more than ``older_than`` ago.

        A process killed mid-write leaves them behind, invisible to listings but
        taking space: a local store's ``.etl-partial-*`` files, S3's incomplete
        multipart uploads. Writes younger than ``older_than`` may still be in
        progress and are left alone.

        Returns:
            How many were removed.
        """

    @abc.abstractmethod
    def presigned_url(self, key: str, *, expires: float | timedelta = 3600) -> str:
        """A URL that reads the object without credentials, valid for ``expires`` seconds.

        Raises:
            ValueError: ``expires`` is not within 1 second to 7 days.
        """

    @abc.abstractmethod
    def url_for(self, key: str) -> str:
        """The URL naming ``key`` in this store (usable with :func:`open_store` for a prefix)."""

    def location_for(self, key: str) -> str:
        """Where ``key`` is, as an operator pastes it into a shell or a command
        (:func:`~etl_core.storage.url.shown_location` of :meth:`url_for`): a local
        object's plain path, an S3 object's URL. What a message telling an operator which
        object to delete or look at names (a file URL percent-encodes ``dt=``)."""
        return shown_location(self.url_for(key))

    def key_at(self, location: str) -> str | None:
        """The key ``location`` names in this store, or None when it is no object of it: a
        URL under :attr:`url` (as :meth:`url_for` gives), or what :meth:`location_for`
        shows. What a command taking an object's key accepts besides the key, so a location
        a message named can be pasted back."""
        base = self.url.rstrip("/") + "/"
        if not location.startswith(base):
            return None
        return location[len(base) :] or None

    # -- conveniences built on the primitives

    def exists(self, key: str) -> bool:
        """Whether an object has this key."""
        try:
            self.head(key)
        except ObjectNotFoundError:
            return False
        return True

    def read_bytes(self, key: str) -> bytes:
        """The whole object in memory; for small objects (use :meth:`open_read` otherwise)."""
        with self.open_read(key) as stream:
            return stream.read()

    def write_bytes(self, key: str, data: ReadableBuffer) -> None:
        """Write a whole object from memory, atomically."""
        with self.open_write(key) as writer:
            writer.write(data)

    def download(self, key: str, path: str | os.PathLike[str]) -> int:
        """Copy object ``key`` to the local file ``path`` (replaced); returns its size.

        Streams in bounded memory. A local store hard-links instead when it can:
        no bytes copied, and the file stays a snapshot of the object as it was
        (objects are replaced by rename, never rewritten in place).

        Raises:
            ObjectNotFoundError: there is no such object.
        """
        size = 0
        with self.open_read(key) as source, open(path, "wb") as target:
            while chunk := source.read(_DOWNLOAD_CHUNK):
                target.write(chunk)
                size += len(chunk)
        return size

    @contextmanager
    def deferred_sync(self) -> Iterator[None]:
        """Writes in this block (and in tasks it submits through a context-copying pool)
        may become visible and durable together when the block ends, rather than one by
        one (none of them when it fails): write what a manifest will point at inside it,
        read none of it back there, and write the manifest after it. Stores without
        directories (S3) have nothing to defer: their writes are visible at once."""
        yield

    def upload(self, path: str | os.PathLike[str], key: str) -> int:
        """Write local file ``path`` to ``key``, visible only when complete; returns its size."""
        size = 0
        with open(path, "rb") as source, self.open_write(key) as target:
            while chunk := source.read(_DOWNLOAD_CHUNK):
                target.write(chunk)
                size += len(chunk)
        return size

    def move_in(self, path: str | os.PathLike[str], key: str) -> int:
        """Write local file ``path`` to ``key`` like :meth:`upload`, consuming the file
        (gone afterwards); returns its size. A local store on the same filesystem moves
        the file itself into place: no second copy of its bytes."""
        size = self.upload(path, key)
        os.unlink(path)
        return size

    def move(self, src: str, dst: str) -> None:
        """Move ``src`` to ``dst``: ``dst`` appears complete, then ``src`` is deleted.

        Locally this is one atomic rename; on S3 it is a copy then a delete, so a
        crash in between leaves both (never neither).

        Raises:
            ObjectNotFoundError: ``src`` does not exist.
        """
        if src == dst:
            self.head(src)
            return
        self.copy(src, dst)
        self.delete(src)

    def close(self) -> None:
        """Release the store's resources (connections); the default holds none."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


def check_range(start: int | None, end: int | None) -> tuple[int, int | None]:
    """Validate a ``start``/``end`` byte range (slice semantics) and fill the default start.

    Raises:
        ValueError: a bound is negative, not an integer, or ``end < start``.
    """
    for name, value in (("start", start), ("end", end)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ValueError(f"byte range {name} must be an integer, got {value!r}")
        if value is not None and value < 0:
            raise ValueError(f"byte range {name} must be >= 0, got {value}")
    first = 0 if start is None else start
    if end is not None and end < first:
        raise ValueError(f"byte range end ({end}) is before start ({first})")
    return first, end


def check_part_size(part_size: int) -> int:
    """Validate a multipart part size against S3's limits (the same rule applies locally).

    Raises:
        ValueError: ``part_size`` is below 5 MiB or above 5 GiB.
    """
    if not isinstance(part_size, int) or isinstance(part_size, bool):
        raise ValueError(f"part_size must be an integer number of bytes, got {part_size!r}")
    if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
        raise ValueError(
            f"part_size must be between {MIN_PART_SIZE} (5 MiB) and {MAX_PART_SIZE} (5 GiB) "
            f"bytes, got {part_size}"
        )
    return part_size


def check_expires(expires: float | timedelta) -> int:
    """Validate a presigned-URL lifetime and return it in whole seconds.

    Raises:
        ValueError: not between 1 second and 7 days.
    """
    seconds = expires.total_seconds() if isinstance(expires, timedelta) else expires
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ValueError(f"expires must be seconds or a timedelta, got {expires!r}")
    if not 1 <= seconds <= MAX_PRESIGN_SECONDS:
        raise ValueError(
            f"expires must be between 1 second and 7 days ({MAX_PRESIGN_SECONDS} s), "
            f"got {seconds} s"
        )
    return int(seconds)
