"""Progress of a command's work: a bar on a terminal, periodic log lines otherwise.

A command says how much work it planned (objects and their bytes, partitions) and
reports what finished; :class:`WorkProgress` shows it the way the operator is
watching. On a terminal a Rich bar (the ``cli`` extra) on stderr; off a terminal a
JSON log line every ``interval`` seconds, never a bar. When the run is interrupted,
:meth:`WorkProgress.summary` says how many items finished and how many remain.

Standard library only, Rich imported lazily when a bar is drawn.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from etl_core.threads import start_thread

__all__ = ["BYTES", "ProgressSummary", "WorkProgress"]

logger = logging.getLogger(__name__)

BYTES = "bytes"
"""The unit of work measured in bytes (a bar with transfer speed)."""


@dataclass(frozen=True)
class ProgressSummary:
    """What a command got through: items finished of those planned, and the amount."""

    work: str
    item: str
    planned: int | None
    finished: int
    done: float
    total: float | None
    unit: str
    counters: tuple[tuple[str, float], ...] = ()
    """Named amounts the work counted besides (``pages``, ``retries``), in first-seen order."""

    @property
    def remaining(self) -> int | None:
        """Items planned that did not finish (``None``: nothing was planned yet)."""
        return None if self.planned is None else max(self.planned - self.finished, 0)

    def describe(self) -> str:
        """One sentence: ``scan: 3 of 10 objects finished, 7 remain``."""
        if self.planned is None:
            return f"{self.work}: stopped before its work was planned"
        amount = f" ({_amount(self.done, self.total, self.unit)})" if self.unit else ""
        counted = f"; {_counters(self.counters)}" if self.counters else ""
        return (
            f"{self.work}: {self.finished} of {self.planned} {self.item}(s) finished{amount}, "
            f"{self.remaining} remain{counted}"
        )

    def fields(self) -> dict[str, object]:
        """The summary as log fields."""
        return {
            "work": self.work,
            "finished": self.finished,
            "remaining": self.remaining,
            "planned": self.planned,
            "done": round(self.done),
            "total": self.total,
            "unit": self.unit,
            **{name: round(value, 3) for name, value in self.counters},
        }


class WorkProgress:
    """Tracks one command's work and shows it: a bar on a terminal, log lines otherwise.

    Args:
        work: What is done (``scan``, ``backfill pos``), shown and logged.
        item: What an item is (``object``, ``partition``).
        unit: The amount's unit when it is not items (``bytes``), else ``""``.
        console: A Rich console on stderr, or a :class:`~etl_core.console.DeferredConsole`
            (made only when it is a terminal); a bar is drawn when it is a terminal.
        interval: Seconds between log lines off a terminal (0: none).
    """

    def __init__(
        self,
        work: str,
        *,
        item: str,
        unit: str = "",
        console: Any = None,
        interval: float = 10.0,
    ) -> None:
        self.work = work
        self.item = item
        self.unit = unit
        self.interval = interval
        self._console = console
        self._terminal = bool(console is not None and console.is_terminal)
        self._lock = threading.Lock()
        self._planned: int | None = None
        self._total: float | None = None
        self._finished = 0
        self._done = 0.0
        self._partial: dict[str, float] = {}
        self._counters: dict[str, float] = {}
        self._bar: Any = None
        self._task: Any = None
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._started = time.monotonic()

    def __enter__(self) -> Self:
        if self._terminal:
            console = getattr(self._console, "console", self._console)  # a deferred one's own
            self._bar = _rich_bar(console, bytes_unit=self.unit == BYTES)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.work, total=None)
            self._show()
        elif self.interval > 0:
            self._ticker = start_thread(self._tick, name="progress")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
        if self._bar is not None:
            self._bar.__exit__(kind, error, traceback)

    # ---------------------------------------------------------------- reporting

    def plan(self, items: int, *, amount: float | None = None) -> None:
        """The work found: ``items`` to do, of ``amount`` in :attr:`unit` (default: items)."""
        with self._lock:
            self._planned = items
            self._total = float(items if amount is None else amount)
        self._show()

    def advance(self, name: str, amount: float) -> None:
        """``amount`` more of item ``name`` is done (bytes read of an object, say)."""
        with self._lock:
            self._partial[name] = self._partial.get(name, 0.0) + amount
        self._show()

    def finish(self, name: str = "", amount: float = 1.0) -> None:
        """Item ``name`` finished; ``amount`` is all of it (what :meth:`advance` gave counts
        towards it, not twice)."""
        with self._lock:
            self._partial.pop(name, None)
            self._finished += 1
            self._done += amount
        self._show()

    def count(self, **amounts: float) -> None:
        """Add to named counters shown beside the bar and in the log lines (``pages=1``,
        ``records=500``, ``retries=1``); any thread may call it."""
        with self._lock:
            for name, amount in amounts.items():
                self._counters[name] = self._counters.get(name, 0.0) + amount
        self._show()

    def summary(self) -> ProgressSummary:
        """Items finished and remaining, and the amount done, as of now."""
        with self._lock:
            done = self._done + sum(self._partial.values())
            return ProgressSummary(
                self.work,
                self.item,
                self._planned,
                self._finished,
                done,
                self._total,
                self.unit,
                tuple(self._counters.items()),
            )

    # ---------------------------------------------------------------- showing

    def _show(self) -> None:
        if self._bar is None:
            return
        summary = self.summary()
        described = (
            f"{self.work} ({_counters(summary.counters)})" if summary.counters else self.work
        )
        self._bar.update(
            self._task, total=summary.total, completed=summary.done, description=described
        )

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            summary = self.summary()
            elapsed = round(time.monotonic() - self._started, 1)
            logger.info(
                "progress: %s",
                summary.describe(),
                extra={**summary.fields(), "elapsed_seconds": elapsed},
            )


def _amount(done: float, total: float | None, unit: str) -> str:
    if unit == BYTES:
        shown = _human_bytes(done)
        of = f" of {_human_bytes(total)}" if total is not None else ""
    else:
        shown = f"{done:g}"
        of = f" of {total:g}" if total is not None else ""
    percent = f", {100 * done / total:.0f}%" if total else ""
    return f"{shown}{of}{' ' + unit if unit != BYTES else ''}{percent}"


def _counters(counters: tuple[tuple[str, float], ...]) -> str:
    """``pages 12, records 12,000, retries 1``."""
    return ", ".join(
        f"{name.replace('_', ' ')} {value:,.0f}"
        if value == int(value)
        else f"{name.replace('_', ' ')} {value:,.1f}"
        for name, value in counters
    )


def _human_bytes(count: float) -> str:
    """``1.5 MB``: decimal units, one decimal, for a progress line."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count:.0f} B"


def _rich_bar(console: Any, *, bytes_unit: bool) -> Any:
    """A transient Rich progress bar on ``console``: bytes with speed, or items."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TransferSpeedColumn,
    )

    counts = (DownloadColumn(), TransferSpeedColumn()) if bytes_unit else (MofNCompleteColumn(),)
    return Progress(
        SpinnerColumn(),
        # the description names datasets and keys: written as it is, never read as markup
        TextColumn("{task.description}", style="progress.description", markup=False),
        BarColumn(),
        TaskProgressColumn(),
        *counts,
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
