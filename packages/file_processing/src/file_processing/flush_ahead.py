"""Staged files written back to disk ahead of their publishing, while the checks run.

A local store that flushes its writes makes a delivery's files durable together when
they are published (one ``syncfs`` of the filesystem, :mod:`etl_core.storage.durability`),
so a member's hundred megabytes were written back to disk only then, on the critical
path, after its checks. A :class:`FlushAhead` starts that write-back as soon as a member
is unpacked, on a thread of its own (disk I/O, hardly any CPU, no GIL held): by the time
it is published, the flush at publishing finds little left to write. It only ever adds a
flush; what is durable when, and what becomes visible when, stay as they were.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import Future
from pathlib import Path

from etl_core.resources import Closeable
from etl_core.threads import ContextThreadPoolExecutor

__all__ = ["FlushAhead", "same_filesystem"]

logger = logging.getLogger(__name__)

MIN_BYTES = 8 * 1024 * 1024
"""Smaller files are left to the flush at publishing: one ``syncfs`` writes many small
files back for less than a ``fdatasync`` each."""


class FlushAhead(Closeable):
    """Flush files to disk one after another, on a thread of its own.

    Args:
        enabled: Whether to flush at all (a store that does not flush its writes, or
            that copies the files onto another filesystem, gains nothing from it): when
            not, :meth:`add` does nothing.
        min_bytes: Files smaller than this are not flushed ahead (default :data:`MIN_BYTES`).
    """

    def __init__(self, *, enabled: bool = True, min_bytes: int | None = None) -> None:
        self._pool = ContextThreadPoolExecutor(1, "flush-ahead") if enabled else None
        self._min_bytes = MIN_BYTES if min_bytes is None else min_bytes
        self._flushes: list[Future[None]] = []

    def add(self, path: Path, size: int) -> None:
        """Start flushing ``path`` (``size`` bytes) once those added before it are flushed."""
        if self._pool is not None and size >= self._min_bytes:
            self._flushes.append(self._pool.submit(_flush, path))

    def close(self) -> None:
        """Drop the flushes not begun, wait for the one under way, and raise the first
        write-back failure: the kernel reports it once, so the flush at publishing, after
        this one, might not see it again."""
        if self._pool is None:
            return
        self._pool.shutdown(wait=True, cancel_futures=True)
        for flush in self._flushes:
            if not flush.cancelled() and (failure := flush.exception()) is not None:
                raise failure


def same_filesystem(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are on one filesystem (a file moved between them is linked,
    not copied, so flushing it where it is makes the published copy durable)."""
    try:
        return a.stat().st_dev == b.stat().st_dev
    except OSError:
        return False


def _flush(path: Path) -> None:
    """Write ``path``'s data back to disk. A file gone already is skipped (refused or
    moved on); a failed write-back is logged and raised, to fail the run before publishing."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        logger.debug("not flushed ahead: %s (%s)", path, exc)
        return
    try:
        os.fdatasync(fd)
    except OSError as exc:
        logger.warning("writing %s back to disk failed: %s", path, exc)
        raise
    finally:
        os.close(fd)
