"""A DuckDB query interrupted by Ctrl-C or SIGTERM is told apart from a failed partition,
wherever the interruption sits in the error's chain (cause or context), and from a query
our own code cancelled with ``interrupt()``.

The errors are DuckDB's own, raised by real queries: DuckDB turns a signal into a plain
``RuntimeError`` ("Query interrupted") and ``interrupt()`` into ``InterruptException``.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from datetime import date
from types import FrameType

import duckdb
import pytest

from data_pipeline.errors import PartitionError
from data_pipeline.work import _interrupted_query

DAY = date(2026, 11, 1)
SLOW = "SELECT sum(i * i % 7) FROM range(30000000000) t(i)"  # busy for many seconds


def _stopped_by(stop: threading.Timer) -> Exception:
    """The error of a slow query that ``stop`` ends (bounded: it must end the query)."""
    stop.start()
    try:
        duckdb.connect().execute(SLOW).fetchall()
    except Exception as error:
        return error
    finally:
        stop.cancel()
    raise AssertionError("the query ran to its end")


@pytest.fixture
def sigterm_raises() -> Iterator[None]:
    """SIGTERM handled as the CLI handles it: ``KeyboardInterrupt`` in the main thread."""

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _signalled() -> Exception:
    return _stopped_by(threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)))


def _wrapped(error: Exception, *, via_other_cause: bool) -> PartitionError:
    try:
        try:
            raise error
        except Exception as exc:
            if via_other_cause:  # raised "from" another error: the interruption is the context
                raise PartitionError("sales", DAY, "bad input") from ValueError("described")
            raise PartitionError("sales", DAY, str(exc)) from exc
    except PartitionError as wrapped:
        return wrapped
    raise AssertionError("unreachable")


@pytest.mark.usefixtures("sigterm_raises")
@pytest.mark.parametrize("via_other_cause", [False, True])
def test_a_query_stopped_by_a_signal_is_found_in_the_chain(via_other_cause: bool) -> None:
    interrupted = _signalled()
    assert _interrupted_query(interrupted)
    assert _interrupted_query(_wrapped(interrupted, via_other_cause=via_other_cause))


def test_a_query_cancelled_by_interrupt_is_not_a_signal() -> None:
    connection = duckdb.connect()
    stop = threading.Timer(0.5, connection.interrupt)
    stop.start()
    try:
        with pytest.raises(duckdb.InterruptException) as cancelled:
            connection.execute(SLOW).fetchall()
    finally:
        stop.cancel()
    assert not _interrupted_query(cancelled.value)
    assert not _interrupted_query(_wrapped(cancelled.value, via_other_cause=False))


def test_a_failed_query_is_not_an_interruption() -> None:
    with pytest.raises(duckdb.Error) as failed:
        duckdb.connect().execute("SELECT * FROM no_such_table")
    error = PartitionError("sales", DAY, str(failed.value))
    error.__cause__ = failed.value
    assert not _interrupted_query(error)
