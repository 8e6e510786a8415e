"""``result_of``: a future's result waited for so that signals are handled at once."""

from __future__ import annotations

import concurrent.futures
import inspect
import signal
import sys
import threading
import time
from concurrent.futures import Future

import pytest

from etl_core.threads import ContextThreadPoolExecutor, result_of


def _blocked_in_a_lock_wait(thread: threading.Thread) -> bool:
    """Whether ``thread`` is inside the lock acquire of a ``Condition.wait`` under
    ``concurrent.futures`` (``Future.result`` or ``wait``): a signal arriving now is looked
    at once the acquire returns (the caller holds the GIL: that thread runs no bytecode)."""
    lines, first = inspect.getsourcelines(threading.Condition.wait)
    acquires = [first + n for n, line in enumerate(lines) if "waiter.acquire(" in line][1:]
    frame = sys._current_frames().get(thread.ident or 0)
    callers = (concurrent.futures.Future.result.__code__, concurrent.futures.wait.__code__)
    outer = frame.f_back if frame is not None else None
    while outer is not None and outer.f_code not in callers:
        outer = outer.f_back
    return (
        frame is not None
        and frame.f_code is threading.Condition.wait.__code__
        and frame.f_lineno in acquires
        and outer is not None
    )


def test_an_interruption_arriving_as_the_result_is_waited_for_is_handled_at_once() -> None:
    pending: Future[int] = Future()  # a task that ends only after a long back-off
    main = threading.main_thread()

    def interrupt() -> None:
        deadline = time.monotonic() + 10
        while not _blocked_in_a_lock_wait(main) and time.monotonic() < deadline:
            time.sleep(0.001)
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)  # taken by this thread
        time.sleep(30)
        pending.set_result(1)

    threading.Thread(target=interrupt, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        result_of(pending)
    assert time.monotonic() - started < 5


def test_the_result_or_the_tasks_own_error_is_what_result_of_gives() -> None:
    def timing_out() -> None:
        time.sleep(0.3)
        raise TimeoutError("the socket timed out")  # the task's: not a slice ending

    with ContextThreadPoolExecutor(2) as pool:
        assert result_of(pool.submit(lambda: 7)) == 7
        with pytest.raises(TimeoutError, match="the socket timed out"):
            result_of(pool.submit(timing_out))
