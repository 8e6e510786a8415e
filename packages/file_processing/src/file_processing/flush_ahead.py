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
from pathlib import Path

from etl_core.resources import Closeable
from etl_core.threads import ContextThreadPoolExecutor

__all__ = ["FlushAhead"]

logger = logging.getLogger(__name__)


class FlushAhead(Closeable):
    """Flush files to disk one after another, on a thread of its own.

    Args:
        enabled: Whether to flush at all (a store that does not flush its writes gains
            nothing from it): when not, :meth:`add` does nothing.
    """

    def __init__(self, *, enabled: bool = True) -> None:
        self._pool = ContextThreadPoolExecutor(1, "flush-ahead") if enabled else None

    def add(self, path: Path) -> None:
        """Start flushing ``path``'s data (once those added before it are flushed)."""
        if self._pool is not None:
            self._pool.submit(_flush, path)

    def close(self) -> None:
        """Drop the flushes not begun, and wait for the one under way."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _flush(path: Path) -> None:
    """Write ``path``'s data back to disk; a file gone already, or a failure, is only
    logged (the flush at publishing is the one that counts)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        logger.debug("not flushed ahead: %s (%s)", path, exc)
        return
    try:
        os.fdatasync(fd)
    except OSError as exc:
        logger.debug("not flushed ahead: %s (%s)", path, exc)
    finally:
        os.close(fd)
