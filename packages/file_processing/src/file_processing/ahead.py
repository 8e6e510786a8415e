"""The checking query started ahead, on a thread of its own, while the pre-pass reads the file.

The pre-pass is Python on one core; the engine's scan uses every core. Run one after
the other they leave a core idle for the length of the pre-pass; started together, the
engine's guess of the query (made from the file's first lines) runs while the pre-pass
decides. The analysis then keeps the result only if the query it would have run is the
very same statement, and otherwise interrupts it and runs its own: what the pre-pass
decides, and every verdict, stay as they were. The top values of the pre-pass's sample
are counted the same way, in a :class:`BackgroundQuery`, while the checking pass ends.
"""

from __future__ import annotations

import threading
from typing import Any

from etl_core.threads import SIGNAL_CHECK

__all__ = ["AheadQuery", "BackgroundQuery"]

_INTERRUPT_EVERY = 0.05
"""Seconds between interrupts while a cancelled statement has not stopped."""


class BackgroundQuery:
    """``statement`` running on ``connection`` in a thread; its rows or its error kept."""

    def __init__(self, connection: Any, statement: str) -> None:
        self.connection = connection
        self.statement = statement
        self._rows: list[tuple[Any, ...]] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="quality-ahead", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._rows = self.connection.execute(self.statement).fetchall()
        except BaseException as exc:  # handed to the caller of result()
            self._error = exc

    def result(self) -> list[tuple[Any, ...]]:
        """The statement's rows, once it has finished; its error raised here, if it failed."""
        while self._thread.is_alive():  # in slices: a Ctrl-C/SIGTERM is handled at once,
            self._thread.join(SIGNAL_CHECK)  # not once the statement (a whole scan) ends
        if self._error is not None:
            raise self._error
        return self._rows

    def cancel(self) -> None:
        """Interrupt the statement if it still runs, and wait for its thread to end."""
        while self._thread.is_alive():  # an interrupt before the statement starts is lost
            self.connection.interrupt()
            self._thread.join(_INTERRUPT_EVERY)


class AheadQuery(BackgroundQuery):
    """The checking query, started ahead while the pre-pass reads the file."""
