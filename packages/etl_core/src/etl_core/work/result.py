"""What became of a work unit: its value, or the error that ended it, and how many tries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from etl_core.work.unit import WorkUnit

__all__ = ["UnitResult", "UnitStatus"]

T = TypeVar("T")

UnitStatus = Literal["succeeded", "failed"]


@dataclass(frozen=True)
class UnitResult(Generic[T]):
    """The end of one unit.

    Attributes:
        unit: The unit.
        status: ``succeeded`` (``value`` holds the lane's result) or ``failed``
            (``error`` ended it: a fatal error, or a retryable one after the
            last attempt).
        value: What the lane's ``run_unit`` returned.
        error: The error that ended it.
        attempts: How many times it was tried.
        seconds: Wall time over every attempt.
    """

    unit: WorkUnit
    status: UnitStatus
    value: T | None = None
    error: BaseException | None = None
    attempts: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the unit succeeded."""
        return self.status == "succeeded"
