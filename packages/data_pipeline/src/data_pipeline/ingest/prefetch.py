"""Requesting the next pages of a page-number or offset walk before they are needed.

Those styles can predict their next requests (page + 1, offset + page size), so up to
``depth`` requests are in flight while the current page is archived and landed. Pages
are still consumed strictly in order, and only the one asked for is used: when a page
turns out different from the prediction (a short page moves the next offset), the
requests made ahead are dropped and the walk goes on from the real next request. A
request made ahead that is never used is never archived or landed, and its failure
(say a 404 past the end) is ignored.

:meth:`PageAhead.close` sets :attr:`PageAhead.closed` (the walk's ``get`` reads it: a
request ahead in its retry back-off then gives up at once) and waits for the requests
still running in :data:`~etl_core.threads.SIGNAL_CHECK` slices, so a Ctrl-C/SIGTERM after
the walk was interrupted is handled at once, and the process never sleeps out the
back-off of a page nobody will read.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

from etl_core.threads import result_of, wait_done

__all__ = ["PageAhead"]

Key = tuple[str, tuple[tuple[str, str], ...]]
T = TypeVar("T")


def _key(url: str, params: Mapping[str, str]) -> Key:
    return url, tuple(sorted(params.items()))


class PageAhead(Generic[T]):
    """Fetches pages through ``get``, keeping up to ``depth - 1`` predicted requests in flight.

    Args:
        get: One request (the client's retried GET; its response, as the walk takes it).
        depth: Requests in flight at most, counting the one asked for (1: none ahead).
    """

    def __init__(self, get: Callable[[str, Mapping[str, str]], T], depth: int) -> None:
        self._get = get
        self._depth = depth
        self._pool = ThreadPoolExecutor(depth - 1, "page-ahead") if depth > 1 else None
        self._queue: deque[tuple[Key, Future[T]]] = deque()
        self._sent: set[Future[T]] = set()
        """Every request made ahead not yet done (those dropped included)."""
        self.closed = threading.Event()
        """Set by :meth:`close`: the requests still running are not wanted any more."""

    def get(
        self,
        url: str,
        params: Mapping[str, str],
        upcoming: Sequence[tuple[str, Mapping[str, str]]] = (),
    ) -> T:
        """The response to ``url``/``params``; ``upcoming`` are the predicted next requests."""
        key = _key(url, params)
        future = None
        if self._queue and self._queue[0][0] == key:
            future = self._queue.popleft()[1]
        else:
            self._drop()
        self._ahead(upcoming)
        # in slices: a Ctrl-C/SIGTERM is handled at once, not once the request (and its
        # retries' back-off) ends
        return result_of(future) if future is not None else self._get(url, params)

    def close(self) -> None:
        """Drop the requests made ahead and wait for those already running (told by
        :attr:`closed` they are not wanted), in slices."""
        self.closed.set()
        self._drop()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            wait_done(list(self._sent))

    def _ahead(self, upcoming: Sequence[tuple[str, Mapping[str, str]]]) -> None:
        if self._pool is None:
            return
        wanted = [_key(url, params) for url, params in upcoming[: self._depth - 1]]
        if [key for key, _ in self._queue] != wanted[: len(self._queue)]:
            self._drop()
        for (url, params), key in list(zip(upcoming, wanted, strict=False))[len(self._queue) :]:
            future = self._pool.submit(self._get, url, dict(params))
            self._sent.add(future)
            future.add_done_callback(self._sent.discard)
            self._queue.append((key, future))

    def _drop(self) -> None:
        while self._queue:
            _, future = self._queue.popleft()
            future.cancel()  # one already running finishes; its answer is not used
