"""A local file's ETag (the MD5 of its content), recorded on the file, and computed while
the file is written rather than in a second pass over it.

A local store records the MD5 of each file it writes or hashes in the ``user.etl.md5``
extended attribute, with the file's size and modification time: a file changed since
no longer matches, and is hashed again. :class:`StagedFile` writes a file meant for
:meth:`~etl_core.storage.ObjectStore.move_in` (an unpacked member, say) the same way:
writing and hashing on a thread of its own, so both overlap the work producing the
bytes (inflating them). Starting the write-back early (``sync_file_range`` every
16 MiB) was measured and left out: on a shared disk it slowed the unpacking and the
checks that follow more than it shortened the flush at publishing.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from types import TracebackType

__all__ = ["ETAG_XATTR", "StagedFile", "recorded_etag", "remember_etag"]

ETAG_XATTR = "user.etl.md5"
"""The extended attribute holding ``<size>:<mtime_ns>:<md5>`` of a file."""

_QUEUED_CHUNKS = 8  # chunks waiting for the writing thread: bounds memory


def recorded_etag(fd: int, status: os.stat_result) -> str | None:
    """The MD5 recorded on the open file ``fd`` for its current size and mtime, if any."""
    try:
        recorded = os.getxattr(fd, ETAG_XATTR).decode("ascii")
    except (OSError, AttributeError, UnicodeDecodeError):
        return None
    size, _, rest = recorded.partition(":")
    mtime_ns, _, etag = rest.partition(":")
    if size == str(status.st_size) and mtime_ns == str(status.st_mtime_ns) and len(etag) == 32:
        return etag
    return None


def remember_etag(fd: int, etag: str) -> None:
    """Record ``etag`` with the file's size and mtime (skipped where xattrs are unsupported)."""
    try:
        status = os.fstat(fd)
        value = f"{status.st_size}:{status.st_mtime_ns}:{etag}".encode("ascii")
        os.setxattr(fd, ETAG_XATTR, value)
    except (OSError, AttributeError):
        return


class StagedFile:
    """A new local file written in chunks by a thread of its own, which also computes
    its MD5; the MD5 is recorded on the file when it closes. The caller's thread only
    hands chunks over (at most a few queued at once).

    Use it as a context manager: an exception inside the block leaves the file unrecorded.

    Args:
        path: The file to create; it must not exist.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.size = 0
        self.etag: str | None = None
        self._file = open(path, "xb", buffering=0)  # noqa: SIM115 - closed by close()
        self._digest = hashlib.md5(usedforsecurity=False)
        self._error: BaseException | None = None
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=_QUEUED_CHUNKS)
        self._writer = threading.Thread(target=self._drain, name="staged-file", daemon=True)
        self._writer.start()

    def write(self, data: bytes) -> int:
        """Queue ``data`` to be written whole.

        Raises:
            OSError: an earlier chunk could not be written (the disk is full, say).
        """
        if self._error is not None:
            raise self._error
        self._chunks.put(bytes(data))
        self.size += len(data)
        return len(data)

    def close(self) -> str:
        """Write what is queued, record the MD5 on the file and close it; return the MD5.

        Raises:
            OSError: a chunk could not be written (the file is closed, unrecorded).
        """
        if self.etag is None:
            self._stop()
            if self._error is not None:
                self._file.close()
                raise self._error
            self.etag = self._digest.hexdigest()
            remember_etag(self._file.fileno(), self.etag)
            self._file.close()
        return self.etag

    def discard(self) -> None:
        """Stop writing and close the file, recording nothing (the caller removes it)."""
        self._stop()
        self._file.close()

    def __enter__(self) -> StagedFile:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.discard()

    def _stop(self) -> None:
        if self._writer.is_alive():
            self._chunks.put(None)
            self._writer.join()

    def _drain(self) -> None:
        """Write and hash the queued chunks in order."""
        fd = self._file.fileno()
        while (chunk := self._chunks.get()) is not None:
            if self._error is not None:
                continue  # drained, so the caller never blocks on a failed writer
            try:
                _write_all(fd, chunk)
                self._digest.update(chunk)
            except BaseException as exc:  # handed to the caller's thread
                self._error = exc


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
