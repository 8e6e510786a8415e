"""A signal reaches the quality check while it waits for the query run on another thread."""

from __future__ import annotations

import inspect
import signal
import sys
import threading
import time
from typing import Any

import pytest

from file_processing.ahead import BackgroundQuery


def _blocked_joining(thread: threading.Thread) -> bool:
    """Whether ``thread`` is inside the lock acquire of ``Thread.join``: a signal arriving
    now is looked at once the acquire returns (the caller holds the GIL)."""
    waiting = threading.Thread._wait_for_tstate_lock  # type: ignore[attr-defined]
    lines, first = inspect.getsourcelines(waiting)
    acquires = [first + n for n, line in enumerate(lines) if "lock.acquire(" in line]
    frame = sys._current_frames().get(thread.ident or 0)
    return frame is not None and frame.f_code is waiting.__code__ and frame.f_lineno in acquires


class _SlowConnection:
    """A statement that runs for 30 s (a big file's scan) unless released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()

    def execute(self, statement: str) -> Any:
        self.started.set()
        self.release.wait(30)
        return self

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [(1,)]

    def interrupt(self) -> None:
        self.release.set()


def test_an_interruption_arriving_as_the_check_waits_for_its_query_is_handled_at_once() -> None:
    connection = _SlowConnection()
    query = BackgroundQuery(connection, "select count(*) from big")
    main = threading.main_thread()

    def interrupt() -> None:
        if not connection.started.wait(10):
            return
        deadline = time.monotonic() + 10
        while not _blocked_joining(main) and time.monotonic() < deadline:
            time.sleep(0.001)
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)  # taken by this thread

    threading.Thread(target=interrupt, daemon=True).start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            query.result()
        assert time.monotonic() - started < 5
    finally:
        query.cancel()
