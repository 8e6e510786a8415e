"""The in-process executor: units one after another in the calling thread."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from etl_core.work.executor import Executor, RunUnit, attempt_unit
from etl_core.work.result import UnitResult
from etl_core.work.unit import WorkUnit

__all__ = ["InlineExecutor"]

T = TypeVar("T")


class InlineExecutor(Executor):
    """Runs each unit in the caller's thread: the simplest to debug and to profile."""

    name = "inline"

    def run(self, run_unit: RunUnit[T], units: Iterable[WorkUnit]) -> Iterator[UnitResult[T]]:
        for unit in units:
            yield attempt_unit(run_unit, unit, self.policy)
