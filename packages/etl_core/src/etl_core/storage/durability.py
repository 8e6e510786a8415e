"""Making the local store's writes durable: one file at a time, or many together.

A local write is durable when its bytes are flushed (``fsync`` of the file) before
the rename that makes it visible, and the rename itself is flushed (``fsync`` of its
directory). That is two flushes per file: a delivery of 10,000 members, with a
report each, paid 40,000. :class:`DeferredWrites` collects the writes of a
:meth:`~etl_core.storage.local.LocalObjectStore.deferred_sync` block instead, each
staged in its partial file, and when the block ends flushes them all with one
``syncfs`` of their filesystem, renames them into place and flushes the renames
with one more: still no file visible before its bytes are durable, nothing visible
at all when the block fails. Where ``syncfs`` is missing (not Linux) each file and
directory is flushed on its own.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import threading
from collections.abc import Iterable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

__all__ = ["PENDING_WRITES", "DeferredWrites", "fsync_directory", "fsync_path"]

logger = logging.getLogger(__name__)


class DeferredWrites:
    """Complete writes staged in their partial files, published together by :meth:`publish`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._staged: list[tuple[Path, Path]] = []

    def add(self, temp: Path, path: Path) -> None:
        """Publish the written (not yet flushed) partial file ``temp`` as ``path`` later."""
        with self._lock:
            self._staged.append((temp, path))

    def publish(self) -> None:
        """Flush every staged file, rename each into place (in the order written), flush
        the renames.

        Raises:
            OSError: a flush or a rename failed; the files not yet renamed are removed.
        """
        staged = self._take()
        directories = sorted({path.parent for _, path in staged})
        renamed = 0
        try:
            _flush([temp for temp, _ in staged], files=True)
            for temp, path in staged:
                os.replace(temp, path)
                renamed += 1
        finally:
            _remove(temp for temp, _ in staged[renamed:])
        _flush(directories, files=False)

    def discard(self) -> None:
        """Remove every staged file: none becomes visible."""
        _remove(temp for temp, _ in self._take())

    def _take(self) -> list[tuple[Path, Path]]:
        with self._lock:
            staged, self._staged = self._staged, []
        return staged


def fsync_path(path: Path) -> None:
    """Flush a written file's bytes to disk.

    Raises:
        OSError: it cannot be opened or flushed.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_directory(directory: Path) -> None:
    """Flush a directory's entries (a rename into it) to disk; best effort."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        logger.debug("could not fsync directory %s", directory)
    finally:
        os.close(fd)


def _flush(paths: list[Path], *, files: bool) -> None:
    """Flush ``paths`` (files, else directories): one ``syncfs`` per filesystem they lie
    on where the system has it, else each on its own."""
    if not paths:
        return
    directories = {path.parent for path in paths} if files else set(paths)
    if _syncfs_all(directories):
        return
    for path in paths:
        if files:
            fsync_path(path)
        else:
            fsync_directory(path)


def _syncfs_all(directories: Iterable[Path]) -> bool:
    """``syncfs`` once per filesystem holding ``directories``; ``False`` where unavailable.

    Raises:
        OSError: the flush reported an error (a failed write-back).
    """
    syncfs = _syncfs()
    if syncfs is None:
        return False
    devices: dict[int, Path] = {}
    for directory in directories:
        devices.setdefault(os.stat(directory).st_dev, directory)
    for directory in devices.values():
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if syncfs(fd) != 0:
                code = ctypes.get_errno()
                raise OSError(code, f"syncfs failed: {os.strerror(code)}", str(directory))
        finally:
            os.close(fd)
    return True


@functools.cache
def _syncfs() -> Any:
    """The C library's ``syncfs`` (Linux), or ``None``."""
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return function


def _remove(paths: Iterable[Path]) -> None:
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:  # left for remove_abandoned_writes
            logger.warning("could not remove the partial write %s: %s", path, exc)


PENDING_WRITES: ContextVar[DeferredWrites | None] = ContextVar("etl_pending_writes", default=None)
"""The deferred block the current context writes in, if any: a context variable, so a
write by another thread (another delivery) is never deferred by this block."""
