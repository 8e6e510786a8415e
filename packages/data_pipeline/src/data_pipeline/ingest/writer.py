"""The background writer of a window: raw pages, chunks and run reports, off the walk's thread.

One thread runs the writes a walk queues, in order. The writes of one checkpoint (the
pages fetched since the last one, the chunk, the dead letters, the drift report, the
manifest) go into one deferred block of the store
(:meth:`~etl_core.storage.ObjectStore.deferred_sync`): when the walk seals the
checkpoint they are flushed together and renamed into place in the order written (the
manifest last), rather than two flushes per file. The future :meth:`CheckpointWriter.seal`
returns is done once they are durable; only then is the state that counts them
committed (by this thread, the seal's ``then``, when the state store allows it, so the
walk never waits on those flushes; else by the walk), so the durability rule is
unchanged: a crash before leaves partial files that no state or manifest names, and the
resumed run writes them again.

Compression (igzip), hashing and flushing release the GIL, so this thread works beside
the walk's parsing. The queue is bounded (:data:`MAX_QUEUED`): a walk faster than its
disk waits instead of holding every page in memory.

Every wait of the walk's thread on this one (room in the queue, :meth:`CheckpointWriter.close`)
is in :data:`~etl_core.threads.SIGNAL_CHECK` slices: a Ctrl-C/SIGTERM arriving then is
handled at once. Closing finishes the checkpoints sealed (their files become durable and
their states are committed, as ever) but skips the writes queued after the last seal: they
would be written only to be dropped.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future

from etl_core.storage import ObjectStore
from etl_core.threads import join, put

__all__ = ["MAX_QUEUED", "CheckpointWriter"]

MAX_QUEUED = 16
"""Writes and seals waiting for the thread at most (a checkpoint's worth, about)."""

Job = Callable[[], object]


class _Stop:
    """The end of the queue: what was not sealed before it is dropped."""


class _DroppedError(Exception):
    """Leaves a deferred block unpublished (the writer closed before its seal)."""


class _Seal:
    """The end of a checkpoint: its future, and what to run once it is durable."""

    __slots__ = ("future", "then")

    def __init__(self, future: Future[None], then: Job | None) -> None:
        self.future = future
        self.then = then


_STOP = _Stop()


class CheckpointWriter:
    """Runs the queued writes of one window in a background thread, checkpoint by checkpoint.

    Args:
        store: The store written (its deferred block groups a checkpoint's files).
        name: The thread's name.
    """

    def __init__(self, store: ObjectStore, name: str = "ingest-writer") -> None:
        self._store = store
        self._queue: queue.Queue[Job | _Seal | _Stop] = queue.Queue(MAX_QUEUED)
        self._failure: BaseException | None = None
        self._closed = False
        self._sealed = 0
        """Seals queued (counted by the walk's thread)."""
        self._reached = 0
        """Seals the writer's thread has taken (counted by it)."""
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()
        self._commits: queue.Queue[_Seal | _Stop] = queue.Queue()
        self._committer = threading.Thread(target=self._commit, name=f"{name}-commit", daemon=True)
        self._committer.start()

    def submit(self, job: Job) -> None:
        """Queue ``job`` (a write) in the open checkpoint; an earlier failed write is raised."""
        self.raise_failure()
        put(self._queue, job)

    def seal(self, then: Job | None = None) -> Future[None]:
        """End the open checkpoint: the future is done when its writes are durable and
        visible, or raises the first write that failed (then none of them is visible).

        ``then`` (the checkpoint's state committed) runs once they are durable, in a
        thread of its own while this one writes the next checkpoint; the seals' ``then``
        run in order, the future is done after it, and a failure of it fails the writer
        (the later ``then`` are not run)."""
        self.raise_failure()
        sealed: Future[None] = Future()
        self._sealed += 1
        put(self._queue, _Seal(sealed, then))
        return sealed

    def raise_failure(self) -> None:
        """Raise the write that failed, if one did (the writer writes nothing after it)."""
        if self._failure is not None:
            raise self._failure

    def close(self) -> None:
        """Finish the checkpoints sealed, then stop the thread; writes not sealed are
        dropped (not run when they were still queued; partial files removed: no checkpoint
        counted them). Waits in slices: a Ctrl-C/SIGTERM meanwhile is raised at once (the
        threads, daemons, are then left: what they had not made durable, no state names)."""
        if self._closed:
            return
        self._closed = True  # no seal follows: the writes queued after the last are skipped
        put(self._queue, _STOP)
        join(self._thread)
        self._commits.put(_STOP)
        join(self._committer)

    def _serve(self) -> None:
        while not isinstance(item := self._queue.get(), _Stop):
            if self._failure is not None:
                self._refuse(item)
                continue
            end: _Seal | _Stop | None = None
            try:
                with self._store.deferred_sync():
                    end = self._run_to_seal(item)
                    if isinstance(end, _Stop):
                        raise _DroppedError  # closing: the block is not published
            except _DroppedError:
                return
            except BaseException as exc:  # the checkpoint's files were discarded
                self._failure = exc
                if isinstance(end, _Seal):  # the flush or a rename failed: so did the seal
                    end.future.set_exception(exc)
                continue
            assert isinstance(end, _Seal)
            self._finish(end)

    def _finish(self, end: _Seal) -> None:
        """After a checkpoint became durable: its ``then`` to the committer, else its future
        done (after those of the checkpoints before it)."""
        self._commits.put(end)

    def _commit(self) -> None:
        """The committer thread: each durable checkpoint's ``then``, in order, then its future
        done; after a failure, the later ones fail with it."""
        failure: BaseException | None = None
        while not isinstance(end := self._commits.get(), _Stop):
            try:
                if failure is None and end.then is not None:
                    end.then()
            except BaseException as exc:  # its files stay; the writer writes nothing after
                failure = self._failure = exc
            if failure is not None:
                end.future.set_exception(failure)
            else:
                end.future.set_result(None)

    def _run_to_seal(self, item: Job | _Seal | _Stop) -> _Seal | _Stop:
        """Run the jobs from ``item`` on, up to the seal that ends the checkpoint (or a stop)."""
        while not isinstance(item, _Seal | _Stop):
            if not self._closed or self._reached < self._sealed:  # else: dropped anyway
                item()
            item = self._queue.get()
        if isinstance(item, _Seal):
            self._reached += 1
        return item

    def _refuse(self, item: Job | _Seal) -> None:
        """After a failure: a seal fails with it, a job is skipped."""
        if isinstance(item, _Seal):
            self._reached += 1
            assert self._failure is not None
            item.future.set_exception(self._failure)
