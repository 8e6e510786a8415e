"""A signal reaches the ingest's walk while it waits for a page requested ahead."""

from __future__ import annotations

import concurrent.futures
import inspect
import signal
import sys
import threading
import time
from collections.abc import Mapping

import pytest

from data_pipeline.ingest.prefetch import PageAhead


def _blocked_in_untimed_wait(thread: threading.Thread, caller: object) -> bool:
    """Whether ``thread`` is inside the lock acquire of a ``Condition.wait`` called (directly)
    by the function whose code is ``caller``. The caller of this holds the GIL, so that
    thread runs no bytecode: a signal arriving now is looked at once the acquire returns."""
    lines, first = inspect.getsourcelines(threading.Condition.wait)
    acquires = [first + n for n, line in enumerate(lines) if "waiter.acquire(" in line][1:]
    frame = sys._current_frames().get(thread.ident or 0)
    if frame is None or frame.f_back is None:
        return False
    outer = frame.f_back
    while outer is not None and outer.f_code is not caller:
        outer = outer.f_back
    return (
        frame.f_code is threading.Condition.wait.__code__
        and frame.f_lineno in acquires
        and outer is not None
    )


def test_an_interruption_arriving_as_the_walk_waits_for_a_page_ahead_ends_it_at_once() -> None:
    # The request made ahead sleeps out a long back-off (a 429's Retry-After); a Ctrl-C
    # arriving as the walk starts waiting for it, or taken by another thread, wakes nothing:
    # waited for without a bound, it was handled once the request ended.
    release = threading.Event()
    asked = threading.Event()
    main = threading.main_thread()

    def get(url: str, params: Mapping[str, str]) -> str:
        if url.endswith("/2"):
            asked.set()
            release.wait(30)
        return url

    ahead: PageAhead[str] = PageAhead(get, depth=2)
    ahead.get("https://api/1", {}, [("https://api/2", {})])  # page 2 requested ahead

    def interrupt() -> None:
        if not asked.wait(10):
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (
            _blocked_in_untimed_wait(main, concurrent.futures.Future.result.__code__)
            or _blocked_in_untimed_wait(main, concurrent.futures.wait.__code__)
        ):
            time.sleep(0.001)
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            ahead.get("https://api/2", {})
        assert time.monotonic() - started < 5
    finally:
        release.set()
        ahead.close()
