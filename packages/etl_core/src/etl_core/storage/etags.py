"""A local file's ETag (the MD5 of its content), recorded on the file, and computed while
the file is written rather than in a second pass over it.

A local store records the MD5 of each file it writes or hashes in the ``user.etl.md5``
extended attribute, with the file's size and modification time: a file changed since
no longer matches, and is hashed again. :class:`StagedFile` writes a file meant for
:meth:`~etl_core.storage.ObjectStore.move_in` (an unpacked member, say) the same way,
hashing on a thread of its own so the hash overlaps the work producing the bytes, and
starting the file's write-back to disk as it goes, so the flush before it becomes
visible has little left to do.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import queue
import threading
from types import TracebackType
from typing import Any

__all__ = ["ETAG_XATTR", "StagedFile", "recorded_etag", "remember_etag"]

ETAG_XATTR = "user.etl.md5"
"""The extended attribute holding ``<size>:<mtime_ns>:<md5>`` of a file."""

_QUEUED_CHUNKS = 8  # written chunks waiting for the hashing thread: bounds memory
_WRITEBACK_BYTES = 16 * 1024 * 1024  # write-back is started every this many bytes
_SYNC_FILE_RANGE_WRITE = 2  # start write-out of dirty pages, without waiting


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
    """A new local file written in chunks, its MD5 computed on a thread of its own and
    recorded on the file when it closes; write-back to disk starts as it is written.

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
        self._hasher = threading.Thread(target=self._hash, name="etag", daemon=True)
        self._hasher.start()

    def write(self, data: bytes) -> int:
        """Write ``data`` whole."""
        view = memoryview(data)
        while view:
            view = view[self._file.write(view) or 0 :]
        self._chunks.put(bytes(data))
        self.size += len(data)
        return len(data)

    def close(self) -> str:
        """Finish the hash, record it on the file and close it; return the MD5 (hex).

        Raises:
            BaseException: whatever stopped the hashing thread (the file is closed).
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
        """Stop hashing and close the file, recording nothing (the caller removes it)."""
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
        if self._hasher.is_alive():
            self._chunks.put(None)
            self._hasher.join()

    def _hash(self) -> None:
        """Hash the written chunks in order; start write-back of each stretch hashed."""
        fd = self._file.fileno()
        flushed = hashed = 0
        while (chunk := self._chunks.get()) is not None:
            if self._error is not None:
                continue  # drained, so the writer never blocks on a dead thread
            try:
                self._digest.update(chunk)
                hashed += len(chunk)
                if hashed - flushed >= _WRITEBACK_BYTES:
                    start_writeback(fd, flushed, hashed - flushed)
                    flushed = hashed
            except BaseException as exc:  # handed to the writer's thread by close()
                self._error = exc


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing ``length`` bytes of ``fd`` from ``offset`` to disk,
    without waiting (Linux ``sync_file_range``); nothing where it is missing."""
    function = _sync_file_range()
    if function is not None:
        function(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


@functools.cache
def _sync_file_range() -> Any:
    """The C library's ``sync_file_range`` (Linux), or ``None``."""
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function
